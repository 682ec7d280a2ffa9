"""With ragas_judge (the judge's client), the only modules that import ragas: judge and embedding metrics.

How a run goes (``score_with_ragas``):
- one event loop (on a worker thread, see async_jobs), one ``AsyncOpenAI`` client for the judge, one
  ``asyncio.Semaphore(max_concurrency)`` around every chat call, and a pool of 2 x max_concurrency
  workers taking (sample, metric) jobs in sample order: metrics that make several calls per sample keep
  the semaphore full, and results arrive sample by sample rather than metric by metric;
- the client is ``AsyncOpenAI(base_url, api_key, timeout=timeout_s, max_retries=max_retries)``: openai
  retries 408/409/429/5xx, timeouts and dropped connections with backoff, so transient errors are retried
  there, inside one semaphore slot. A local model folder gets the same client over an in-process
  transport (local_llm);
- ragas gets ``llm_factory(model, provider="openai", client=...)`` wrapped in ``JudgeLLM`` and, for the
  embedding metrics, ``HuggingFaceEmbeddings`` on a local sentence-transformers folder: never a default.

Where the judge's raw text comes from: instructor (under ragas) raises on a parse failure, and several
ragas metrics (answer accuracy, response groundedness) catch that and return NaN, so the exception is
not always ours to see. The client's ``chat.completions.create`` is therefore wrapped before
``llm_factory`` patches it: the wrapper records every answer's text, and every failure, into a per-job
``CallLog`` held in a context variable (each job runs in its own asyncio task). ``JudgeLLM`` adds the
schema name when a parse fails. A job whose value is missing (exception, NaN) becomes unscored with the
last recorded failure as its reason and the last raw text as ``raw_output``.

Korean: ragas 0.4.3's prompts are English; ``BasePrompt.adapt(language, llm)`` can translate their
few-shot examples, but only by asking the judge itself, per run and per prompt, and a poor translation
would silently change the metric. Instead every judge call carries a system message
(``JUDGE_SYSTEM_PROMPT``, passed as llm_factory's ``system_prompt``; instructor appends its JSON-schema
instruction to it) telling the judge to read Korean as it is and to write free text in the question's
language. The input JSON that ragas builds keeps Korean unescaped (pydantic), and the answers are parsed
as UTF-8 JSON, so Korean passes both ways (tests/evaluator/test_scoring.py checks it).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# ragas sends usage analytics to a server outside the network unless told not to; this must be set
# before ragas is imported (it caches the flag), and nothing else in the project imports ragas.
os.environ["RAGAS_DO_NOT_TRACK"] = "true"

from evaluator.async_jobs import JobState, run_jobs, tasks_wait  # noqa: E402
from evaluator.ragas_judge import (  # noqa: E402
    CallLog,
    JudgeSession,
    _cache_prompt_schemas,
    _current_log,
    build_judge_client,
    preflight,
)
from evaluator.scoring_types import (  # noqa: E402
    CustomCriterion,
    EvalSample,
    JudgeDown,
    LLMConfig,
    SampleScore,
    ScoringError,
)

# One INFO line per judge call (httpx) and a progress bar per embedding batch (sentence-transformers)
# would flood the worker's log on a 600-call run.
for _noisy in ("httpx", "sentence_transformers"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)
logger = logging.getLogger(__name__)

COHERENCE_DEFINITION = (
    "The response is coherent: its sentences are well organised and logically connected, it does not "
    "contradict itself, and it is easy to follow as an answer to the question."
)

# -- reasons ---------------------------------------------------------------------------------------------


def _reason_lines(obj: Any, lines: list[str]) -> None:
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump()
    if isinstance(obj, dict):
        text = obj.get("reason") or obj.get("feedback")
        if isinstance(text, str) and text.strip():
            head = obj.get("statement")
            verdict = next((obj[k] for k in ("verdict", "attributed", "value", "score") if k in obj), None)
            label = " ".join(
                part
                for part in (head if isinstance(head, str) else "", f"[{verdict}]" if verdict is not None else "")
                if part
            )
            lines.append(f"{label}: {text.strip()}" if label else text.strip())
        for key, value in obj.items():
            if key not in {"reason", "feedback"}:
                _reason_lines(value, lines)
    elif isinstance(obj, list):
        for item in obj:
            _reason_lines(item, lines)


def reason_from_outputs(outputs: list[Any], limit: int = 2000) -> str:
    """The judge's reasoning gathered from its parsed answers (reasons, feedback, or what it generated)."""
    lines: list[str] = []
    for output in outputs:
        _reason_lines(output, lines)
    if not lines:
        for output in outputs:
            data = output.model_dump() if hasattr(output, "model_dump") else output
            if isinstance(data, dict):
                if isinstance(data.get("question"), str):
                    lines.append(f"generated question: {data['question']}")
                if isinstance(data.get("statements"), list):
                    lines.extend(f"statement: {s}" for s in data["statements"] if isinstance(s, str))
    text = "\n".join(dict.fromkeys(line for line in lines if line))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- metrics ---------------------------------------------------------------------------------------------


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _aspect_prompt(name: str, definition: str) -> str:
    return (
        'Judge whether the response below meets the criterion. Answer "yes" if it does and "no" if it '
        "does not, with a short reason.\n"
        f"Criterion ({_escape_braces(name)}): {_escape_braces(definition)}\n\n"
        "Question: {user_input}\n"
        "Contexts: {contexts}\n"
        "Reference answer: {reference}\n"
        "Response: {response}\n"
    )


