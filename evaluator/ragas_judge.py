"""The judge side of the ragas adapter: the judge's client, its call log, and how its failures are told.

Split out of ``ragas_adapter`` (which runs the metrics and is the entry point); like it, this module may
load ragas, and nothing outside the two imports either. How a judge call is recorded (per-job ``CallLog``
in a context variable, the circuit breaker, openai's retries) is described in ``ragas_adapter``'s docstring.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any

# ragas sends usage analytics to a server outside the network unless told not to; this must be set
# before ragas is imported (it caches the flag).
os.environ["RAGAS_DO_NOT_TRACK"] = "true"

from evaluator.scoring_types import LLMConfig, ScoringError  # noqa: E402

logger = logging.getLogger("evaluator.ragas_adapter")

# Instruction for every judge call: ragas prompts are English, our questions are often Korean.
JUDGE_SYSTEM_PROMPT = (
    "You are a careful, impartial evaluator. The question, answer, contexts and reference may be written "
    "in Korean or another language: read them as they are and do not translate them; when you quote or "
    "extract statements, keep their original language. Write free-text fields (reasons, statements, "
    "questions, feedback) in the language of the question. Keep the JSON keys and the allowed values "
    "exactly as the schema gives them."
)

# After this many judge calls failing in a row (after openai's own retries), the judge is taken as down
# and the remaining jobs are marked unscored at once instead of each waiting for its own timeouts.
BREAKER_MIN = 8

_current_log: contextvars.ContextVar[CallLog | None] = contextvars.ContextVar("evaluator_call_log", default=None)


class JudgeUnavailable(Exception):
    """Raised instead of calling the judge again once this job (or the run) has a final transport failure."""


@dataclass
class CallLog:
    """What one (sample, metric) job's judge calls returned or raised."""

    raw: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    fatal: str = ""  # a transport failure after retries: further calls of this job are not made
    calls: int = 0


@dataclass
class JudgeStats:
    calls: int = 0
    answered: int = 0  # calls that came back with a response (parseable or not)
    transport_failures: int = 0
    last_failure: str = ""
    in_flight: int = 0
    peak_in_flight: int = 0
    consecutive_failures: int = 0
    broken: str = ""


class JudgeSession:
    """One run's judge: client, semaphore, counters; builds the ragas LLM."""

    def __init__(self, config: LLMConfig, *, client, max_concurrency: int):
        self.config = config
        self.client = client
        self.semaphore = asyncio.Semaphore(max(1, max_concurrency))
        self.stats = JudgeStats()
        self.breaker = max(BREAKER_MIN, 2 * max(1, max_concurrency))
        post = _direct_create(client, client.chat.completions.create)

        async def create(*args, **kwargs):
            return await self._recorded_call(post, *args, **kwargs)

        # instructor takes ``client.chat.completions.create`` when llm_factory patches the client, so the
        # wrapper must be in place first. (``chat`` and ``completions`` are cached per client instance.)
        client.chat.completions.create = create

    async def _recorded_call(self, original, *args, **kwargs):
        import openai

        log = _current_log.get()
        self._refuse_if_down(log)
        async with self.semaphore:
            self._refuse_if_down(log)  # the breaker may have tripped while this call waited for a slot
            self.stats.calls += 1
            self.stats.in_flight += 1
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
            if log is not None:
                log.calls += 1
            try:
                response = await original(*args, **kwargs)
            except openai.APIError as exc:
                message = describe_transport_error(exc, self.config)
                if log is not None:
                    log.failures.append(message)
                    log.fatal = message
                self.stats.consecutive_failures += 1
                self.stats.transport_failures += 1
                self.stats.last_failure = message
                if self.stats.consecutive_failures >= self.breaker and not self.stats.broken:
                    self.stats.broken = (
                        f"not tried: the judge failed {self.stats.consecutive_failures} calls in a row "
                        f"(last: {message})"
                    )
                raise
            finally:
                self.stats.in_flight -= 1
        self.stats.consecutive_failures = 0
        self.stats.answered += 1
        if log is not None:
            try:
                log.raw.append(response.choices[0].message.content or "")
            except (AttributeError, IndexError):
                log.raw.append("")
        return response

    def _refuse_if_down(self, log: CallLog | None) -> None:
        if log is not None and not log.fatal and self.stats.broken:
            log.fatal = self.stats.broken
        if self.stats.broken or (log is not None and log.fatal):
            raise JudgeUnavailable(log.fatal if log is not None else self.stats.broken)

    def ragas_llm(self):
        from ragas.llms import llm_factory

        name = self.config.model_name or os.path.basename(self.config.local_path.rstrip("/")) or "judge"
        inner = llm_factory(
            name,
            provider="openai",
            client=self.client,
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
            system_prompt=JUDGE_SYSTEM_PROMPT,
        )
        return _judge_llm_class()(inner)

    async def aclose(self) -> None:
        try:
            await self.client.close()
        except Exception:  # closing is best effort; the loop ends right after
            pass


