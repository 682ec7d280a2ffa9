"""Stored messages (runs.messages): a code and parameters, rendered in the reader's language; English text of a
known template recognised as its code (what the migrations do for rows stored before codes); unknown text kept."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from evaluator.models import LLMEndpoint
from runs.choices import RunKind, RunStatus
from runs.executors import EvaluationFailed
from runs.messages import (
    MESSAGES,
    Message,
    message_of,
    message_parse,
    message_split,
    message_text,
    stored_texts_code,
)
from runs.models import EvaluationRun, RunEvent
from runs.services import run_cancel, run_create, run_finish, run_progress
from tests.factories import run_create_row


def _in(language: str, value) -> str:
    """``value`` (or what the callable ``value`` returns: a property read at once) as text in ``language``."""
    with translation.override(language):
        return str(value() if callable(value) else value)


def test_a_message_reads_in_the_active_language_with_its_parameters():
    message = Message("run.cancelled_by", user="kim")
    assert _in("en", message) == "cancelled by kim"
    assert _in("ko", message) == "kim 님이 취소함"
    assert message.english() == "cancelled by kim"
    with pytest.raises(KeyError):
        Message("no.such.code")


def test_a_message_inside_a_message_is_translated_too():
    lost = Message("run.worker_lost", worker="gpu-1", at="2026-11-30 05:00:00")
    died = Message("run.worker_died", reason=lost, attempts=2)
    assert (
        _in("en", died)
        == "The worker died: worker gpu-1 stopped sending heartbeats at 2026-11-30 05:00:00 UTC, after 2 attempts."
    )
    korean = _in("ko", died)
    assert "gpu-1" in korean and "하트비트" in korean and "heartbeats" not in korean
    # Through JSON, as stored, and back.
    assert Message.from_json(died.as_json()) == died
    assert message_text(died.as_json(), "fallback") == str(died)


def test_what_cannot_be_rendered_falls_back_to_the_stored_text():
    assert message_text(None, "as stored") == "as stored"
    assert message_text({"code": "gone.code", "params": {}}, "as stored") == "as stored"
    assert message_text({"code": "run.claimed"}, "as stored") == "as stored"  # no params: a bad shape
    assert message_text("not a dict", "as stored") == "as stored"
    # A template whose parameters changed since the row was stored: its text and the values, never an error.
    shown = message_text({"code": "run.claimed", "params": {"host": "gpu-1"}}, "as stored")
    assert "gpu-1" in shown


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("submitted", "run.submitted"),
        ("claimed by gpu-host-1", "run.claimed"),
        ("cancelled by kim", "run.cancelled_by"),
        ("cancelled", "run.cancelled"),
        ("worker gpu-1 stopped sending heartbeats at 2026-11-29 10:00:00 UTC; re-queued", "run.requeued"),
        (
            "The worker died: worker ? stopped sending heartbeats at 2026-11-29 10:00:00 UTC, after 3 attempts.",
            "run.worker_died",
        ),
        ("arc_challenge (1/6): loglikelihood requests", "progress.requests"),
        ("Model folder /models/x does not exist.", "harness.model_missing"),
        ("/models/x is outside the allowed model roots (/srv/models).", "folder.outside_roots"),
        (
            "The model ran out of cuda:0 memory: it needed another 2.00 GiB; 0.50 GiB of 79.00 GiB were free on NVIDIA "
            "H100. Try a smaller batch size or a lower-precision dtype.",
            "harness.out_of_memory",
        ),
        (
            "The model in /models/x has model_type 'foo', which transformers 4.57.1 does not know: it would need "
            "remote code or a newer transformers.",
            "harness.model_type_unknown",
        ),
        (
            "Cannot call the judge: The host judge.example is not among the endpoint hosts an administrator allowed "
            "(ENDPOINT_ALLOWED_HOSTS: localhost).",
            "evaluator.judge_refused",
        ),
        (
            "dataset 'Rowan/hellaswag' is not in the dataset mirror (looked for the folder /mirror/Rowan/hellaswag)",
            "mirror.not_found",
        ),
        ("unknown metric: nope, other", "scoring.unknown_metric"),
        (
            "Cannot call the judge: There is no secret “JUDGE_KEY” in the secrets folder.",
            "evaluator.judge_refused",
        ),
    ],
)
def test_english_of_a_known_template_is_recognised(text, code):
    message = message_parse(text)
    assert message is not None and message.code == code
    assert message.english() == text


def test_out_of_memory_reads_in_korean_with_its_sizes():
    message = message_parse(
        "The model ran out of cuda:0 memory: it needed another 2.00 GiB; 0.50 GiB of 79.00 GiB "
        "were free on NVIDIA H100. Try a smaller batch size or a lower-precision dtype."
    )
    assert message.params["detail"].code == "harness.oom_needed_free"
    korean = _in("ko", message)
    assert "2.00 GiB" in korean and "NVIDIA H100" in korean and "needed" not in korean and "free" not in korean


def test_nested_reasons_are_recognised_as_messages():
    message = message_parse(
        "The worker died: worker gpu-1 stopped sending heartbeats at 2026-11-29 10:00:00 UTC, after 3 attempts."
    )
    assert message.params["reason"] == Message("run.worker_lost", worker="gpu-1", at="2026-11-29 10:00:00")


@pytest.mark.parametrize("text", ["", "ValueError: boom", "lm-eval crashed in an unforeseen way", "claimed"])
def test_unknown_text_is_kept_as_it_is(text):
    assert message_parse(text) is None
    assert message_split(text) == (text, None)


def test_crafted_long_text_is_not_parsed_and_costs_little():
    """Matching costs about the cube of the length: long text is kept as it is, and text at the limit is quick."""
    import time

    from runs.messages import MAX_PARSED_CHARS

    crafted = " answered HTTP  after  attempts ("
    started = time.monotonic()
    assert message_parse(crafted * (MAX_PARSED_CHARS // len(crafted)) + "x") is None
    assert message_parse(crafted * 10_000) is None
    assert time.monotonic() - started < 2


def test_every_template_is_in_the_korean_catalogue():
    """A code added without its Korean fails here (run `make messages` and translate)."""
    untranslated = []
    for code, template in MESSAGES.items():
        english, korean = _in("en", template), _in("ko", template)
        if english == korean or not re.search(r"[가-힣]", korean):
            untranslated.append(code)
        assert set(re.findall(r"%\(\w+\)s", english)) == set(re.findall(r"%\(\w+\)s", korean)), code
    assert not untranslated, untranslated


@pytest.mark.django_db
def test_services_store_english_text_and_the_code():
    run = run_create(kind=RunKind.BENCHMARK, spec={"suite": "openllm_v1"}, enqueue=False)
    EvaluationRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    run_progress(
        run_id=run.pk, done=1, total=4, note=Message("progress.scoring", note=Message("progress.text_metrics"))
    )
    run.refresh_from_db()
    assert run.progress_note == "scoring: text metrics"
    assert run.progress_note_i18n["code"] == "progress.scoring"
    assert _in("ko", lambda: run.progress_note_text) == "채점 중: 텍스트 지표"
    with translation.override("ko"):  # a worker started with Korean as its language still stores English
        failure = EvaluationFailed(Message("evaluator.no_rows"))
        assert run_finish(run_id=run.pk, status=RunStatus.FAILED, error_message=failure.args[0])
    run.refresh_from_db()
    assert run.error_message == "The dataset version has no rows."
    assert _in("ko", lambda: run.error_message_text) == "데이터셋 버전에 행이 없습니다."
    assert [(e.message, e.message_i18n["code"]) for e in run.events.all()] == [
        ("submitted", "run.submitted"),
        ("The dataset version has no rows.", "evaluator.no_rows"),
    ]


@pytest.mark.django_db
def test_cancel_by_a_person_reads_in_each_language():
    run = run_create(kind=RunKind.BENCHMARK, spec={"suite": "openllm_v1"}, enqueue=False)
    run_cancel(run_id=run.pk, by="kim")
    event = run.events.last()
    assert (event.message, _in("en", lambda: event.message_text), _in("ko", lambda: event.message_text)) == (
        "cancelled by kim",
        "cancelled by kim",
        "kim 님이 취소함",
    )
    assert (_in("ko", lambda: event.from_status_label), _in("ko", lambda: event.to_status_label)) == (
        "대기 중",
        "취소됨",
    )


@pytest.mark.django_db
def test_rows_stored_before_codes_get_them_and_unknown_text_stays():
    """What migrations runs 0003 and evaluator 0006 do to the rows they find."""
    run = run_create_row(
        status=RunStatus.ERRORED,
        error_message="The worker died: worker gpu-1 stopped sending "
        "heartbeats at 2026-11-29 10:00:00 UTC, after 3 attempts.",
        progress_note="something else",
    )
    other = run_create_row(status=RunStatus.ERRORED, error_message="RuntimeError: CUDA error")
    known = RunEvent.objects.create(run=run, to_status="running", at=run.queued_at, message="claimed by gpu-1")
    unknown = RunEvent.objects.create(run=run, to_status="queued", at=run.queued_at, message="made by hand")
    endpoint = LLMEndpoint.objects.create(
        name="e",
        base_url="http://127.0.0.1:9/v1",
        last_check_message="Connected: the endpoint answered a test chat request.",
    )
    assert (
        stored_texts_code(
            queryset=EvaluationRun.objects.all(), text_field="error_message", coded_field="error_message_i18n"
        )
        == 1
    )
    assert (
        stored_texts_code(
            queryset=EvaluationRun.objects.all(), text_field="progress_note", coded_field="progress_note_i18n"
        )
        == 0
    )
    assert stored_texts_code(queryset=RunEvent.objects.all(), text_field="message", coded_field="message_i18n") == 1
    assert (
        stored_texts_code(
            queryset=LLMEndpoint.objects.all(), text_field="last_check_message", coded_field="last_check_message_i18n"
        )
        == 1
    )
    for row in (run, other, known, unknown, endpoint):
        row.refresh_from_db()
    assert run.error_message_i18n["code"] == "run.worker_died" and run.progress_note_i18n is None
    assert (
        other.error_message_i18n is None and _in("ko", lambda: other.error_message_text) == "RuntimeError: CUDA error"
    )
    assert _in("ko", lambda: known.message_text) == "gpu-1 이(가) 가져감"
    assert unknown.message_i18n is None and _in("ko", lambda: unknown.message_text) == "made by hand"
    assert _in("ko", lambda: endpoint.last_check_message_text) != endpoint.last_check_message


def test_per_sample_reasons_are_shown_in_the_readers_language():
    """Per-sample reasons keep no code column: the samples page recognises their English when it shows them."""
    from runs.messages import message_recognised

    reason = "the judge could not be reached or did not answer within 15 s (3 attempts)"
    with translation.override("ko"):
        assert message_recognised(reason) == "판정 LLM 에 연결할 수 없거나 15초 안에 응답이 없었습니다(3회 시도)"
        assert message_recognised("the sample has no reference answer") == "샘플에 참조 답변이 없습니다"
        assert message_recognised("ragas exploded") == "ragas exploded"
    assert message_recognised(reason) == reason


def test_a_secret_refusal_reads_in_the_readers_language():
    """Raised with a code (evaluator.endpoint_secrets): a form shows it in the reader's language, a worker
    stores the code, whatever language was active when it was raised."""
    from evaluator.endpoint_secrets import SecretMissing, secret_name_check

    with translation.override("en"), pytest.raises(SecretMissing) as raised:
        secret_name_check("../etc/passwd")
    message = message_of(raised.value)
    assert isinstance(message, Message) and message.code == "secret.bad_name"
    with translation.override("ko"):
        assert "시크릿" in str(message) and "../etc/passwd" in str(message)