@dataclass
class MetricOutcome:
    value: float | None
    reason: str = ""
    unscored_reason: str = ""


class MetricRunner:
    """Calls one ragas metric for one sample and turns its result into a 0..1 value."""

    def __init__(self, key: str, llm, embeddings, criterion: CustomCriterion | None = None):
        self.key = key
        self.criterion = criterion
        self.kind = "numeric"
        from ragas.metrics import DiscreteMetric
        from ragas.metrics.collections import (
            AnswerAccuracy,
            AnswerCorrectness,
            AnswerRelevancy,
            ContextPrecision,
            ContextRecall,
            DomainSpecificRubrics,
            Faithfulness,
            ResponseGroundedness,
        )

        # max_retries on the dual-judge metrics: ragas re-asks an invalid rating up to N times; one
        # second chance is enough (transport errors are retried by openai, not here).
        if key == "faithfulness":
            self.metric = Faithfulness(llm=llm)
        elif key == "response_groundedness":
            self.metric = ResponseGroundedness(llm=llm, max_retries=2)
        elif key == "answer_relevancy":
            self.metric = AnswerRelevancy(llm=llm, embeddings=embeddings)
        elif key == "context_precision":
            self.metric = ContextPrecision(llm=llm)
        elif key == "context_recall":
            self.metric = ContextRecall(llm=llm)
        elif key == "answer_correctness":
            self.metric = AnswerCorrectness(llm=llm, embeddings=embeddings)
        elif key == "answer_accuracy":
            self.metric = AnswerAccuracy(llm=llm, max_retries=2)
        elif key == "coherence":
            self.kind = "aspect"
            self.metric = DiscreteMetric(
                name="coherence", prompt=_aspect_prompt("coherence", COHERENCE_DEFINITION), allowed_values=["yes", "no"]
            )
        elif criterion is not None and criterion.kind == "rubric":
            self.kind = "rubric"
            rubric = {str(k): v for k, v in (criterion.rubric or {}).items() if str(v).strip()}
            if not rubric:
                rubric = {
                    "1": f"Does not meet the criterion at all: {criterion.definition}",
                    "3": f"Partly meets the criterion: {criterion.definition}",
                    "5": f"Fully meets the criterion: {criterion.definition}",
                }
            self.metric = DomainSpecificRubrics(
                llm=llm,
                rubrics={f"score{k}_description": v for k, v in sorted(rubric.items())},
                name=key,
            )
            self.metric.scoring_prompt.instruction += (
                f"\nCriterion ({criterion.name}): {criterion.definition}\nGive an integer score from 1 to 5.\n"
            )
        elif criterion is not None:
            self.kind = "aspect"
            self.metric = DiscreteMetric(
                name=key, prompt=_aspect_prompt(criterion.name, criterion.definition), allowed_values=["yes", "no"]
            )
        else:
            raise ScoringError(f"unknown metric {key!r}")
        self.llm = llm
        _cache_prompt_schemas(self.metric)

    async def run(self, sample: EvalSample) -> MetricOutcome:
        q, r, ref, ctx = sample.question, sample.response, sample.reference, list(sample.contexts)
        key = self.key
        if self.kind == "aspect":
            # Prompt.format substitutes these once (str.format): braces inside them need no escaping.
            result = await self.metric.ascore(
                llm=self.llm,
                user_input=q,
                response=r,
                reference=ref or "(none)",
                contexts="\n".join(f"[{i}] {c}" for i, c in enumerate(ctx, 1)) or "(none)",
            )
            verdict = str(result.value).strip().lower()
            if verdict not in {"yes", "no"}:
                return MetricOutcome(None, unscored_reason=f"the judge answered {result.value!r}, not yes/no")
            return MetricOutcome(1.0 if verdict == "yes" else 0.0, reason=str(result.reason or ""))
        if self.kind == "rubric":
            result = await self.metric.ascore(
                user_input=q, response=r, retrieved_contexts=ctx or None, reference=ref or None
            )
            score = result.value
            if score is None or (isinstance(score, float) and math.isnan(score)):
                return MetricOutcome(None)
            if not 1 <= float(score) <= 5:
                return MetricOutcome(None, unscored_reason=f"the judge gave score {score:g}, outside 1..5")
            return MetricOutcome((float(score) - 1.0) / 4.0, reason=str(result.reason or ""))
        if key == "faithfulness":
            result = await self.metric.ascore(user_input=q, response=r, retrieved_contexts=ctx)
        elif key == "response_groundedness":
            result = await self.metric.ascore(response=r, retrieved_contexts=ctx)
        elif key == "answer_relevancy":
            result = await self.metric.ascore(user_input=q, response=r)
        elif key == "context_precision":
            result = await self.metric.ascore(user_input=q, reference=ref, retrieved_contexts=ctx)
        elif key == "context_recall":
            result = await self.metric.ascore(user_input=q, retrieved_contexts=ctx, reference=ref)
        else:  # answer_correctness, answer_accuracy
            result = await self.metric.ascore(user_input=q, response=r, reference=ref)
        value = result.value
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return MetricOutcome(None)
        return MetricOutcome(min(1.0, max(0.0, float(value))), reason=str(result.reason or ""))


