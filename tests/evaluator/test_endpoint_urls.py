"""Holes 3 and 6 of issue #10: server-side requests only to hosts an administrator allowed, no port scanner,
no foreign bodies on a page; and a run's spec shows a private endpoint's details only to those who see it."""

from __future__ import annotations

import json
import socket

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse

from evaluator.models import LLMEndpoint, TargetKind
from evaluator.services import evaluation_submit
from evaluator.url_policy import HostUnresolved, UrlRefused, allowed_hosts_parse, url_check
from runs.choices import RunStatus
from runs.execution import run_execute
from runs.models import EvaluationRun
from tests.evaluator.canned_server import CannedServer, chat_reply
from tests.evaluator.factories import dataset_make
from tests.factories import user_create

CANARY = "CANARY-body-3e9d71aa"
EVERYTHING = ["0.0.0.0/0", "::/0"]

URL_CASES = [
    ([], "http://127.0.0.1:8000/v1", False),
    (EVERYTHING, "http://127.0.0.1:8000/v1", False),  # a wide network never opens loopback...
    (EVERYTHING, "http://localhost:8000/v1", False),  # ...nor a name that resolves to it
    (EVERYTHING, "http://169.254.169.254/latest/meta-data/", False),  # ...nor cloud metadata
    (EVERYTHING, "http://[::ffff:127.0.0.1]:8000/v1", False),
    (EVERYTHING, "http://0.0.0.0:8000/v1", False),
    (EVERYTHING, "http://2130706433:8000/v1", False),  # 127.0.0.1 written as one number
    (EVERYTHING, "http://[::1]:8000/v1", False),
    (EVERYTHING, "http://[fe80::1]/v1", False),
    (EVERYTHING, "http://10.1.2.3:8000/v1", True),
    (["vllm.internal"], "http://10.1.2.3:8000/v1", False),
    (["10.0.0.0/8"], "http://10.1.2.3:8000/v1", True),
    (["10.0.0.0/8"], "http://11.1.2.3/v1", False),
    (["10.0.0.0/8"], "http://localhost:8000/v1", False),
    (["127.0.0.0/8"], "http://127.0.0.1:8000/v1", True),
    (["127.0.0.0/8"], "http://localhost:8000/v1", True),
    (["localhost"], "http://localhost:8000/v1", True),
    (["169.254.169.254"], "http://169.254.169.254/v1", True),  # listed itself: the administrator's choice
    (["127.0.0.0/8"], "http://user:pw@127.0.0.1:8000/v1", False),
    (["127.0.0.0/8"], "http://127.0.0.1@10.1.2.3/v1", False),
    (["127.0.0.0/8"], "ftp://127.0.0.1/v1", False),
    (["127.0.0.0/8"], "file:///etc/passwd", False),
    (["127.0.0.0/8"], "http://127.0.0.1:99999/v1", False),
    (["127.0.0.0/8"], "http://127.0.0.1\n.evil/v1", False),
    (["*.internal"], "http://internal.evil.example/v1", False),
    (["*.internal"], "http://nothing-here.internal/v1", HostUnresolved),
]


@pytest.mark.parametrize(("allowed", "url", "ok"), URL_CASES)
def test_url_check(settings, allowed, url, ok):
    settings.ENDPOINT_ALLOWED_HOSTS = allowed
    if ok is True:
        url_check(url)
    else:
        with pytest.raises(ok or UrlRefused):
            url_check(url)


def test_a_listed_name_that_resolves_to_loopback_is_refused(settings):
    host = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)}
    if host in ("localhost",) or not any(a.startswith("127.") or a == "::1" for a in addresses):
        pytest.skip(f"{host} does not resolve to a loopback address here")
    settings.ENDPOINT_ALLOWED_HOSTS = [host, "10.0.0.0/8"]
    with pytest.raises(UrlRefused, match="not among the endpoint hosts"):
        url_check(f"http://{host}:8000/v1")
    settings.ENDPOINT_ALLOWED_HOSTS = [host, "127.0.0.0/8"]
    url_check(f"http://{host}:8000/v1")


