"""Registered models: a folder on the site's model storage, with what the leaderboard shows of it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leaderboard.harness.suites import DEFAULT_SUITE
from runs.ownership import Owned


class Precision(models.TextChoices):
    FLOAT32 = "float32", "float32"
    FLOAT16 = "float16", "float16"
    BFLOAT16 = "bfloat16", "bfloat16"
    INT8 = "8bit", "8bit"
    INT4 = "4bit", "4bit"
    GPTQ = "GPTQ", "GPTQ"


class ModelType(models.TextChoices):
    PRETRAINED = "pretrained", _("pretrained")
    CONTINUOUSLY_PRETRAINED = "continuously_pretrained", _("continuously pretrained")
    FINE_TUNED = "fine_tuned", _("fine-tuned on domain data")
    CHAT = "chat", _("chat models (RLHF, DPO, IFT, ...)")
    RL_TUNED = "rl_tuned", _("RL-tuned")


class WeightType(models.TextChoices):
    ORIGINAL = "original", _("Original")
    ADAPTER = "adapter", _("Adapter")
    DELTA = "delta", _("Delta")


class RegisteredModel(Owned):
    """A model folder (or PEFT adapter plus its base) that was submitted for evaluation."""

    display_name = models.CharField(max_length=200)
    storage_path = models.CharField(max_length=1000, help_text=_("Folder inside one of the allowed model roots."))
    # A git commit when the folder is a checkout, else a sha256 over config and weight files.
    revision = models.CharField(max_length=80, blank=True)
    revision_note = models.CharField(max_length=200, blank=True)
    precision = models.CharField(max_length=20, choices=Precision.choices, default=Precision.BFLOAT16)
    model_type = models.CharField(max_length=40, choices=ModelType.choices, default=ModelType.PRETRAINED)
    weight_type = models.CharField(max_length=20, choices=WeightType.choices, default=WeightType.ORIGINAL)
    # For adapters and deltas: the folder of the model they apply to.
    base_model_path = models.CharField(max_length=1000, blank=True)
    architecture = models.CharField(max_length=200, blank=True)
    num_params = models.BigIntegerField(null=True, blank=True)
    license = models.CharField(max_length=100, blank=True)
    use_chat_template = models.BooleanField(default=False)
    merged = models.BooleanField(default=False)
    moe = models.BooleanField(default=False, verbose_name="MoE")
    flagged = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    submitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["display_name", "-submitted_at"]
        indexes = [models.Index(fields=["storage_path", "revision"], name="model_path_revision")]
        constraints = [
            # One live row per folder revision and way of running it: concurrent submissions of a new
            # folder get the same row (leaderboard.services.model_register), and no submission can make a
            # second row with another owner or visibility.
            models.UniqueConstraint(
                fields=["storage_path", "revision", "precision", "weight_type", "base_model_path"],
                condition=Q(deleted=False),
                name="model_one_live_per_revision",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} @ {self.revision[:10]}" if self.revision else self.display_name

    @property
    def params_billions(self) -> float | None:
        return round(self.num_params / 1e9, 2) if self.num_params else None


class LeaderboardPreference(models.Model):
    """What a user chose to see in the leaderboard table (the column picker), remembered across visits."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leaderboard_preference"
    )
    columns = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"columns of {self.user}"


# The label and note of the rows the site's migrations add (0003: the random baseline), in the reader's language;
# rows an administrator writes are shown as written.
REFERENCE_ROW_SHIPPED_TEXT = {
    "Random baseline": _("Random baseline"),
    "Chance level of each benchmark": _("Chance level of each benchmark"),
}


class ReferenceRow(models.Model):
    """A row shown above the ranking but never ranked: the random baseline, or a reference model an admin keeps."""

    class Kind(models.TextChoices):
        BASELINE = "baseline", _("Baseline")
        REFERENCE = "reference", _("Reference")

    suite = models.CharField(max_length=100, default=DEFAULT_SUITE)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.REFERENCE)
    label = models.CharField(max_length=200)
    # Suite column key -> score as a fraction (as stored for runs): {"arc": 0.25, ...}.
    values = models.JSONField(default=dict)
    note = models.CharField(max_length=300, blank=True)
    shown = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["suite", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_kind_display()})"

    @property
    def label_text(self) -> str:
        return str(REFERENCE_ROW_SHIPPED_TEXT.get(self.label, self.label))

    @property
    def note_text(self) -> str:
        return str(REFERENCE_ROW_SHIPPED_TEXT.get(self.note, self.note))


class LeaderboardEntry(models.Model):
    """The ranking's read model: per model and suite, the column scores of its newest full succeeded run.

    Derived only, never edited: runs and their Score rows are the source of truth.
    ``leaderboard.ranking.leaderboard_entry_refresh`` rewrites an entry when a benchmark run finishes
    (``settings.RUN_FINISH_HOOKS``), and ``manage.py leaderboard_rebuild`` recomputes them all. It
    exists so the leaderboard page sorts and pages one indexed table instead of computing every
    model's latest run and six scores on each request (flat server time at thousands of models).
    """

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="leaderboard_entries")
    suite = models.CharField(max_length=100)
    run = models.ForeignKey("runs.EvaluationRun", on_delete=models.CASCADE, related_name="+")
    # Mean of the suite's columns; null when a column is missing (never ranked on a partial mean).
    average = models.FloatField(null=True)
    # Its standard error from the columns' (leaderboard.harness.suites.mean_stderr); null when one has none.
    average_stderr = models.FloatField(null=True)
    # Column key -> value / stderr, as fractions.
    scores = models.JSONField(default=dict)
    stderrs = models.JSONField(default=dict)
    evaluated_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "suite"], name="leaderboard_entry_unique")]
        indexes = [models.Index(fields=["suite", "-average"], name="leaderboard_entry_rank")]

    def __str__(self) -> str:
        return f"{self.model} on {self.suite}: {self.average}"


class MirrorCheck(models.Model):
    """The last verification of one suite against one dataset mirror folder (``manage.py mirror_verify``,
    the About page's button, or the worker's periodic check).

    Keyed by the mirror folder, so a check made for another folder (``mirror_verify --mirror``, or a
    process with another ``DATASET_MIRROR``) is never taken for this site's mirror. ``fingerprint``
    (``leaderboard.harness.mirror.mirror_fingerprint``) says whether the mirror changed since; the
    suite digest and lm-eval version whether the tasks it read may have.
    """

    mirror_dir = models.CharField(max_length=1000)
    suite = models.CharField(max_length=100)
    suite_version = models.PositiveIntegerField()
    # sha256 of the suite as checked (its columns, tasks and shots): an edited suite needs a new check.
    suite_digest = models.CharField(max_length=64)
    lm_eval_version = models.CharField(max_length=40, blank=True)
    fingerprint = models.CharField(max_length=64)
    # leaderboard.harness.mirror.MirrorReport.to_dict(): entries per leaf task, columns -> leaf tasks.
    report = models.JSONField(default=dict)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["suite", "mirror_dir"]
        constraints = [
            models.UniqueConstraint(fields=["mirror_dir", "suite"], name="mirror_check_one_per_folder_suite")
        ]

    def __str__(self) -> str:
        return f"{self.suite} on {self.mirror_dir} ({self.checked_at:%Y-%m-%d %H:%M})"