# Request keys that openai's ``create`` treats as options rather than body: any of them, and the call
# goes through ``create`` unchanged.
_OPTION_KEYS = {"extra_headers", "extra_query", "extra_body", "timeout", "stream"}


def _direct_create(client, original):
    """POST the chat request as built by instructor, skipping openai's per-call parameter transform.

    openai's ``create`` walks the whole request (every message) against its TypedDict annotations to
    rename aliased keys; our requests (model, messages of plain strings, temperature, top_p, max_tokens,
    response_format) have none, and the walk cost about a fifth of the scorer's CPU per judge call in
    benchmarks/evaluator_judge.py. Retries, timeouts and response parsing are openai's as before.
    """
    from openai.types.chat import ChatCompletion

    async def post(*args, **kwargs):
        if args or _OPTION_KEYS & kwargs.keys():
            return await original(*args, **kwargs)
        body = {key: value for key, value in kwargs.items() if value is not None and not _is_omitted(value)}
        return await client.post("/chat/completions", body=body, cast_to=ChatCompletion)

    return post


def _is_omitted(value) -> bool:
    return type(value).__name__ in {"NotGiven", "Omit"}


def _schema_model(response_model, cache: dict[type, type]):
    """instructor's OpenAISchema subclass of ``response_model``, made once and with its JSON schema cached.

    instructor builds this subclass (pydantic ``create_model``) and regenerates its JSON schema on every
    call; both are the same for every call of a metric, and together cost about a quarter of the
    scorer's CPU per judge call. Parsed answers are still instances of ``response_model``.
    """
    cached = cache.get(response_model)
    if cached is not None:
        return cached
    try:
        from instructor.function_calls import OpenAISchema, openai_schema
    except ImportError:  # another instructor layout: let it do its own work
        return response_model
    if issubclass(response_model, OpenAISchema):
        return response_model
    model = _with_cached_schema(openai_schema(response_model))
    cache[response_model] = model
    return model


def _with_cached_schema(model):
    """Make ``model.model_json_schema()`` (no arguments, as instructor and ragas call it) return a cached dict."""
    schema = model.model_json_schema()
    original = model.model_json_schema

    def model_json_schema(*args, **kwargs):
        return schema if not args and not kwargs else original(*args, **kwargs)

    model.model_json_schema = model_json_schema
    return model


_PROMPT_OUTPUT_MODELS: dict[type, type] = {}


def _cache_prompt_schemas(metric) -> None:
    """Give the metric's ragas prompts an output model whose JSON schema is computed once.

    ``BasePrompt.to_string`` puts ``output_model.model_json_schema()`` into every prompt; pydantic
    regenerates it on each call (about a tenth of the scorer's CPU per judge call). The replacement is a
    same-named subclass with no new fields, so the schema text the judge sees is unchanged.
    """
    try:
        from ragas.prompt.metrics.base_prompt import BasePrompt
    except ImportError:
        return
    for prompt in list(vars(metric).values()):
        if not isinstance(prompt, BasePrompt) or not isinstance(getattr(prompt, "output_model", None), type):
            continue
        base = prompt.output_model
        cached = _PROMPT_OUTPUT_MODELS.get(base)
        if cached is None:
            cached = _with_cached_schema(
                type(base.__name__, (base,), {"__module__": base.__module__, "__doc__": base.__doc__})
            )
            if cached.model_json_schema() != base.model_json_schema():  # the judge must see the same schema
                cached = base
            _PROMPT_OUTPUT_MODELS[base] = cached
        prompt.output_model = cached