# -- embeddings ------------------------------------------------------------------------------------------


def load_embeddings(path: str):
    """ragas HuggingFaceEmbeddings on a local sentence-transformers folder (never a hub name)."""
    if not path or not os.path.isdir(path):
        raise ScoringError(f"the embedding model folder {path or '(none)'} does not exist")
    return _load_embeddings(os.path.realpath(path))


@functools.lru_cache(maxsize=2)
def _load_embeddings(path: str):
    # Kept per worker process: loading sentence-transformers and the model takes seconds, runs reuse it.
    from ragas.embeddings import HuggingFaceEmbeddings

    from evaluator.local_llm import resolve_device

    try:
        return HuggingFaceEmbeddings(model=path, device=resolve_device())
    except Exception as exc:  # a folder that is not a sentence-transformers model
        raise ScoringError(f"cannot load the embedding model from {path}: {exc}") from exc


def semantic_similarity_scores(samples: Sequence[EvalSample], embeddings) -> list[float]:
    """Cosine similarity of each response with its reference, one batched encode for the run."""
    import numpy as np

    responses = embeddings.embed_texts([s.response for s in samples])
    references = embeddings.embed_texts([s.reference for s in samples])
    a = np.asarray(responses, dtype=float)
    b = np.asarray(references, dtype=float)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    sims = (a * b).sum(axis=1) / np.where(norms == 0, 1.0, norms)
    return [min(1.0, max(0.0, float(s))) for s in sims]


# -- the run ---------------------------------------------------------------------------------------------


@dataclass
class _Job:
    sample: EvalSample
    key: str


