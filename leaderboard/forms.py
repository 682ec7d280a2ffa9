from __future__ import annotations

from django import forms
from django.contrib.auth.models import Group
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from leaderboard.model_inspection import ModelFolderError, model_folder_inspect
from leaderboard.models import ModelType, Precision, WeightType


class SubmitForm(forms.Form):
    """What a user gives to queue a model: a folder on the model storage, not an upload."""

    storage_path = forms.CharField(
        label=_("Model path"), max_length=1000,
        help_text=_("A folder inside the allowed model roots (a Hugging Face model folder or a PEFT adapter)."),
        # The folder is checked as soon as it is typed or picked, before anything is queued.
        widget=forms.TextInput(attrs={
            "hx-get": reverse_lazy("leaderboard:submit_inspect"), "hx-trigger": "change, keyup changed delay:800ms",
            "hx-target": "#model-inspection", "hx-swap": "outerHTML", "hx-include": "[name=base_model_path]",
            "autocomplete": "off",
        }),
    )
    display_name = forms.CharField(label=_("Display name"), max_length=200, required=False)
    revision_note = forms.CharField(label=_("Revision note"), max_length=200, required=False)
    precision = forms.ChoiceField(label=_("Precision"), choices=Precision.choices, initial=Precision.BFLOAT16)
    weight_type = forms.ChoiceField(label=_("Weight type"), choices=WeightType.choices, initial=WeightType.ORIGINAL)
    base_model_path = forms.CharField(label=_("Base model path"), max_length=1000, required=False,
                                      help_text=_("For adapters and delta weights."))
    model_type = forms.ChoiceField(label=_("Model type"), choices=ModelType.choices, initial=ModelType.PRETRAINED)
    use_chat_template = forms.BooleanField(label=_("Apply the chat template"), required=False)
    private = forms.BooleanField(label=_("Private to my group"), required=False)
    group = forms.ModelChoiceField(label=_("Group"), queryset=Group.objects.none(), required=False)
    suite = forms.ChoiceField(label=_("Suite"))
    limit = forms.IntegerField(label=_("Smoke test: samples per task"), required=False, min_value=1,
                               help_text=_("Leave empty for a full run. Smoke runs are never ranked."))
    force = forms.BooleanField(label=_("Run again even if an identical run exists"), required=False)

    def __init__(self, *args, user, suites, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["group"].queryset = Group.objects.all() if user.is_staff else user.groups.all()
        self.fields["suite"].choices = [(suite.name, suite.title) for suite in suites]
        self.folder_info = None

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        weight_type = data.get("weight_type")
        if weight_type in (WeightType.ADAPTER, WeightType.DELTA) and not data.get("base_model_path"):
            # An adapter's own config may name its base; a delta's never does.
            if weight_type == WeightType.DELTA:
                self.add_error("base_model_path", _("Delta weights need the folder of their base model."))
                return data
        if data.get("private") and not data.get("group") and not self.user.groups.exists() and not self.user.is_staff:
            self.add_error("group", _("You belong to no group, so a private model would be visible to you alone; pick a group."))
        try:
            self.folder_info = model_folder_inspect(data["storage_path"], base_model_path=data.get("base_model_path", ""))
        except ModelFolderError as exc:
            field = "base_model_path" if "base model" in str(exc) else "storage_path"
            self.add_error(field, str(exc))
            return data
        if weight_type == WeightType.ADAPTER and not self.folder_info.is_adapter:
            self.add_error("weight_type", _("This folder has no adapter_config.json, so it is not a PEFT adapter."))
        return data
