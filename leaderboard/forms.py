from __future__ import annotations

from django import forms
from django.contrib.auth.models import Group
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from leaderboard.harness.executor import BATCH_SIZE_MAX
from leaderboard.harness.model_loading import CPU_BATCH_SIZE
from leaderboard.model_inspection import BaseModelFolderError, ModelFolderError, model_folder_inspect
from leaderboard.models import ModelType, Precision, WeightType
from runs import idempotency

# Filled in when a form is made (in the reader's language): a lazy text cannot be %-formatted at import.
BATCH_SIZE_HELP = _(
    "“auto”: the largest batch that fits, found by lm-eval on a GPU worker (a CPU worker uses "
    "%(cpu)d); or a whole number from 1 to %(max)d. Recorded in the run's spec and its reproduce "
    "commands."
)


class SubmitForm(forms.Form):
    """What a user gives to queue a model: a folder on the model storage, not an upload."""

    storage_path = forms.CharField(
        label=_("Model path"),
        max_length=1000,
        help_text=_("A folder inside the allowed model roots (a Hugging Face model folder or a PEFT adapter)."),
        # The folder is checked as soon as it is typed or picked, before anything is queued.
        widget=forms.TextInput(
            attrs={
                "hx-get": reverse_lazy("leaderboard:submit_inspect"),
                "hx-trigger": "change, keyup changed delay:800ms",
                "hx-target": "#model-inspection",
                "hx-swap": "outerHTML",
                "hx-include": "[name=base_model_path],[name=weight_type]",
                "autocomplete": "off",
            }
        ),
    )
    display_name = forms.CharField(label=_("Display name"), max_length=200, required=False)
    revision_note = forms.CharField(label=_("Revision note"), max_length=200, required=False)
    precision = forms.ChoiceField(label=_("Precision"), choices=Precision.choices, initial=Precision.BFLOAT16)
    weight_type = forms.ChoiceField(label=_("Weight type"), choices=WeightType.choices, initial=WeightType.ORIGINAL)
    base_model_path = forms.CharField(
        label=_("Base model path"), max_length=1000, required=False, help_text=_("For adapters and delta weights.")
    )
    model_type = forms.ChoiceField(label=_("Model type"), choices=ModelType.choices, initial=ModelType.PRETRAINED)
    use_chat_template = forms.BooleanField(label=_("Apply the chat template"), required=False)
    private = forms.BooleanField(label=_("Private to my group"), required=False)
    group = forms.ModelChoiceField(label=_("Group"), queryset=Group.objects.none(), required=False)
    suite = forms.ChoiceField(label=_("Suite"))
    partial = forms.BooleanField(
        label=_("Partial run: run only the columns the dataset mirror can serve"),
        required=False,
        help_text=_(
            "For a suite the mirror lacks data for (see the list above). The missing columns are shown as "
            "missing, and a partial run is never ranked."
        ),
    )
    batch_size = forms.CharField(
        label=_("Batch size"), max_length=10, initial="auto", required=False, help_text=BATCH_SIZE_HELP
    )
    limit = forms.IntegerField(
        label=_("Smoke test: samples per task"),
        required=False,
        min_value=1,
        max_value=1_000_000,
        help_text=_("Leave empty for a full run. Smoke runs are never ranked."),
    )
    force = forms.BooleanField(label=_("Run again even if an identical run exists"), required=False)
    # Made when the form is shown: the same form posted twice (a double click, a retry) queues one run.
    submission_token = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, user, suites, availability=None, **kwargs):
        """``availability``: ``{suite name: SuiteAvailability}`` (``leaderboard.mirror_reports``), read once by
        the view."""
        super().__init__(*args, **kwargs)
        self.user = user
        self.availability = availability or {}
        self.fields["group"].queryset = Group.objects.all() if user.is_staff else user.groups.all()
        self.fields["batch_size"].help_text = str(BATCH_SIZE_HELP) % {"cpu": CPU_BATCH_SIZE, "max": BATCH_SIZE_MAX}
        self.fields["suite"].choices = [(suite.name, self._suite_label(suite)) for suite in suites]
        self.folder_info = None
        self.missing_columns: list[str] = []
        if not self.is_bound:
            self.initial[idempotency.FIELD_NAME] = idempotency.submission_token_new()
        elif not idempotency.submission_token_clean(self.data.get(idempotency.FIELD_NAME)):
            self.token_renew()

    def token_renew(self) -> None:
        """A new token for the form as shown again (its old one is missing, malformed or used up)."""
        self.data = self.data.copy()
        self.data[idempotency.FIELD_NAME] = idempotency.submission_token_new()

    def _suite_label(self, suite) -> str:
        from leaderboard.mirror_reports import Served

        availability = self.availability.get(suite.name)
        if availability is None or availability.state == Served.FULLY:
            return suite.title_text
        if availability.state == Served.UNCHECKED:
            return _("%(suite)s (mirror not checked yet)") % {"suite": suite.title_text}
        if availability.state == Served.NOTHING:
            return _("%(suite)s (no data in the mirror)") % {"suite": suite.title_text}
        return _("%(suite)s (missing: %(columns)s)") % {
            "suite": suite.title_text,
            "columns": ", ".join(column.label for column in availability.missing),
        }

    def clean_batch_size(self):
        from leaderboard.harness.executor import batch_size_parse

        try:
            return batch_size_parse(self.cleaned_data.get("batch_size"))
        except ValueError:
            raise forms.ValidationError(
                _("Give “auto” or a whole number from 1 to %(max)d.") % {"max": BATCH_SIZE_MAX}, code="batch_size"
            ) from None

    def clean_submission_token(self):
        return idempotency.submission_token_clean(self.cleaned_data.get(idempotency.FIELD_NAME))

    @property
    def submission_key(self) -> str | None:
        return idempotency.submission_key_make(user=self.user, token=self.cleaned_data.get(idempotency.FIELD_NAME, ""))

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        weight_type = data.get("weight_type")
        if weight_type == WeightType.DELTA and not data.get("base_model_path"):
            # An adapter's own config may name its base; a delta's never does.
            self.add_error("base_model_path", _("Delta weights need the folder of their base model."))
            return data
        if data.get("private") and not data.get("group") and not self.user.groups.exists() and not self.user.is_staff:
            self.add_error(
                "group", _("You belong to no group, so a private model would be visible to you alone; pick a group.")
            )
        self._precision_check(data.get("precision"))
        self._mirror_check(data.get("suite"), bool(data.get("partial")))
        try:
            self.folder_info = model_folder_inspect(
                data["storage_path"], base_model_path=data.get("base_model_path", ""), weight_type=weight_type
            )
        except ModelFolderError as exc:
            self.add_error("base_model_path" if isinstance(exc, BaseModelFolderError) else "storage_path", str(exc))
            return data
        if weight_type == WeightType.ADAPTER and not self.folder_info.is_adapter:
            self.add_error("weight_type", _("This folder has no adapter_config.json, so it is not a PEFT adapter."))
        self._ownership_check()
        return data

    def _precision_check(self, precision: str | None) -> None:
        from leaderboard.harness.executor import PRECISION_WORKER_NEEDS
        from runs.selectors import worker_capability_available

        needs = PRECISION_WORKER_NEEDS.get(precision or "")
        if needs and not worker_capability_available(needs, queue="gpu"):
            self.add_error(
                "precision",
                _(
                    "No GPU worker that can run %(precision)s weights (it needs %(needs)s) is "
                    "running now, so nothing was queued; pick float16 or bfloat16, or ask an "
                    "administrator."
                )
                % {"precision": precision, "needs": ", ".join(needs)},
            )

    def _mirror_check(self, suite_name: str | None, partial: bool) -> None:
        """The rule of every submission path (``suite_serve_check``), here to show its message beside the suite."""
        from leaderboard.mirror_reports import SuiteNotServed, suite_serve_check

        availability = self.availability.get(suite_name or "")
        if availability is None:
            return
        try:
            self.missing_columns = suite_serve_check(availability=availability, partial=partial)
        except SuiteNotServed as exc:
            self.add_error("suite", str(exc))

    def _ownership_check(self) -> None:
        from leaderboard.services import model_folder_hidden_from, model_folder_refusal

        path = str(self.folder_info.path)
        if model_folder_hidden_from(storage_path=path, user=self.user):
            self.add_error("storage_path", str(model_folder_refusal(path)))
