"""Reading a benchmark run's per-sample log (``EvaluationRun.samples_path``, jsonl.gz) for the sample browser.

The file is read as a stream, one line at a time: only the requested page of samples is kept in memory
(plus one boolean per sample when two runs are compared). Each line is one lm-eval sample with a
``task`` key first (``leaderboard.harness.results.write_samples``), so lines of other tasks are skipped
without parsing them.

When is a sample "correct"? From one per-sample metric of its task, the *correctness metric*:

1. the metric of the suite column that scores the task in this run (``run.spec["columns"]``; a group
   column such as MMLU covers its leaf tasks), e.g. ``acc_norm`` for ARC, ``exact_match`` for GSM8K;
2. otherwise the first of ``acc``, ``acc_norm``, ``exact_match``, ``mc2`` the sample has.

The sample is correct when that value is above 0.5. For 0/1 metrics (``acc``, ``acc_norm``,
``exact_match``) that is "the value is 1". For TruthfulQA MC2 (lm-eval reports it as ``acc`` of
``truthfulqa_mc2``, a probability mass) it means the model put most of its probability on the true
answers. A sample without any of these metrics is neither correct nor incorrect ("unknown").
Samples of a task with several filters (GSM8K: strict-match and flexible-extract) are one line per
filter; each is judged on its own, so the counts are given per filter (20 documents are 20 judgements
under each filter, not 40 of one kind).

The prompt of a few-shot task is lm-eval's ``description + (example + fewshot_delimiter) * num_fewshot +
question``; the browser shows the question first and the examples folded under it
(``prompt_split``).
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

CORRECTNESS_METRICS = ("acc", "acc_norm", "exact_match", "mc2")
CORRECT_ABOVE = 0.5
CORRECT_CHOICES = ("all", "yes", "no")
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100


class SamplesUnavailable(Exception):
    """The run has no per-sample log, or its file is missing or unreadable."""


@dataclass
class Choice:
    text: str
    loglikelihood: float | None = None
    is_gold: bool = False
    is_pred: bool = False  # highest loglikelihood
    is_pred_norm: bool = False  # highest loglikelihood per character (what acc_norm scores)


@dataclass
class SampleView:
    """One sample as the browser shows it."""

    task: str
    doc_id: Any
    filter: str
    output_type: str
    prompt: str
    question: str = ""  # the prompt after its few-shot examples (all of it for zero-shot tasks)
    fewshot: str = ""  # the description and few-shot examples before the question
    fewshot_count: int = 0
    continuation: str = ""  # the scored text shared by all choices (partial-context tasks: Winogrande)
    choices: list[Choice] = field(default_factory=list)
    target: str = ""
    response: str = ""  # the model's raw output (generation tasks)
    filtered_response: str = ""  # after the task's filter
    metrics: dict[str, Any] = field(default_factory=dict)
    correctness_metric: str | None = None
    correct: bool | None = None
    doc: Any = None

    @property
    def has_gold(self) -> bool:
        return any(choice.is_gold for choice in self.choices)

    @property
    def pred_choice(self) -> Choice | None:
        return next((choice for choice in self.choices if choice.is_pred), None)

    @property
    def pred_norm_choice(self) -> Choice | None:
        return next((choice for choice in self.choices if choice.is_pred_norm), None)

    @property
    def doc_json(self) -> str:
        return json.dumps(self.doc, ensure_ascii=False, indent=1, default=str)


@dataclass
class SamplesPage:
    run_id: int
    tasks: list[str]
    task: str
    filters: list[str]
    filter: str
    correct: str
    doc_id: int | None
    page: int
    per_page: int
    items: list[SampleView]
    total: int  # samples matching task, filter, doc and the correct/incorrect choice
    counts: dict[str, int]  # "correct", "incorrect", "unknown" among samples of the task (and filter, doc)
    correctness_metric: str | None = None
    # The same counts per lm-eval filter, and the distinct documents they judge: with two filters each
    # document is judged twice, once under each.
    filter_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    documents: int = 0

    @property
    def counts_by_filter(self) -> bool:
        return len(self.filter_counts) > 1

    @property
    def num_pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.num_pages

    @property
    def previous_page(self) -> int:
        return self.page - 1

    @property
    def next_page(self) -> int:
        return self.page + 1

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.total else 0

    @property
    def last_index(self) -> int:
        return min(self.page * self.per_page, self.total)


# ----------------------------------------------------------------------------------------------
# Reading the file
# ----------------------------------------------------------------------------------------------


def samples_file(run) -> Path:
    """The run's per-sample log. Raises SamplesUnavailable when it has none or it is gone."""
    if not run.samples_path:
        raise SamplesUnavailable(_("This run has no per-sample log."))
    path = Path(settings.ARTIFACTS_DIR) / run.samples_path  # an absolute samples_path stays as it is
    if not path.is_file():
        raise SamplesUnavailable(_("The per-sample log %(path)s is missing.") % {"path": run.samples_path})
    return path


