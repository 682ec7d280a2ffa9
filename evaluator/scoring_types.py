"""Plain data passed between the evaluator app and its scoring engine.

No ragas import here: the web process and the executor import these types, and only
evaluator/ragas_adapter.py may load ragas.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ScoringError(Exception):
    """A problem that makes the whole scoring run pointless (judge unreachable at the start,
    unknown metric, embedding folder missing); the message is shown to the user."""


class JudgeDown(ScoringError):
    """The judge answered none of the run's calls (it went down, or hangs past the timeout, after the
    start-up check). ``scores`` holds every (sample, metric), the judge's unscored with the reason, so
    that the caller can keep them for the user to see before failing the run."""

    def __init__(self, message: str, scores: list[SampleScore]):
        super().__init__(message)
        self.scores = scores


@dataclass(frozen=True)
class EvalSample:
    """One dataset row as the scorer sees it."""

    sample_id: str  # str(DatasetRow.pk)
    question: str
    reference: str = ""
    contexts: tuple[str, ...] = ()
    response: str = ""


@dataclass(frozen=True)
class LLMConfig:
    """A judge or a model under test (from evaluator.models.LLMEndpoint, or a RegisteredModel)."""

    kind: str  # "openai" | "local"
    model_name: str = ""
    base_url: str = ""
    api_key: str = field(default="", repr=False)  # resolved where the call is made (evaluator.endpoints)
    local_path: str = ""
    temperature: float = 0.0
    max_tokens: int = 1024
    timeout_s: float = 60.0
    max_concurrency: int = 8
    max_retries: int = 2


@dataclass(frozen=True)
class CustomCriterion:
    """A user-written criterion: a yes/no aspect critic, or a 1..5 rubric."""

    key: str  # metric key used in results, e.g. "custom:polite"
    name: str
    definition: str
    kind: str = "aspect"  # "aspect" | "rubric"
    rubric: dict[str, str] = field(default_factory=dict)  # score -> description, for kind "rubric"


@dataclass
class SampleScore:
    sample_id: str
    metric: str
    value: float | None  # None when unscored
    reason: str = ""  # judge's reasoning if any
    raw_output: str = ""  # judge's raw text, kept when it could not be parsed
    unscored_reason: str = ""


@dataclass
class GeneratedResponse:
    sample_id: str
    response: str
    error: str = ""  # non-empty: no response for this sample (its metrics become unscored with this reason)