def test_bad_allowed_host_entries_are_named():
    with pytest.raises(ValueError, match="http://x"):
        allowed_hosts_parse(["http://x"])
    assert allowed_hosts_parse(["*.gpu.internal", "vllm", "10.0.0.0/8", "[::1]"]).suffixes == (".gpu.internal",)


@pytest.mark.django_db
def test_a_broken_allowed_list_refuses_everything_without_a_500(client, settings):
    settings.ENDPOINT_ALLOWED_HOSTS = ["127.0.0.0/8", "http://oops"]
    with pytest.raises(UrlRefused, match="cannot be read"):
        url_check("http://127.0.0.1:8000/v1")
    client.force_login(user_create())
    page = client.post(reverse("evaluator:endpoint_new"), endpoint_form("http://127.0.0.1:8000/v1"))
    assert page.status_code == 200 and "cannot be read" in page.content.decode()


# -- the form, Test connection, the worker ---------------------------------------------------------------


@pytest.fixture
def user(client):
    user = user_create()
    client.force_login(user)
    return user


def endpoint_form(base_url: str, **fields) -> dict:
    return {
        "name": "e",
        "kind": "openai",
        "base_url": base_url,
        "model_name": "m",
        "secret_kind": "",
        "local_path": "",
        "temperature": 0,
        "max_tokens": 64,
        "timeout_s": 3,
        "max_concurrency": 1,
        "max_retries": 0,
        **fields,
    }


@pytest.mark.django_db
def test_the_form_refuses_hosts_not_allowed(client, user, settings):
    settings.ENDPOINT_ALLOWED_HOSTS = ["vllm.internal", "10.20.0.0/16"]
    for url in (
        "http://127.0.0.1:8000/v1",
        "http://169.254.169.254/v1",
        "http://10.1.2.3:8000/v1",
        "http://localhost:8000/v1",
    ):
        page = client.post(reverse("evaluator:endpoint_new"), endpoint_form(url)).content.decode()
        assert "is not among the endpoint hosts an administrator allowed" in page, url
        assert "vllm.internal, 10.20.0.0/16" in page
    settings.ENDPOINT_ALLOWED_HOSTS = []
    page = client.post(reverse("evaluator:endpoint_new"), endpoint_form("http://10.20.0.5/v1")).content.decode()
    assert page.count("No endpoint host is allowed on this site yet") == 2  # the help text and the error
    assert not LLMEndpoint.objects.exists()


@pytest.mark.django_db
def test_test_connection_refuses_a_host_not_allowed(client, user, settings):
    settings.ENDPOINT_ALLOWED_HOSTS = ["10.0.0.0/8"]
    with CannedServer(body=chat_reply()) as server:
        for url in (server.base_url, "http://169.254.169.254/latest/v1"):
            endpoint = LLMEndpoint.objects.create(
                name=url, base_url=url, model_name="m", owner=user
            )  # not via the form
            page = client.post(reverse("evaluator:endpoint_check", args=[endpoint.pk])).content.decode()
            assert 'data-check="failed"' in page and "not among the endpoint hosts" in page
        assert server.requests == []