_TASK_PREFIX = '{"task": '


def samples_iter(path: Path | str, *, task: str | None = None) -> Iterator[dict[str, Any]]:
    """The samples of a jsonl(.gz) file, one at a time; only those of ``task`` when given."""
    wanted = None if task is None else f"{_TASK_PREFIX}{json.dumps(task, ensure_ascii=False)},"
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                # Lines we wrote start with the task: skip other tasks without parsing the line.
                if wanted is not None and line.startswith(_TASK_PREFIX) and not line.startswith(wanted):
                    continue
                if not line.strip():
                    continue
                sample = json.loads(line)
                if task is None or sample.get("task") == task:
                    yield sample
    except (OSError, EOFError, ValueError) as exc:  # gzip.BadGzipFile is an OSError; JSON errors ValueErrors
        raise SamplesUnavailable(
            _("The per-sample log %(path)s could not be read: %(error)s") % {"path": path.name, "error": exc}
        ) from exc


def sample_tasks(run) -> list[str]:
    """The (leaf) tasks of a run that have samples, in the order lm-eval ran them."""
    lm_eval = (run.details or {}).get("lm_eval") or {}
    tasks = list(lm_eval.get("n-samples") or {})
    if tasks:
        return tasks
    # An imported or older run without n-samples: read the task names from the file itself.
    seen: dict[str, None] = {}
    for sample in samples_iter(samples_file(run)):
        seen.setdefault(sample.get("task", ""), None)
    return list(seen)


def task_filters(run, task: str) -> list[str]:
    """lm-eval filters the task's results were reported under ("none", "strict-match"...)."""
    results = ((run.details or {}).get("lm_eval") or {}).get("results", {}).get(task, {})
    filters = {key.partition(",")[2] for key in results if "," in key}
    return sorted(f for f in filters if f)


def task_config(run, task: str) -> dict[str, Any]:
    return (((run.details or {}).get("lm_eval") or {}).get("configs") or {}).get(task) or {}


# ----------------------------------------------------------------------------------------------
# Correctness
# ----------------------------------------------------------------------------------------------


def correctness_metrics(run) -> dict[str, str]:
    """``{task: metric}``: the suite column's metric for each task the run's suite scores (see the module doc)."""
    spec = run.spec or {}
    leaf_tasks = (run.details or {}).get("leaf_tasks") or {}
    metrics: dict[str, str] = {}
    for column in spec.get("columns") or []:
        if not isinstance(column, Mapping) or not column.get("metric"):
            continue
        names = (
            [column["group_of"]]
            if column.get("group_of")
            else ([column["task"]] if column.get("task") else list(column.get("tasks") or []))
        )
        for name in names:
            for leaf in [name, *leaf_tasks.get(name, [])]:
                metrics.setdefault(leaf, column["metric"])
    return metrics


def sample_correctness_metric(sample: Mapping[str, Any], preferred: str | None = None) -> str | None:
    """The metric that decides whether ``sample`` is correct, or None if it has none we know."""
    for metric in ((preferred,) if preferred else ()) + CORRECTNESS_METRICS:
        if _number(sample.get(metric)) is not None:
            return metric
    return None


def sample_is_correct(sample: Mapping[str, Any], metric: str | None) -> bool | None:
    value = _number(sample.get(metric)) if metric else None
    return None if value is None else value > CORRECT_ABOVE


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


