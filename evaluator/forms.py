from __future__ import annotations

import json
import re

from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext_lazy as _

from evaluator.dataset_readers import DatasetLimits, too_large_message
from evaluator.datasets import split_text_list, tags_parse, text_unstorable
from evaluator.endpoint_secrets import MAX_KEY_CHARS
from evaluator.metrics import METRICS, PRESET_LABELS, PRESETS
from evaluator.models import DatasetVersion, EmbeddingModel, LLMEndpoint, TargetKind
from leaderboard.models import RegisteredModel

CRITERION_SLOTS = 3
_RUBRIC_LINE = re.compile(r"^\s*([1-5])\s*[:.)=-]\s*(.+?)\s*$")


def rubric_parse(text: str) -> dict[str, str]:
    """``1: wrong`` ... ``5: perfect``, one per line, into {"1": "wrong", ...}; ValueError names a bad line."""
    rubric = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _RUBRIC_LINE.match(line)
        if not match:
            raise ValueError(_("Rubric line %(n)s should read like “3: partly right”.") % {"n": number})
        rubric[match.group(1)] = match.group(2)
    return rubric


def dataset_file_size_validate(upload) -> None:
    """Refused before anything reads it (Django has spooled it to disk past FILE_UPLOAD_MAX_MEMORY_SIZE)."""
    limits = DatasetLimits.from_settings()
    if upload.size > limits.max_bytes:
        raise forms.ValidationError(too_large_message(limits))


class DatasetUploadForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    private = forms.BooleanField(label=_("Private to my group"), required=False)
    file = forms.FileField(label=_("File (CSV, JSONL or Excel)"), validators=[dataset_file_size_validate])


class DatasetEditForm(forms.Form):
    """A dataset's name, description and privacy; its rows change by new versions, never here."""

    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    private = forms.BooleanField(label=_("Private to my group"), required=False)


class DatasetVersionUploadForm(forms.Form):
    file = forms.FileField(label=_("File (CSV, JSONL or Excel)"), validators=[dataset_file_size_validate])
    note = forms.CharField(label=_("What changed"), max_length=300, required=False)