@pytest.mark.django_db
def test_the_worker_refuses_hosts_not_allowed(user, settings):
    """Rows and specs changed after the form (or allowed hosts narrowed since): checked again before the calls."""
    with CannedServer(body=chat_reply()) as server:
        target = LLMEndpoint.objects.create(name="t", base_url=server.base_url, model_name="m", max_retries=0)
        judge = LLMEndpoint.objects.create(name="j", base_url=server.base_url, model_name="m", max_retries=0)
        dataset = dataset_make(owner=user)
        runs = [
            evaluation_submit(
                dataset_version=dataset.latest_version,
                target_kind=TargetKind.ENDPOINT,
                target_endpoint=target,
                metric_keys=["exact_match"],
            ),
            evaluation_submit(
                dataset_version=dataset.latest_version,
                target_kind=TargetKind.PRECOMPUTED,
                metric_keys=["faithfulness"],
                judge=judge,
            ),
        ]
        settings.ENDPOINT_ALLOWED_HOSTS = ["10.0.0.0/8"]
        tampered = evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.ENDPOINT,
            target_endpoint=LLMEndpoint.objects.create(name="ok", base_url="http://10.9.9.9/v1"),
            metric_keys=["exact_match"],
        )
        spec = tampered.spec
        spec["target"]["endpoint"]["base_url"] = "http://169.254.169.254/latest/v1"
        EvaluationRun.objects.filter(pk=tampered.pk).update(spec=spec)
        for run in [*runs, tampered]:
            assert run_execute(run_id=run.pk) == RunStatus.FAILED
        assert server.requests == []
    errors = [EvaluationRun.objects.get(pk=run.pk).error_message for run in [*runs, tampered]]
    assert errors[0].startswith("Cannot call the model under test: The host 127.0.0.1 is not among"), errors[0]
    assert errors[1].startswith("Cannot call the judge: The host 127.0.0.1 is not among"), errors[1]
    assert "The host 169.254.169.254 is not among" in errors[2]


@pytest.mark.django_db
def test_test_connection_is_not_a_port_scanner(client, user, settings):
    """A closed port, a server that is not OpenAI-compatible (its canary body), an unresolvable name: one message,
    holding nothing the server sent. HTTP errors get a fixed sentence per class, a redirect is not followed."""
    settings.ENDPOINT_ALLOWED_HOSTS = ["127.0.0.0/8", "*.invalid"]

    def check(url: str) -> str:
        endpoint = LLMEndpoint.objects.create(name=url, base_url=url, model_name="m", owner=user, timeout_s=3)
        return client.post(reverse("evaluator:endpoint_check", args=[endpoint.pk])).content.decode()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = check(f"http://127.0.0.1:{sock.getsockname()[1]}/v1")
    messages = [closed, check("http://nothing-here.invalid/v1")]
    for body, content_type in (
        (f"<html>{CANARY}</html>".encode(), "text/html"),
        (json.dumps({"hello": CANARY}).encode(), "application/json"),
        (json.dumps({"choices": CANARY}).encode(), "application/json"),
    ):
        with CannedServer(body=body, content_type=content_type) as server:
            messages.append(check(server.base_url))
            assert len(server.requests) == 1
    assert 'data-check="failed"' in closed and "No usable answer from the endpoint" in closed
    assert all(message == closed for message in messages), messages
    for status, sentence in (
        (500, "server error (HTTP 500)"),
        (401, "refused the API key (HTTP 401)"),
        (404, "HTTP 404: the model is not served there"),
        (418, "refused the test request (HTTP 418)"),
    ):
        with CannedServer(status=status, body=json.dumps({"error": {"message": CANARY}}).encode()) as server:
            page = check(server.base_url)
        assert sentence in page and CANARY not in page, page
    with CannedServer(body=chat_reply()) as elsewhere:
        with CannedServer(status=302, headers={"Location": elsewhere.base_url + "/chat/completions"}) as redirecting:
            page = check(redirecting.base_url)
        assert "redirect (HTTP 302), which is not followed" in page and elsewhere.requests == []
    assert CANARY not in "".join(messages) and CANARY not in "".join(
        LLMEndpoint.objects.values_list("last_check_message", flat=True)
    )