# ----------------------------------------------------------------------------------------------
# What is shown of one sample
# ----------------------------------------------------------------------------------------------


def _requests(arguments: Any) -> list[list[Any]]:
    """lm-eval's ``arguments``: a list of argument lists, or (newer lm-eval) ``{"gen_args_0": {"arg_0": ...}}``."""
    if isinstance(arguments, Mapping):
        return [
            [args[key] for key in sorted(args)] if isinstance(args, Mapping) else [args]
            for _name, args in sorted(arguments.items())
        ]
    return [list(args) if isinstance(args, (list, tuple)) else [args] for args in (arguments or [])]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _loglikelihood(response: Any) -> float | None:
    # A loglikelihood response is [loglikelihood, is_greedy] (filtered) or [[loglikelihood, is_greedy]] (raw).
    while isinstance(response, (list, tuple)) and response:
        if _number(response[0]) is not None:
            return float(response[0])
        response = response[0]
    return _number(response)


def _common_prefix(texts: list[str]) -> str:
    """The longest common prefix, cut back to a word boundary ("Mary"/"Maria" differ as whole words)."""
    prefix = texts[0]
    for text in texts[1:]:
        while not text.startswith(prefix):
            prefix = prefix[:-1]
    if prefix and not prefix[-1].isspace() and any(len(text) > len(prefix) for text in texts):
        prefix = prefix[: max(prefix.rfind(" "), prefix.rfind("\n")) + 1]
    return prefix


def _argmax(values: list[float | None]) -> int | None:
    known = [(value, index) for index, value in enumerate(values) if value is not None]
    return max(known, key=lambda pair: (pair[0], -pair[1]))[1] if known else None


def _gold_indexes(sample: Mapping[str, Any], choices: list[str]) -> set[int]:
    doc = sample.get("doc")
    # TruthfulQA MC2: every true answer is gold (lm-eval's target is only the first one).
    if isinstance(doc, Mapping) and isinstance(doc.get("mc2_targets"), Mapping):
        labels = doc["mc2_targets"].get("labels") or []
        if len(labels) == len(choices):
            return {index for index, label in enumerate(labels) if label}
    target = sample.get("target")
    targets = target if isinstance(target, list) else [target]
    gold = set()
    for value in targets:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(choices):
            gold.add(value)
        elif isinstance(value, str) and value in choices:
            gold.add(choices.index(value))
    return gold


def _output_type(sample: Mapping[str, Any], config: Mapping[str, Any], requests: list[list[Any]]) -> str:
    if config.get("output_type"):
        return str(config["output_type"])
    if requests and len(requests[0]) > 1 and isinstance(requests[0][1], Mapping):
        return "generate_until"
    return "multiple_choice" if len(requests) > 1 else "loglikelihood"


def prompt_split(prompt: str, config: Mapping[str, Any]) -> tuple[str, str, int]:
    """``(question, few-shot part, number of examples)`` of a prompt built as lm-eval builds it (module doc).

    Counted from the start: the description, then ``num_fewshot`` examples each ending with the delimiter;
    the rest is the question, even when it holds the delimiter itself. A prompt that does not have that
    many delimiters (an imported run, a chat template) is all question.
    """
    shots = config.get("num_fewshot")
    delimiter = config.get("fewshot_delimiter", "\n\n")
    if (
        not isinstance(shots, int)
        or isinstance(shots, bool)
        or shots <= 0
        or not isinstance(delimiter, str)
        or not delimiter
    ):
        return prompt, "", 0
    description = config.get("description")
    start = 0
    if isinstance(description, str) and description.strip() and prompt.startswith(description.strip()):
        start = len(description.strip())
        while prompt.startswith(delimiter, start):
            start += len(delimiter)
    parts = prompt[start:].split(delimiter)
    if len(parts) <= shots:
        return prompt, "", 0
    fewshot = prompt[:start] + delimiter.join(parts[:shots]) + delimiter
    return delimiter.join(parts[shots:]), fewshot, shots


