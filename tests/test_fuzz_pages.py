"""Hostile input to every page: random and nasty values in every query parameter and form field.

For every URL of the site (with the id of a row the caller may see, of the other group's private row,
or of no row) and both methods a page takes, Hypothesis draws parameters — mostly the names that page
really reads (its forms' inputs and its links' query names), sometimes any page's, sometimes random
ones — with values that broke pages before (NUL, Unicode digits, huge numbers, paths, markup, long text)
or random text, numbers, bytes and files, and sends them as an anonymous user and as a logged-in user
of another group. After every request:

- no answer is a 5xx;
- nothing is half-stored (every dataset has a version whose row count is its rows, every evaluator run
  has its link row, every new run its history, one model row per folder revision);
- the other group's rows are unchanged, and no answer shows their names or a planted secret.

``FUZZ_EXAMPLES`` sets the requests per page, method and caller (default 25: about 3,500 requests in all);
``FUZZ_PAGES`` (URL names, comma-separated) fuzzes only those pages.
On a failure Hypothesis prints the smallest request it found.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count, F
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from evaluator.models import DatasetVersion, EvaluatorRun, GoldenDataset, LLMEndpoint
from leaderboard.models import RegisteredModel
from runs.models import EvaluationRun
from tests.evaluator.factories import dataset_make, endpoint_make, evaluator_run_make
from tests.factories import registered_model_create, scored_run_create, user_create

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

EXAMPLES = int(os.getenv("FUZZ_EXAMPLES", "15"))
CANARY = "canary-7f3a9c-do-not-show"
PRIVATE_NAMES = ("team-a/hidden-model-q81", "hidden dataset q81", "hidden-endpoint-q81", "hidden-host-q81.internal")

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "%00",
    "²",
    "１２",
    "-1",
    "0",
    "1",
    "2",
    "99999999999999999999999999",
    "9" * 5000,
    "1e9",
    "NaN",
    "inf",
    "-0",
    "0x10",
    "1.5",
    "abc",
    "1 OR 1",
    "true",
    "null",
    "[]",
    "{}",
    '{"a": 1}',
    "' OR 1=1 --",
    '" onmouseover=x',
    "<script>alert(1)</script>",
    "{{ 7*7 }}",
    "{% debug %}",
    "../../../../etc/passwd",
    "/etc/shadow",
    "/proc/self/environ",
    "/",
    "//evil.example/x",
    "http://127.0.0.1:6379/",
    "http://169.254.169.254/latest/meta-data",
    "file:///etc/passwd",
    "a" * 301,
    "x" * 70_000,
    "🙂" * 200,
    "\u202e\u0645",
    "ko",
    "en",
    "csv",
    "json",
    "-average",
    "average",
    "arc",
    "openllm_v1",
    "bfloat16",
    "8bit",
    "4bit",
    "delta",
    "adapter",
    "original",
    "qa",
    "custom",
    "endpoint",
    "registered_model",
    "precomputed",
    "1,2,3",
    "@architecture:",
    "@nope:x",
    ";;;",
    "SECRET_KEY",
    "DB_PASSWORD",
    "../secrets/x",
    ".hidden",
    "local",
    "openai",
]
# Mostly the nasty list, some random text, numbers and bytes.
RANDOM_VALUES = st.one_of(
    st.text(max_size=60),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")),
)
# Every name a page reads (request.GET/POST in the views, LeaderboardQuery.from_querydict).
PARAM_NAMES = [
    "q",
    "page",
    "per_page",
    "sort",
    "dir",
    "cols",
    "suite",
    "type",
    "precision",
    "size",
    "stderr",
    "show_private",
    "show_deleted",
    "show_merged",
    "show_moe",
    "show_flagged",
    "models",
    "metric",
    "task",
    "filter",
    "doc",
    "correct",
    "run",
    "a",
    "b",
    "tag",
    "unscored",
    "v",
    "status",
    "path",
    "storage_path",
    "base_model_path",
    "dataset_version",
    "agrees",
    "next",
    "language",
    "format",
    "partial",
    "batch_size",
]
FILE_NAMES = ["rows.csv", "rows.jsonl", "rows.json", "rows.xlsx", "rows.tsv", "rows.txt", "../../x.csv", "a\x00.csv"]
FILE_BODIES = st.one_of(
    st.sampled_from(
        [
            b"",
            b"\x00",
            b"question\n\x00\n",
            b"question\nwhat?\n",
            b'{"question": "q"}\n',
            b'{"question": ' + b"[" * 5000 + b"]" * 5000 + b"}\n",
            b"question\n" + b"x" * 140_000 + b"\n",
            b"PK\x03\x04garbage",
            b"\xff\xfe\x00q",
        ]
    ),
    st.binary(max_size=300),
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "HTTP_HX_REQUEST": st.sampled_from(["true", "1", "\x00"]),
        "HTTP_ACCEPT_LANGUAGE": st.sampled_from(["ko", "en", "ko-KR,ko;q=0.9", "zz", "\x00"]),
        "HTTP_ACCEPT": st.sampled_from(["application/json", "text/html", "*/*"]),
    },
)

# (methods, URL name, arguments): "<role>" arguments are ids of the world's rows (see World.ids).
PAGES = [
    ("GET", "leaderboard:index", ()),
    ("GET", "leaderboard:export", ("csv",)),
    ("GET", "leaderboard:export", ("json",)),
    ("GET", "leaderboard:export", ("xml",)),
    ("POST", "leaderboard:columns_save", ()),
    ("GET", "leaderboard:metrics_through_time", ()),
    ("GET,POST", "leaderboard:about", ()),
    ("GET,POST", "leaderboard:submit", ()),
    ("GET", "leaderboard:submit_browse", ()),
    ("GET", "leaderboard:submit_inspect", ()),
    ("GET", "leaderboard:healthz", ()),
    ("GET", "leaderboard:favicon", ()),
    ("GET", "leaderboard:model_detail", ("<private_model>",)),
    ("GET", "leaderboard:model_detail", ("<public_model>",)),
    ("GET", "leaderboard:model_detail", ("<missing>",)),
    ("GET", "leaderboard:run_samples", ("<private_run>",)),
    ("GET", "leaderboard:run_samples", ("<public_run>",)),
    ("GET", "leaderboard:compare", ()),
    ("GET", "runs:queue", ()),
    ("GET", "runs:detail", ("<private_run>",)),
    ("GET", "runs:detail", ("<public_run>",)),
    ("GET", "runs:detail", ("<private_evaluation>",)),
    ("POST", "runs:cancel", ("<private_run>",)),
    ("POST", "runs:cancel", ("<own_evaluation>",)),
    ("GET", "evaluator:index", ()),
    ("GET,POST", "evaluator:dataset_new", ()),
    ("GET,POST", "evaluator:dataset", ("<private_dataset>",)),
    ("GET,POST", "evaluator:dataset", ("<own_dataset>",)),
    ("GET", "evaluator:row_new", ("<own_dataset>", 1)),
    ("GET", "evaluator:row_new", ("<private_dataset>", 1)),
    ("GET", "evaluator:row_edit", ("<own_dataset>", 1, 1)),
    ("GET", "evaluator:row_edit", ("<own_dataset>", 9, 99)),
    ("GET,POST", "evaluator:endpoint_new", ()),
    ("GET,POST", "evaluator:embedding_new", ()),
    ("POST", "evaluator:endpoint_check", ("<private_endpoint>",)),
    ("POST", "evaluator:endpoint_check", ("<own_endpoint>",)),
    ("GET,POST", "evaluator:run_new", ()),
    ("GET", "evaluator:run", ("<private_evaluation>",)),
    ("GET", "evaluator:run", ("<own_evaluation>",)),
    ("GET", "evaluator:run_status", ("<own_evaluation>",)),
    ("GET", "evaluator:run_samples", ("<own_evaluation>",)),
    ("GET", "evaluator:run_samples", ("<private_evaluation>",)),
    ("GET", "evaluator:run_export", ("<own_evaluation>", "json")),
    ("GET", "evaluator:run_export", ("<own_evaluation>", "csv")),
    ("GET", "evaluator:run_export", ("<private_evaluation>", "json")),
    ("POST", "evaluator:score_review", ("<private_score>",)),
    ("POST", "evaluator:score_review", ("<own_score>",)),
    ("GET", "evaluator:compare", ()),
    ("GET,POST", "evaluator:dataset_edit", ("<own_dataset>",)),
    ("GET,POST", "evaluator:dataset_edit", ("<private_dataset>",)),
    ("GET,POST", "evaluator:dataset_delete", ("<own_dataset>",)),
    ("POST", "evaluator:dataset_delete", ("<private_dataset>",)),
    ("GET,POST", "evaluator:endpoint_delete", ("<own_endpoint>",)),
    ("POST", "evaluator:endpoint_delete", ("<private_endpoint>",)),
    ("GET,POST", "login", ()),
    ("POST", "set_language", ()),
    ("GET", "admin:index", ()),
]
# FUZZ_PAGES=evaluator:dataset_edit,evaluator:compare: only those URL names (to check the pages one changed).
_ONLY = {name.strip() for name in os.getenv("FUZZ_PAGES", "").split(",") if name.strip()}
TARGETS = [
    (method, name, args) for methods, name, args in PAGES for method in methods.split(",") if not _ONLY or name in _ONLY
]
_names_cache: dict[tuple, list[str]] = {}


@dataclass
class World:
    ids: dict[str, int]
    watched_models: list[RegisteredModel]
    attacker: object
    staff: object
    # Values only this world knows: the folder of the other group's private model, a planted secret file.
    local_values: list[str]

    def path(self, name: str, args: tuple) -> str:
        return reverse(name, args=[self.ids[a[1:-1]] if isinstance(a, str) and a.startswith("<") else a for a in args])


@pytest.fixture
def world(tiny_model, monkeypatch, tmp_path):
    team_a, team_b = Group.objects.create(name="fuzz-team-a"), Group.objects.create(name="fuzz-team-b")
    owner = user_create(username="fuzz-owner", groups=(team_a,))
    attacker = user_create(username="fuzz-attacker", groups=(team_b,))
    # A planted secret: nothing the attacker does may make a page show it.
    monkeypatch.setenv("FUZZ_CANARY", CANARY)
    (tmp_path / "canary.txt").write_text(CANARY)

    private_model = registered_model_create(
        display_name=PRIVATE_NAMES[0], private=True, group=team_a, owner=owner, storage_path=str(tiny_model)
    )
    public_model = registered_model_create(display_name="org/public-fuzz", owner=owner)
    private_run, public_run = (
        scored_run_create(model=m, values={"arc": 0.4, "mmlu": 0.3}, submitted_by=owner)
        for m in (private_model, public_model)
    )
    private_dataset = dataset_make(name=PRIVATE_NAMES[1], owner=owner, private=True, group=team_a)
    own_dataset = dataset_make(owner=attacker)
    private_endpoint = endpoint_make(
        name=PRIVATE_NAMES[2], private=True, group=team_a, owner=owner, base_url=f"http://{PRIVATE_NAMES[3]}:8000/v1"
    )
    own_endpoint = endpoint_make(owner=attacker)
    private_evaluation = evaluator_run_make(
        version=private_dataset.latest_version, submitted_by=owner, judge=private_endpoint
    )
    own_evaluation = evaluator_run_make(version=own_dataset.latest_version, submitted_by=attacker, judge=own_endpoint)
    ids = {
        "private_model": private_model.pk,
        "public_model": public_model.pk,
        "missing": 10**9,
        "private_run": private_run.pk,
        "public_run": public_run.pk,
        "private_dataset": private_dataset.pk,
        "own_dataset": own_dataset.pk,
        "private_endpoint": private_endpoint.pk,
        "own_endpoint": own_endpoint.pk,
        "private_evaluation": private_evaluation.pk,
        "own_evaluation": own_evaluation.pk,
        "private_score": private_evaluation.sample_results.first().metric_scores.first().pk,
        "own_score": own_evaluation.sample_results.first().metric_scores.first().pk,
    }
    staff = user_create(username="fuzz-staff", is_staff=True, is_superuser=True)
    return World(
        ids=ids,
        watched_models=[private_model, public_model],
        attacker=attacker,
        staff=staff,
        local_values=[str(tiny_model), tiny_model.name, str(tmp_path / "canary.txt"), "FUZZ_CANARY"],
    )


def _page_parameter_names(world: World, name: str, args: tuple) -> list[str]:
    """The parameter names a page really reads: its forms' inputs and its links' query names (href, hx-get,
    action), read once per page as a staff user sees it."""
    key = (name, args)
    if key not in _names_cache:
        staff = Client()
        staff.force_login(world.staff)
        response = staff.get(world.path(name, args))
        html = response.content.decode(errors="replace") if response.status_code == 200 else ""
        found = set(re.findall(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', html))
        for url in re.findall(r'(?:href|hx-get|hx-post|action)="[^"]*\?([^"]*)"', html):
            found.update(part.split("=", 1)[0] for part in url.replace("&amp;", "&").split("&") if part)
        _names_cache[key] = sorted(found - {"csrfmiddlewaretoken", ""}) or PARAM_NAMES
    return _names_cache[key]


def _request_strategy(world: World, method: str, own_names: list[str]):
    values = st.one_of(st.sampled_from(NASTY), st.sampled_from(NASTY + world.local_values), RANDOM_VALUES)
    # Mostly the names this page reads, sometimes any page's, rarely a random one.
    names = st.one_of(
        st.sampled_from(own_names),
        st.sampled_from(own_names),
        st.sampled_from(PARAM_NAMES),
        st.text(min_size=1, max_size=12),
    )

    @st.composite
    def draw(draw_one):
        params = {}
        for name in draw_one(st.lists(names, min_size=1, max_size=6)):
            drawn = draw_one(st.lists(values, min_size=1, max_size=3))
            params[name] = drawn if len(drawn) > 1 else drawn[0]
        if method == "POST" and draw_one(st.booleans()):
            field = draw_one(st.sampled_from(["file", "upload-file"]))
            params[field] = SimpleUploadedFile(draw_one(st.sampled_from(FILE_NAMES)), draw_one(FILE_BODIES))
        query = {}
        if method == "POST":
            query = {name: draw_one(values) for name in draw_one(st.lists(st.sampled_from(own_names), max_size=2))}
        return params, query, draw_one(HEADERS)

    return draw()


def _send(client: Client, method: str, path: str, params: dict, query: dict, headers: dict):
    url = f"{path}?{urlencode(query, doseq=True)}" if query else path
    if method == "GET":
        return client.get(url, params, **headers)
    return client.post(url, params, **headers)


def _owned_fields(model: RegisteredModel) -> tuple:
    return (model.owner_id, model.group_id, model.private, model.display_name, model.deleted, model.flagged)


def _assert_nothing_half_stored(runs_before: int) -> None:
    assert not GoldenDataset.objects.annotate(n=Count("versions")).filter(n=0).exists(), "a dataset without a version"
    assert not DatasetVersion.objects.annotate(n=Count("rows")).exclude(row_count=F("n")).exists(), "wrong row count"
    assert (
        not EvaluationRun.objects.filter(kind="evaluator")
        .exclude(pk__in=EvaluatorRun.objects.values("run_id"))
        .exists()
    ), "an evaluator run without its link row"
    assert not EvaluationRun.objects.filter(pk__gt=runs_before).annotate(n=Count("events")).filter(n=0).exists(), (
        "a run without its history"
    )
    duplicates = (
        RegisteredModel.objects.filter(deleted=False)
        .values("storage_path", "revision", "precision", "weight_type", "base_model_path")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not duplicates.exists(), f"duplicate model rows: {list(duplicates)}"


def _endpoint_state(pk: int) -> tuple:
    return LLMEndpoint.objects.filter(pk=pk).values_list("name", "base_url", "owner_id", "group_id", "private").get()


def _fuzz_page(world: World, client: Client, who: str, method: str, name: str, args: tuple) -> None:
    path = world.path(name, args)
    before = {m.pk: _owned_fields(m) for m in world.watched_models}
    endpoint_before = _endpoint_state(world.ids["private_endpoint"])
    runs_before = EvaluationRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=os.getenv("CI") == "true",
        suppress_health_check=list(HealthCheck),
    )
    @given(request=_request_strategy(world, method, _page_parameter_names(world, name, args)))
    def one_request(request):
        params, query, headers = request
        response = _send(client, method, path, params, query, headers)
        shown = {k: (v if not hasattr(v, "read") else f"<file {v.name}>") for k, v in params.items()}
        where = f"{who}: {method} {path} {query or ''} {shown} {headers or ''}"
        assert response.status_code < 500, f"{where} -> HTTP {response.status_code}"
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode(errors="replace")
        assert CANARY not in text, f"{where} showed the planted secret"
        leaked = [private for private in PRIVATE_NAMES if private in text]
        assert not leaked, f"{where} showed the other group's {leaked}"
        _assert_nothing_half_stored(runs_before)
        for model in RegisteredModel.objects.filter(pk__in=before):
            assert _owned_fields(model) == before[model.pk], f"{where} changed model {model.pk}"
        assert _endpoint_state(world.ids["private_endpoint"]) == endpoint_before, f"{where} changed the endpoint"

    one_request()


# Each of these in each parameter a page reads, one at a time, before the random mixes: the values that
# broke pages before, so that no run of the fuzz can miss them by chance.
WORST = ["\x00", "²", "abc", "-1", "9" * 5000]


def _sweep_page(world: World, client: Client, who: str, method: str, name: str, args: tuple) -> int:
    """Every parameter the page reads, each of WORST in turn; returns the number of requests."""
    path = world.path(name, args)
    sent = 0
    for param in _page_parameter_names(world, name, args):
        for value in WORST:
            response = _send(client, method, path, {param: value}, {}, {})
            sent += 1
            assert response.status_code < 500, (
                f"{who}: {method} {path} {{{param!r}: {value[:20]!r}}} -> HTTP {response.status_code}"
            )
    return sent


def _fuzz_site(world: World, client: Client, who: str) -> None:
    """Every page: the sweep, then Hypothesis's mixes. Failures are collected, so one run reports them all."""
    failures, requests = [], 0
    for method, name, args in TARGETS:
        for fuzz in (_sweep_page, _fuzz_page):
            try:
                requests += fuzz(world, client, who, method, name, args) or EXAMPLES
            except AssertionError as exc:
                failures.append(str(exc).splitlines()[0][:300])
    print(f"{who}: {requests} requests to {len(TARGETS)} pages, {len(failures)} failures")
    assert not failures, f"{len(failures)} pages failed ({requests} requests):\n" + "\n".join(failures)


def test_hostile_input_as_another_group(world):
    client = Client(raise_request_exception=False)
    client.force_login(world.attacker)
    _fuzz_site(world, client, "user of another group")


def test_hostile_input_anonymous(world):
    _fuzz_site(world, Client(raise_request_exception=False), "anonymous")