@pytest.mark.django_db
def test_run_errors_never_quote_a_foreign_body(client, user):
    dataset = dataset_make(owner=user)
    failing = json.dumps({"error": {"message": CANARY}}).encode()
    runs = []
    with (
        CannedServer(status=500, body=failing) as server,
        CannedServer(body=f"<p>{CANARY}</p>".encode(), content_type="text/html") as html,
    ):
        for url in (server.base_url, html.base_url):
            endpoint = LLMEndpoint.objects.create(name=url, base_url=url, model_name="m", max_retries=0, timeout_s=5)
            runs.append(
                evaluation_submit(
                    dataset_version=dataset.latest_version,
                    target_kind=TargetKind.ENDPOINT,
                    target_endpoint=endpoint,
                    metric_keys=["exact_match"],
                    submitted_by=user,
                )
            )
        runs.append(
            evaluation_submit(
                dataset_version=dataset.latest_version,
                target_kind=TargetKind.PRECOMPUTED,
                metric_keys=["faithfulness"],
                submitted_by=user,
                judge=LLMEndpoint.objects.get(base_url=server.base_url),
            )
        )
        for run in runs:
            assert run_execute(run_id=run.pk) == RunStatus.FAILED
    for run in runs:
        run.refresh_from_db()
        export = client.get(reverse("evaluator:run_export", args=[run.pk, "json"])).content.decode()
        page = client.get(reverse("evaluator:run", args=[run.pk])).content.decode()
        assert CANARY not in export + page + run.error_message
        assert "127.0.0.1" not in run.error_message  # nor the address: people who cannot see the endpoint read it
    assert "answered HTTP 500 after 1 attempts (a server error)" in runs[0].error_message
    with CannedServer(body=chat_reply()) as elsewhere:
        with CannedServer(status=307, headers={"Location": elsewhere.base_url + "/chat/completions"}) as redirecting:
            endpoint = LLMEndpoint.objects.create(
                name="redirecting", base_url=redirecting.base_url, model_name="m", max_retries=0
            )
            run = evaluation_submit(
                dataset_version=dataset.latest_version,
                target_kind=TargetKind.ENDPOINT,
                target_endpoint=endpoint,
                metric_keys=["exact_match"],
                submitted_by=user,
            )
            assert run_execute(run_id=run.pk) == RunStatus.FAILED
        assert elsewhere.requests == [] and len(redirecting.requests) == 3
    assert "HTTP 307 (a redirect, which is not followed)" in EvaluationRun.objects.get(pk=run.pk).error_message
    assert "call failed (" in runs[1].error_message
    assert "the judge answered HTTP 500" in runs[2].error_message


# -- private endpoint details in specs ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_shows_a_private_endpoint_only_to_those_who_see_it(client):
    team_a, team_b = Group.objects.create(name="a"), Group.objects.create(name="b")
    alice, bob = user_create(groups=(team_a,)), user_create(groups=(team_b,))
    private = LLMEndpoint.objects.create(
        name="a-judge",
        base_url="http://a-judge.internal:8000/v1",
        model_name="m",
        secret_kind="env",
        secret_name="TEAM_A_JUDGE_KEY",
        owner=alice,
        group=team_a,
        private=True,
    )
    local = LLMEndpoint.objects.create(
        name="a-local", kind="local", local_path="/models/team-a/secret-model", owner=alice, group=team_a, private=True
    )
    shared = LLMEndpoint.objects.create(name="shared", base_url="http://shared.internal:8000/v1", model_name="m")
    dataset = dataset_make()  # public: both teams see its runs
    by_alice = evaluation_submit(
        dataset_version=dataset.latest_version,
        target_kind=TargetKind.ENDPOINT,
        target_endpoint=local,
        judge=private,
        metric_keys=["faithfulness"],
        submitted_by=alice,
    )
    # Bob's own run, on an endpoint Alice's team later made private: his run page hides it from him too.
    by_bob = evaluation_submit(
        dataset_version=dataset.latest_version,
        target_kind=TargetKind.ENDPOINT,
        target_endpoint=shared,
        metric_keys=["exact_match"],
        submitted_by=bob,
    )
    LLMEndpoint.objects.filter(pk=shared.pk).update(private=True, owner=alice, group=team_a)
    hidden = ("a-judge.internal", "TEAM_A_JUDGE_KEY", "/models/team-a", "shared.internal")

    client.force_login(bob)
    pages = [
        client.get(reverse("evaluator:run", args=[by_alice.pk])).content.decode(),
        client.get(reverse("evaluator:run_export", args=[by_alice.pk, "json"])).content.decode(),
        client.get(reverse("evaluator:run", args=[by_bob.pk])).content.decode(),
        client.get(reverse("evaluator:run_export", args=[by_bob.pk, "json"])).content.decode(),
        client.get(reverse("runs:detail", args=[by_bob.pk])).content.decode(),
    ]
    # names stay, details go (the run page shows the spec as a table)
    assert "a-judge" in pages[1] and '<th scope="row"><code>hidden</code></th><td><code>true</code></td>' in pages[4]
    for page in pages:
        assert not any(detail in page for detail in hidden), page[-3000:]

    client.force_login(alice)
    shown = client.get(reverse("evaluator:run_export", args=[by_alice.pk, "json"])).json()["spec"]
    assert shown["judge"]["base_url"] == "http://a-judge.internal:8000/v1"
    assert shown["judge"]["secret"] == {"kind": "env", "name": "TEAM_A_JUDGE_KEY"}
    assert shown["target"]["endpoint"]["local_path"] == "/models/team-a/secret-model"
    assert (
        client.get(reverse("evaluator:run_export", args=[by_bob.pk, "json"])).json()["spec"]["target"]["endpoint"][
            "base_url"
        ]
        == "http://shared.internal:8000/v1"
    )