def sample_view(
    sample: Mapping[str, Any], *, config: Mapping[str, Any] | None = None, preferred_metric: str | None = None
) -> SampleView:
    """What the browser shows of one lm-eval sample (see the module doc for "correct")."""
    config = config or {}
    requests = _requests(sample.get("arguments"))
    output_type = _output_type(sample, config, requests)
    metric = sample_correctness_metric(sample, preferred_metric)
    view = SampleView(
        task=str(sample.get("task", "")),
        doc_id=sample.get("doc_id"),
        filter=str(sample.get("filter", "none")),
        output_type=output_type,
        prompt=_text(requests[0][0]) if requests and requests[0] else "",
        target=_text(sample.get("target")),
        metrics={name: sample.get(name) for name in sample.get("metrics") or [] if name in sample},
        correctness_metric=metric,
        correct=sample_is_correct(sample, metric),
        doc=sample.get("doc"),
    )
    view.question, view.fewshot, view.fewshot_count = prompt_split(view.prompt, config)
    if output_type in ("multiple_choice", "loglikelihood") and requests and all(len(r) > 1 for r in requests):
        contexts = [_text(r[0]) for r in requests]
        continuations = [_text(r[1]) for r in requests]
        if len(set(contexts)) > 1 and len(set(continuations)) == 1:
            # Partial-context scoring (Winogrande): the choices are the contexts, the continuation is shared.
            view.prompt = _common_prefix(contexts)
            view.question, view.fewshot, view.fewshot_count = prompt_split(view.prompt, config)
            view.continuation = continuations[0]
            texts = bare = [context[len(view.prompt) :] for context in contexts]
        else:
            texts = continuations
            # The task's choice strings are the continuations without the target delimiter; acc_norm
            # divides the loglikelihood by their length.
            delimiter = str(config.get("target_delimiter", " "))
            bare = [text[len(delimiter) :] if delimiter and text.startswith(delimiter) else text for text in texts]
        responses = sample.get("filtered_resps") or sample.get("resps") or []
        lls = [_loglikelihood(responses[i]) if i < len(responses) else None for i in range(len(texts))]
        pred = _argmax(lls)
        pred_norm = _argmax(
            [ll / len(text) if ll is not None and text else ll for ll, text in zip(lls, bare, strict=True)]
        )
        gold = _gold_indexes(sample, bare)
        view.choices = [
            Choice(
                text=text,
                loglikelihood=ll,
                is_gold=index in gold,
                is_pred=index == pred,
                is_pred_norm=index == pred_norm,
            )
            for index, (text, ll) in enumerate(zip(texts, lls, strict=True))
        ]
    else:
        resps = sample.get("resps") or []
        first = resps[0] if resps else None
        view.response = _text(first[0] if isinstance(first, list) and first else first)
        filtered = sample.get("filtered_resps") or []
        view.filtered_response = _text(filtered[0] if isinstance(filtered, list) and filtered else filtered)
    return view


# ----------------------------------------------------------------------------------------------
# A page of samples
# ----------------------------------------------------------------------------------------------