def score_with_ragas(
    samples: Sequence[EvalSample],
    jobs: Sequence[tuple[EvalSample, str]],
    *,
    judge: LLMConfig | None,
    embedding_path: str | None,
    criteria: dict[str, CustomCriterion],
    on_progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress_offset: int = 0,
    progress_total: int | None = None,
) -> list[SampleScore]:
    """Score ``jobs`` ((sample, metric key) pairs of judge or embedding metrics); one SampleScore each."""
    needs_embeddings = any(key in {"answer_relevancy", "answer_correctness", "semantic_similarity"} for _, key in jobs)
    embeddings = load_embeddings(embedding_path or "") if needs_embeddings else None
    judge_jobs = [_Job(s, k) for s, k in jobs if k != "semantic_similarity"]
    similarity_jobs = [s for s, k in jobs if k == "semantic_similarity"]
    if judge_jobs and judge is None:
        raise ScoringError("these metrics need a judge LLM: " + ", ".join(sorted({j.key for j in judge_jobs})))

    total = progress_total if progress_total is not None else len(jobs)

    async def main(state: JobState) -> list[SampleScore]:
        state.advance(count=progress_offset)
        results: list[SampleScore] = []
        if similarity_jobs:
            sims = await asyncio.to_thread(semantic_similarity_scores, similarity_jobs, embeddings)
            results.extend(
                SampleScore(sample_id=s.sample_id, metric="semantic_similarity", value=v)
                for s, v in zip(similarity_jobs, sims, strict=True)
            )
            state.advance("semantic similarity", count=len(similarity_jobs))
        if judge_jobs:
            try:
                results.extend(await _judge_jobs(judge_jobs, judge, embeddings, criteria, state))
            except JudgeDown as down:
                down.scores = results + down.scores
                raise
        return results

    return run_jobs(main, total=total, on_progress=on_progress, should_stop=should_stop)


async def _judge_jobs(jobs, judge: LLMConfig, embeddings, criteria, state: JobState) -> list[SampleScore]:
    client = build_judge_client(judge)
    session = JudgeSession(judge, client=client, max_concurrency=judge.max_concurrency)
    try:
        await preflight(client, judge)
        llm = session.ragas_llm()
        runners: dict[str, MetricRunner] = {}
        for job in jobs:
            if job.key not in runners:
                runners[job.key] = MetricRunner(job.key, llm, embeddings, criteria.get(job.key))
        results: dict[int, SampleScore] = {}
        queue: asyncio.Queue = asyncio.Queue()
        for index, job in enumerate(jobs):
            queue.put_nowait((index, job))
        n_samples = len({job.sample.sample_id for job in jobs})
        order = {}
        for job in jobs:
            order.setdefault(job.sample.sample_id, len(order) + 1)

        async def worker() -> None:
            while not state.stopping:
                try:
                    index, job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if session.stats.broken:
                    results[index] = _unscored(job, session.stats.broken)
                else:
                    results[index] = await _run_job(runners[job.key], job)
                state.advance(f"{job.key} · sample {order[job.sample.sample_id]}/{n_samples}")

        await tasks_wait([asyncio.create_task(worker()) for _ in range(max(2, 2 * judge.max_concurrency))], state)
        out = []
        for index, job in enumerate(jobs):
            out.append(results.get(index) or _unscored(job, "run cancelled before this sample was scored"))
        stats = session.stats
        if not state.stopping and stats.answered == 0 and stats.transport_failures:
            # Not a verdict on the model under test: nothing was judged. The caller keeps the unscored
            # samples (each says why) and fails the run, so it never stands as a result or a baseline.
            raise JudgeDown(
                f"The judge answered none of {stats.calls} calls; the last failure: "
                f"{stats.last_failure}. Every sample is kept, unscored, with the reason.",
                out,
            )
        return out
    finally:
        await session.aclose()


def _unscored(job: _Job, reason: str, raw: str = "") -> SampleScore:
    return SampleScore(
        sample_id=job.sample.sample_id, metric=job.key, value=None, unscored_reason=reason, raw_output=raw
    )


async def _run_job(runner: MetricRunner, job: _Job) -> SampleScore:
    log = CallLog()
    token = _current_log.set(log)
    try:
        try:
            outcome = await runner.run(job.sample)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not (log.fatal or log.failures):
                logger.info("scoring %s failed", job.key, exc_info=True)
            # The type only: an exception's text may quote whatever a server sent.
            reason = log.fatal or (
                log.failures[-1]
                if log.failures
                else f"scoring failed ({type(exc).__name__}; the worker's log has the details)"
            )
            return _unscored(job, reason, raw=log.raw[-1] if log.raw else "")
    finally:
        _current_log.reset(token)
    if outcome.value is None:
        reason = outcome.unscored_reason or log.fatal or (log.failures[-1] if log.failures else "")
        if not reason:
            reason = f"the judge's answers gave {job.key} no value (ragas returned NaN)"
        return _unscored(job, reason, raw=log.raw[-1] if log.raw else "")
    reason = outcome.reason or reason_from_outputs(log.outputs)
    return SampleScore(sample_id=job.sample.sample_id, metric=job.key, value=outcome.value, reason=reason)
