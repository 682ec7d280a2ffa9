"""The model under test answering: an OpenAI-compatible endpoint (the loopback server) and a tiny local model."""

from __future__ import annotations

import socket

import pytest

from evaluator.generation import (
    DEFAULT_PROMPT_TEMPLATE,
    endpoint_check,
    format_contexts,
    generate_responses,
    prompt_template_check,
    render_prompt,
)
from evaluator.scoring_types import EvalSample, LLMConfig
from tests.evaluator.loopback_judge import LoopbackJudge

SAMPLES = [
    EvalSample(sample_id="1", question="What is the capital of France?", contexts=("Paris is in France.", "Lyon too.")),
    EvalSample(sample_id="2", question="대한민국의 수도는 어디인가요?", contexts=()),
    EvalSample(sample_id="3", question="Why is the sky blue?", contexts=("Rayleigh scattering.",)),
]


def endpoint(server: LoopbackJudge, **overrides) -> LLMConfig:
    values = dict(
        kind="openai",
        model_name="loopback-judge",
        base_url=server.base_url,
        timeout_s=5.0,
        max_concurrency=2,
        max_retries=0,
        max_tokens=64,
    )
    values.update(overrides)
    return LLMConfig(**values)


def test_prompt_template_check():
    prompt_template_check(DEFAULT_PROMPT_TEMPLATE)
    prompt_template_check("Q: {question}")
    prompt_template_check('Return JSON like {{"a": 1}} for {question}')
    for bad, message in [
        ("", "empty"),
        ("Contexts: {contexts}", "must contain {question}"),
        ("{question} {answer}", "Unknown placeholder {answer}"),
        ("{question} {0}", "Unknown placeholder"),
        ("{question:>10}", "Unknown placeholder"),
        ("{question} {", "unbalanced braces"),
        ("{question} }", "unbalanced braces"),
    ]:
        with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
            prompt_template_check(bad)


def test_render_prompt_numbers_contexts():
    assert format_contexts(["a", " ", "b"]) == "[1] a\n\n[2] b"
    text = render_prompt(DEFAULT_PROMPT_TEMPLATE, SAMPLES[0])
    assert "[1] Paris is in France.\n\n[2] Lyon too." in text and "What is the capital of France?" in text
    assert "(no context given)" in render_prompt(DEFAULT_PROMPT_TEMPLATE, SAMPLES[1])


def test_generate_against_an_openai_compatible_endpoint():
    progress = []
    with LoopbackJudge(delay=0.05) as server:
        responses = generate_responses(
            SAMPLES,
            target=endpoint(server),
            prompt_template=DEFAULT_PROMPT_TEMPLATE,
            on_progress=lambda *a: progress.append(a),
        )
        bodies = list(server.requests)
        peak = server.peak_in_flight
    assert [r.sample_id for r in responses] == ["1", "2", "3"]
    assert all(not r.error and r.response.startswith("Loopback answer:") for r in responses)
    assert responses[0].response.endswith("Answer:")  # the loopback echoes the end of the prompt it got
    assert any("대한민국의 수도는" in m["content"] for b in bodies for m in b["messages"])
    assert all(b["max_tokens"] == 64 and b["temperature"] == 0.0 for b in bodies)
    assert peak <= 2
    assert progress[-1][:2] == (3, 3)


def test_failed_samples_carry_an_error_not_an_exception():
    with LoopbackJudge(mode="500") as server:
        responses = generate_responses(
            SAMPLES[:2], target=endpoint(server, max_retries=1), prompt_template="{question}"
        )
        assert server.calls == 4  # each sample retried once
    assert all(r.response == "" and r.error.startswith("the model under test answered HTTP 500") for r in responses)
    assert all("internal error (test mode)" not in r.error for r in responses)  # never the body of the reply
    with LoopbackJudge(mode="hang", hang_s=3) as server:
        responses = generate_responses(
            SAMPLES[:1], target=endpoint(server, timeout_s=0.3), prompt_template="{question}"
        )
    assert responses[0].error == "the model under test could not be reached or did not answer within 0.3 s (1 attempts)"


def test_generate_rejects_a_bad_template():
    with pytest.raises(ValueError):
        generate_responses(
            SAMPLES, target=LLMConfig(kind="openai", base_url="http://127.0.0.1:9/v1"), prompt_template="{nope}"
        )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_endpoint_check_messages(tmp_path):
    with LoopbackJudge() as server:
        ok, message = endpoint_check(endpoint(server))
        assert ok and "Connected" in str(message)
        ok, message = endpoint_check(endpoint(server, base_url=server.base_url.removesuffix("/v1")))
        assert not ok and "HTTP 404" in str(message) and "/v1" in str(message)
    ok, refused = endpoint_check(
        LLMConfig(kind="openai", base_url=f"http://127.0.0.1:{_closed_port()}/v1", model_name="m", timeout_s=0.3)
    )
    assert not ok and "No usable answer from the endpoint" in str(refused)
    with LoopbackJudge(mode="hang", hang_s=3) as server:
        ok, message = endpoint_check(endpoint(server, timeout_s=0.3))
    # Refused and timed out read the same: "test connection" is no port scanner.
    assert not ok and message == refused
    ok, message = endpoint_check(LLMConfig(kind="local", local_path=str(tmp_path / "missing")))
    assert not ok and "does not exist" in str(message)


@pytest.mark.slow
def test_generate_with_a_tiny_local_model(tiny_model):
    target = LLMConfig(kind="local", local_path=str(tiny_model), max_tokens=8, max_concurrency=2, timeout_s=60)
    ok, message = endpoint_check(target)
    assert ok, message
    responses = generate_responses(SAMPLES, target=target, prompt_template=DEFAULT_PROMPT_TEMPLATE)
    assert [r.sample_id for r in responses] == ["1", "2", "3"]
    assert all(r.error == "" and isinstance(r.response, str) for r in responses)
    # Greedy: the same question gives the same answer.
    again = generate_responses(SAMPLES[:1], target=target, prompt_template=DEFAULT_PROMPT_TEMPLATE)
    assert again[0].response == responses[0].response


def test_local_model_folder_that_does_not_load_gives_errors(tmp_path):
    target = LLMConfig(kind="local", local_path=str(tmp_path / "nothing"))
    responses = generate_responses(SAMPLES[:2], target=target, prompt_template="{question}")
    assert all(r.error.startswith("cannot load the model") for r in responses)


def test_prompt_template_problems_are_told_in_the_users_language():
    from django.utils import translation

    with translation.override("ko"), pytest.raises(ValueError, match="알 수 없는 자리표시자 {answer}"):
        prompt_template_check("{question} {answer}")