class RowEditForm(forms.Form):
    """One row edited in the page; saving makes a new version. Django's CharField already refuses a NUL."""

    position = forms.IntegerField(widget=forms.HiddenInput, required=False)
    question = forms.CharField(label=_("Question"), widget=forms.Textarea(attrs={"rows": 2}))
    reference = forms.CharField(label=_("Reference answer"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    contexts = forms.CharField(
        label=_("Contexts (one per block, separated by a line with |||)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    response = forms.CharField(label=_("Response (optional)"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tags = forms.CharField(label=_("Tags (comma-separated)"), required=False)
    delete = forms.BooleanField(label=_("Delete this row"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The same limit as a cell of an uploaded file (read at request time, like the upload limits).
        limit = settings.DATASET_MAX_FIELD_CHARS
        for name in ("question", "reference", "contexts", "response", "tags"):
            self.fields[name].max_length = limit
            self.fields[name].validators.append(MaxLengthValidator(limit))
            self.fields[name].widget.attrs["maxlength"] = str(limit)

    def clean_contexts(self) -> list[str]:
        return _text_list(split_text_list, self.cleaned_data["contexts"])

    def clean_tags(self) -> list[str]:
        return _text_list(tags_parse, self.cleaned_data["tags"])


def _text_list(parse, value: str) -> list[str]:
    try:
        items = parse(value)
    except ValueError as exc:
        raise forms.ValidationError(_("cannot be read: %(error)s") % {"error": exc}) from None
    reason = next(filter(None, map(text_unstorable, items)), None)
    if reason:
        raise forms.ValidationError(reason)
    return items


# The fields that belong to one kind of endpoint: static/js/evaluator.js shows only the chosen kind's, and
# ``EndpointForm.clean`` empties the other kind's.
ENDPOINT_KIND_FIELDS = {
    "openai": ("base_url", "model_name", "secret_kind", "api_key", "remove_key", "secret_name"),
    "local": ("local_path",),
}


class EndpointForm(forms.ModelForm):
    """An endpoint and where its API key comes from: typed here (stored encrypted, never shown back), or the
    name of a secret an administrator placed. The base URL must be on the administrator's allowed list."""

    api_key = forms.CharField(
        label=_("Key"),
        required=False,
        max_length=MAX_KEY_CHARS,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Stored encrypted; never shown again, nor sent anywhere but this endpoint."),
    )
    remove_key = forms.BooleanField(label=_("Remove the stored key"), required=False)

    field_order = [
        "name",
        "kind",
        "base_url",
        "model_name",
        "secret_kind",
        "api_key",
        "remove_key",
        "secret_name",
        "local_path",
    ]

    class Meta:
        model = LLMEndpoint
        fields = [
            "name",
            "kind",
            "base_url",
            "model_name",
            "secret_kind",
            "secret_name",
            "local_path",
            "temperature",
            "max_tokens",
            "timeout_s",
            "max_concurrency",
            "max_retries",
            "is_judge",
            "private",
        ]
        widgets = {"secret_kind": forms.RadioSelect}
        help_texts = {
            "local_path": _("For a local model: a folder inside the allowed model roots, loaded on a worker."),
        }

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        from evaluator.models import SecretKind
        from evaluator.url_policy import allowed_hosts_text

        super().__init__(*args, **kwargs)
        self._encrypted: str | None = None
        allowed = allowed_hosts_text()
        self.fields["base_url"].help_text = (
            _(
                "An OpenAI-compatible API inside your network, e.g. http://vllm.internal:8000/v1 "
                "(vLLM, TGI, Ollama...). "
                "Allowed hosts: %(hosts)s."
            )
            % {"hosts": allowed}
            if allowed
            else _(
                "No endpoint host is allowed on this site yet: an administrator lists the hosts and networks of your "
                "LLM servers in ENDPOINT_ALLOWED_HOSTS."
            )
        )
        offered = {SecretKind.NONE, SecretKind.STORED, self.instance.secret_kind}
        if settings.ENDPOINT_SECRETS_DIR:
            offered.add(SecretKind.FILE)
        if settings.ENDPOINT_SECRETS_ENV_PREFIX:
            offered.add(SecretKind.ENV)
        self.fields["secret_kind"].choices = [(value, label) for value, label in SecretKind.choices if value in offered]
        self.fields["secret_kind"].required = False
        self.fields["secret_name"].help_text = _(
            "For a named secret: only its name (ASCII letters, digits, _ . -), as the administrator placed it. "
            "Not a path."
        )
        if self.instance.has_stored_key:
            self.fields["api_key"].label = _("Replace the stored key")
            self.fields["api_key"].help_text = _(
                "A key is stored (it is never shown). Type a new one to replace it, or leave this empty to keep it."
            )
        else:
            del self.fields["remove_key"]

    @property
    def kind_fields(self) -> dict[str, str]:
        return {kind: " ".join(names) for kind, names in ENDPOINT_KIND_FIELDS.items()}

    @property
    def key_is_stored(self) -> bool:
        return self.instance.has_stored_key

    def clean(self):
        data = super().clean()
        if data.get("kind") == "openai" and not (data.get("base_url") and data.get("model_name")):
            raise forms.ValidationError(_("An OpenAI-compatible endpoint needs a base URL and a model name."))
        if data.get("kind") == "local":
            from leaderboard.model_inspection import ModelFolderError, allowed_path_resolve

            data["base_url"], data["secret_kind"], data["secret_name"] = "", "", ""
            try:
                data["local_path"] = str(allowed_path_resolve(data.get("local_path", "")))
            except ModelFolderError as exc:
                self.add_error("local_path", str(exc))
            return data
        data["local_path"] = ""  # a folder typed before switching to an API is not kept (the page hides it)
        if data.get("base_url"):
            from evaluator.url_policy import UrlRefused, url_check

            try:
                url_check(data["base_url"])
            except UrlRefused as exc:
                self.add_error("base_url", str(exc))
        self._secret_clean(data)
        return data

    def _secret_clean(self, data) -> None:
        from evaluator.endpoint_secrets import (
            SecretMissing,
            key_encrypt,
            key_text_check,
            secret_env_read,
            secret_file_read,
        )
        from evaluator.models import SecretKind

        kind, key = data.get("secret_kind") or SecretKind.NONE, (data.get("api_key") or "").strip()
        name = (data.get("secret_name") or "").strip()
        if key and kind == SecretKind.NONE:
            kind = data["secret_kind"] = SecretKind.STORED  # a key typed without picking where it comes from
        if kind in (SecretKind.FILE, SecretKind.ENV):
            if key:
                self.add_error("api_key", _("Either type a key or name a secret, not both."))
            elif not name:
                self.add_error("secret_name", _("Give the name of the secret."))
            else:
                try:  # read here, where the form is saved, so that a bad name or file is told now
                    (secret_file_read if kind == SecretKind.FILE else secret_env_read)(name)
                except SecretMissing as exc:
                    self.add_error("secret_name", str(exc))
            data["secret_name"] = name
            return
        data["secret_name"] = ""
        if kind != SecretKind.STORED:
            return
        if key:
            try:
                self._encrypted = key_encrypt(key_text_check(key))
            except SecretMissing as exc:
                self.add_error("api_key", str(exc))
        elif data.get("remove_key"):
            data["secret_kind"] = SecretKind.NONE
        elif not self.instance.has_stored_key:
            self.add_error("api_key", _("Type the API key."))
        elif self.instance.pk and data.get("base_url") != self.instance.base_url:
            # A stored key goes only to the URL its owner stored it with: moving the URL takes the key again.
            self.add_error(
                "api_key",
                _(
                    "The base URL changed: type the key again (a stored key is sent only to "
                    "the URL it was stored with)."
                ),
            )

    def save(self, commit=True):
        from evaluator.models import SecretKind

        endpoint = super().save(commit=False)
        if self._encrypted is not None:
            endpoint.api_key_encrypted = self._encrypted
        elif endpoint.secret_kind != SecretKind.STORED:
            endpoint.api_key_encrypted = ""
        endpoint.api_key_needed = False
        # What an earlier "test connection" said is about the old settings.
        endpoint.last_checked_at, endpoint.last_check_ok, endpoint.last_check_message = None, None, ""
        endpoint.last_check_message_i18n = None
        if commit:
            endpoint.save()
        return endpoint


class EvaluationRunForm(forms.Form):
    dataset_version = forms.ModelChoiceField(label=_("Dataset version"), queryset=DatasetVersion.objects.none())
    target_kind = forms.ChoiceField(
        label=_("Model under test"),
        choices=TargetKind.choices,
        widget=forms.RadioSelect,
        initial=TargetKind.PRECOMPUTED,
    )
    target_model = forms.ModelChoiceField(
        label=_("Registered model"), queryset=RegisteredModel.objects.none(), required=False
    )
    target_endpoint = forms.ModelChoiceField(label=_("Endpoint"), queryset=LLMEndpoint.objects.none(), required=False)
    judge = forms.ModelChoiceField(label=_("Judge LLM"), queryset=LLMEndpoint.objects.none(), required=False)
    embedding = forms.ModelChoiceField(
        label=_("Embedding model"),
        queryset=EmbeddingModel.objects.all(),
        required=False,
        empty_label=_("all-MiniLM-L6-v2 (packaged)"),
    )
    preset = forms.ChoiceField(label=_("Preset"), choices=list(PRESET_LABELS.items()), initial="qa")
    metrics = forms.MultipleChoiceField(
        label=_("Metrics"),
        choices=[(k, m.label) for k, m in METRICS.items()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    prompt_template = forms.CharField(
        label=_("Prompt template for the model under test"), widget=forms.Textarea(attrs={"rows": 6}), required=False
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        from evaluator.models import GoldenDataset

        # For the Korean-text note (static/js/evaluator.js): the registered models with a folder of their own.
        self.fields["embedding"].widget.attrs["data-with-folder"] = json.dumps(
            list(EmbeddingModel.objects.exclude(path="").values_list("pk", flat=True))
        )

        # Up to three custom criteria, each a name, a definition, a kind, and for a rubric its score lines.
        for i in range(1, CRITERION_SLOTS + 1):
            self.fields[f"criterion_{i}_name"] = forms.CharField(label=_("Name"), required=False, max_length=100)
            self.fields[f"criterion_{i}_definition"] = forms.CharField(
                label=_("Definition"),
                required=False,
                widget=forms.Textarea(attrs={"rows": 2}),
                help_text=_("What the judge checks, e.g. “The answer is polite and uses formal Korean (존댓말).”"),
            )
            self.fields[f"criterion_{i}_kind"] = forms.ChoiceField(
                label=_("Kind"),
                choices=[("aspect", _("yes / no")), ("rubric", _("1–5 rubric"))],
                initial="aspect",
                required=False,
            )
            self.fields[f"criterion_{i}_rubric"] = forms.CharField(
                label=_("Rubric (for 1–5)"),
                required=False,
                widget=forms.Textarea(attrs={"rows": 5}),
                help_text=_(
                    "One line per score, e.g. “1: wrong”, “3: partly right”, “5: fully right”. Empty: a generic rubric."
                ),
            )

        datasets = GoldenDataset.objects.visible_to(user).values("pk")
        self.fields["dataset_version"].queryset = DatasetVersion.objects.filter(dataset__in=datasets).select_related(
            "dataset"
        )
        self.fields["dataset_version"].label_from_instance = lambda v: f"{v.dataset.name} v{v.number} ({v.row_count})"
        self.fields["target_model"].queryset = RegisteredModel.objects.visible_to(user).filter(deleted=False)
        endpoints = LLMEndpoint.objects.visible_to(user)
        self.fields["target_endpoint"].queryset = endpoints
        self.fields["judge"].queryset = endpoints.filter(is_judge=True)
        if not self.is_bound:
            self.initial.setdefault("metrics", PRESETS["qa"])

    def criterion_slots(self):
        """The criterion fields grouped per slot, for the template."""
        return [
            [self[f"criterion_{i}_{part}"] for part in ("name", "definition", "kind", "rubric")]
            for i in range(1, CRITERION_SLOTS + 1)
        ]

    def clean(self):
        data = super().clean()
        criteria = []
        for i in range(1, CRITERION_SLOTS + 1):
            name = (data.get(f"criterion_{i}_name") or "").strip()
            definition = (data.get(f"criterion_{i}_definition") or "").strip()
            if not name and not definition:
                continue
            if not name or not definition:
                self.add_error(
                    f"criterion_{i}_name" if not name else f"criterion_{i}_definition",
                    _("A custom criterion needs both a name and a definition."),
                )
                continue
            kind = data.get(f"criterion_{i}_kind") or "aspect"
            criterion = {"name": name, "definition": definition, "kind": kind}
            if kind == "rubric":
                try:
                    criterion["rubric"] = rubric_parse(data.get(f"criterion_{i}_rubric") or "")
                except ValueError as exc:
                    self.add_error(f"criterion_{i}_rubric", str(exc))
            criteria.append(criterion)
        data["criteria"] = criteria
        return data

    def criteria(self) -> list[dict]:
        return self.cleaned_data.get("criteria", [])


class EmbeddingForm(forms.ModelForm):
    class Meta:
        model = EmbeddingModel
        fields = ["name", "path"]
        help_texts = {
            "path": _(
                "A sentence-transformers folder inside the allowed model roots. Empty: the packaged "
                "all-MiniLM-L6-v2 (English; for Korean text register a multilingual model)."
            )
        }

    def clean_path(self):
        raw = (self.cleaned_data.get("path") or "").strip()
        if not raw:
            return ""
        from leaderboard.model_inspection import ModelFolderError, allowed_path_resolve

        try:
            folder = allowed_path_resolve(raw)
        except ModelFolderError as exc:
            raise forms.ValidationError(str(exc)) from exc
        if not ((folder / "modules.json").is_file() or (folder / "config.json").is_file()):
            raise forms.ValidationError(
                _(
                    "%(path)s has neither modules.json nor config.json: not a "
                    "sentence-transformers or Hugging Face model folder."
                )
                % {"path": folder}
            )
        return str(folder)