def _judge_llm_class():
    from ragas.llms.base import InstructorBaseRagasLLM

    class JudgeLLM(InstructorBaseRagasLLM):
        """The ragas LLM from llm_factory, noting each parsed answer and each failure in the job's log."""

        def __init__(self, inner):
            self.inner = inner
            # Per run, not per process: custom criteria bring new response classes with every run.
            self.schema_models: dict[type, type] = {}

        def generate(self, prompt, response_model):
            raise TypeError("the evaluator calls the judge asynchronously only")

        async def agenerate(self, prompt, response_model):
            log = _current_log.get()
            try:
                result = await self.inner.agenerate(prompt, _schema_model(response_model, self.schema_models))
            except Exception as exc:
                if log is not None and not isinstance(exc, JudgeUnavailable) and not log.fatal:
                    log.failures.append(describe_failure(exc, response_model))
                raise
            if log is not None:
                log.outputs.append(result)
            return result

    return JudgeLLM


# -- describing failures ---------------------------------------------------------------------------------


def describe_transport_error(exc: Exception, config: LLMConfig) -> str:
    from evaluator.generation import describe_error

    return describe_error(exc, config, who="the judge")


def describe_failure(exc: Exception, response_model) -> str:
    """A clear sentence for a judge answer that could not be used."""
    from json import JSONDecodeError

    from pydantic import ValidationError

    schema = getattr(response_model, "__name__", "the expected schema")
    cause: BaseException | None = exc
    seen = 0
    while cause is not None and seen < 5:
        if isinstance(cause, JSONDecodeError):
            return f"judge output is not valid JSON for {schema}"
        if isinstance(cause, ValidationError):
            errors = cause.errors()
            if any(e.get("type") in {"json_invalid", "json_type"} for e in errors):
                return f"judge output is not valid JSON for {schema}"
            first = errors[0] if errors else {}
            location = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
            return f"judge output does not match the {schema} schema: {location}: {first.get('msg', cause)}"
        if type(cause).__name__ == "IncompleteOutputException":
            return f"judge output for {schema} was cut off at max_tokens; raise the judge's max tokens"
        cause = cause.__cause__ or (cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None)
        seen += 1
    # Only the type: the exception's text may quote whatever the server sent (its raw answer is kept apart).
    logger.debug("judge call failed for %s", schema, exc_info=exc)
    return f"judge call failed for {schema} ({type(exc).__name__})"


# -- the judge client ------------------------------------------------------------------------------------


def build_judge_client(config: LLMConfig):
    """The judge's AsyncOpenAI client (generation.build_client), with the judge's own errors."""
    from evaluator.generation import build_client

    if config.kind == "local":
        try:
            return build_client(config)[0]
        except Exception as exc:
            logger.warning("cannot load the local judge model", exc_info=True)
            raise ScoringError(
                f"cannot load the local judge model ({type(exc).__name__}; the worker's log has the details)"
            ) from exc
    if not config.base_url:
        raise ScoringError("the judge endpoint has no base URL")
    return build_client(config)[0]


async def preflight(client, config: LLMConfig) -> None:
    """Fail the run early when the judge cannot be reached, rejects the key, or does not serve the model."""
    import openai

    if config.kind == "local":
        return
    try:
        page = await client.with_options(timeout=min(config.timeout_s, 15.0), max_retries=0).models.list()
    except (openai.APITimeoutError, openai.APIConnectionError) as exc:
        raise ScoringError(
            describe_transport_error(
                exc, dataclasses.replace(config, max_retries=0, timeout_s=min(config.timeout_s, 15.0))
            )
        ) from exc
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise ScoringError(f"the judge rejected the API key (HTTP {exc.status_code})") from exc
    except openai.APIError:
        return  # no /models route: some servers lack it; the chat calls will tell
    ids = [m.id for m in getattr(page, "data", []) or []]
    if ids and config.model_name and config.model_name not in ids:
        raise ScoringError(f"the judge does not serve model {config.model_name!r} (its model list lacks it)")