def samples_page(
    *,
    run,
    task: str | None = None,
    correct: str = "all",
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    filter: str = "",
    doc_id: int | None = None,
) -> SamplesPage:
    """One page of a run's samples of one task, read from its jsonl.gz in a single streaming pass.

    Args:
        run: an EvaluationRun with ``samples_path``.
        task: a leaf task; default the run's first.
        correct: "all", "yes" (correct only) or "no" (incorrect only); see the module doc.
        page: 1-based; past the last page gives the last page.
        per_page: samples per page (at most MAX_PER_PAGE).
        filter: an lm-eval filter name to keep only its lines ("" for all).
        doc_id: only the sample(s) of this document.

    Raises:
        SamplesUnavailable: no per-sample log, or it cannot be read.
    """
    path = samples_file(run)
    tasks = sample_tasks(run)
    if not task or task not in tasks:
        task = tasks[0] if tasks else ""
    correct = correct if correct in CORRECT_CHOICES else "all"
    per_page = min(max(1, int(per_page)), MAX_PER_PAGE)
    page = max(1, int(page))
    filters = task_filters(run, task)
    filter = filter if filter in filters else ""
    config = task_config(run, task)
    preferred = correctness_metrics(run).get(task)

    def matching() -> Iterator[tuple[dict[str, Any], bool | None]]:
        for sample in samples_iter(path, task=task):
            if filter and sample.get("filter", "none") != filter:
                continue
            if doc_id is not None and sample.get("doc_id") != doc_id:
                continue
            yield sample, sample_is_correct(sample, sample_correctness_metric(sample, preferred))

    def wanted(is_correct: bool | None) -> bool:
        return (
            correct == "all" or (correct == "yes" and is_correct is True) or (correct == "no" and is_correct is False)
        )

    counts = {"correct": 0, "incorrect": 0, "unknown": 0}
    filter_counts: dict[str, dict[str, int]] = {}
    documents: set[Any] = set()
    metric_used = None
    kept: list[dict[str, Any]] = []
    total = 0
    start = (page - 1) * per_page
    for sample, is_correct in matching():
        outcome = "unknown" if is_correct is None else "correct" if is_correct else "incorrect"
        counts[outcome] += 1
        filter_counts.setdefault(str(sample.get("filter", "none")), {"correct": 0, "incorrect": 0, "unknown": 0})[
            outcome
        ] += 1
        documents.add(_hashable(sample.get("doc_id")))
        metric_used = metric_used or sample_correctness_metric(sample, preferred)
        if not wanted(is_correct):
            continue
        if start <= total < start + per_page:
            kept.append(sample)
        total += 1
    last_page = max(1, math.ceil(total / per_page))
    if page > last_page:  # a stale link past the end: read again for the last page
        page, start = last_page, (last_page - 1) * per_page
        kept = []
        position = 0
        for sample, is_correct in matching():
            if wanted(is_correct):
                if position >= start:
                    kept.append(sample)
                    if len(kept) == per_page:
                        break
                position += 1
    return SamplesPage(
        run_id=run.pk,
        tasks=tasks,
        task=task,
        filters=filters,
        filter=filter,
        correct=correct,
        doc_id=doc_id,
        page=page,
        per_page=per_page,
        total=total,
        counts=counts,
        correctness_metric=metric_used,
        filter_counts=dict(sorted(filter_counts.items())),
        documents=len(documents),
        items=[sample_view(sample, config=config, preferred_metric=preferred) for sample in kept],
    )


def samples_of_docs(
    run, *, task: str, filter: str, doc_ids: list[Any], preferred: str | None = None
) -> dict[Any, SampleView]:
    """``{doc_id: view}`` for a few documents of one task and filter, in one streaming pass (the comparison's
    flipped samples). Raises SamplesUnavailable like samples_page."""
    wanted = {_hashable(doc_id) for doc_id in doc_ids}
    config = task_config(run, task)
    found: dict[Any, SampleView] = {}
    for sample in samples_iter(samples_file(run), task=task):
        key = _hashable(sample.get("doc_id"))
        if key in wanted and key not in found and str(sample.get("filter", "none")) == filter:
            found[key] = sample_view(sample, config=config, preferred_metric=preferred)
            if len(found) == len(wanted):
                break
    return found


def sample_outcomes(run, *, preferred: Mapping[str, str] | None = None) -> dict[tuple[str, str, Any], bool | None]:
    """``{(task, filter, doc_id): correct}`` over the whole per-sample log (one boolean per sample kept)."""
    return outcomes_from_values(sample_values(run, preferred=preferred))


def sample_values(run, *, preferred: Mapping[str, str] | None = None) -> dict[tuple[str, str, Any], float | None]:
    """``{(task, filter, doc_id): the value of the task's correctness metric}`` over the whole per-sample log."""
    metrics = correctness_metrics(run) if preferred is None else preferred
    values: dict[tuple[str, str, Any], float | None] = {}
    for sample in samples_iter(samples_file(run)):
        task = sample.get("task", "")
        metric = sample_correctness_metric(sample, metrics.get(task))
        key = (task, str(sample.get("filter", "none")), _hashable(sample.get("doc_id")))
        values[key] = _number(sample.get(metric)) if metric else None
    return values


def outcomes_from_values(
    values: Mapping[tuple[str, str, Any], float | None],
) -> dict[tuple[str, str, Any], bool | None]:
    """Correct or not, as ``sample_is_correct`` decides it, from ``sample_values``."""
    return {key: None if value is None else value > CORRECT_ABOVE for key, value in values.items()}


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value