# -- a real worker process --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_refuses_hosts_and_secrets_it_was_not_given(tmp_path):
    """The worker's own settings decide (ENDPOINT_ALLOWED_HOSTS, the secrets folder): a host outside them and a
    spec naming /proc/self/environ are refused before any call, and the worker's log holds no canary."""
    import signal

    from tests.workers import WorkerProcess, queues_purge, wait_for

    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "judge").write_text("sk-from-folder")
    queues_purge()
    worker = WorkerProcess(
        "endpoint-security",
        extra_env={
            "ENDPOINT_ALLOWED_HOSTS": "127.0.0.1/32",
            "ENDPOINT_SECRETS_DIR": str(folder),
            "ENDPOINT_SECRETS_ENV_PREFIX": "LBTEST_SECRET_",
            "LBTEST_CANARY": CANARY,
        },
    )
    dataset = dataset_make(owner=user_create())
    try:
        with CannedServer(body=chat_reply(), host="127.0.0.2") as outside, CannedServer(body=chat_reply()) as inside:
            not_allowed = LLMEndpoint.objects.create(name="outside", base_url=outside.base_url, model_name="m")
            allowed = LLMEndpoint.objects.create(
                name="inside",
                base_url=inside.base_url,
                model_name="m",
                secret_kind="file",
                secret_name="judge",
                max_retries=0,
            )
            with transaction.atomic():  # changed before the message goes out (on commit)
                tampered = evaluation_submit(
                    dataset_version=dataset.latest_version,
                    target_kind=TargetKind.ENDPOINT,
                    target_endpoint=allowed,
                    metric_keys=["exact_match"],
                )
                spec = tampered.spec
                spec["target"]["endpoint"]["secret"] = {"kind": "file", "name": "/proc/self/environ"}
                EvaluationRun.objects.filter(pk=tampered.pk).update(spec=spec)
            runs = [
                evaluation_submit(
                    dataset_version=dataset.latest_version,
                    target_kind=TargetKind.ENDPOINT,
                    target_endpoint=not_allowed,
                    metric_keys=["exact_match"],
                ),
                tampered,
                evaluation_submit(
                    dataset_version=dataset.latest_version,
                    target_kind=TargetKind.ENDPOINT,
                    target_endpoint=allowed,
                    metric_keys=["exact_match"],
                ),
            ]
            wait_for(
                lambda: all(
                    EvaluationRun.objects.get(pk=r.pk).status in (RunStatus.SUCCEEDED, RunStatus.FAILED) for r in runs
                ),
                120,
                "the worker to end the three runs",
                worker,
            )
            assert outside.requests == []
            assert set(inside.authorizations) == {"Bearer sk-from-folder"} and len(inside.requests) == 3
    finally:
        worker.kill(signal.SIGTERM)
    statuses = [EvaluationRun.objects.get(pk=r.pk) for r in runs]
    assert [r.status for r in statuses] == [RunStatus.FAILED, RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert "The host 127.0.0.2 is not among" in statuses[0].error_message
    assert "not a secret name" in statuses[1].error_message
    assert CANARY not in worker.output() and CANARY not in "".join(r.error_message for r in statuses)
