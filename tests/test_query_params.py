"""Hostile query parameters get a clear 4xx or the page with a sensible default, never an HTTP 500, whether the
client is anonymous or logged in: NUL anywhere (PostgreSQL refuses it in text), Unicode digits (``int("²")``
raises), ids too large for the database, and words where numbers belong."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config.params import choice_param, int_list_param, int_param, parse_int, text_param
from runs.choices import RunStatus
from tests.evaluator.factories import dataset_make, evaluator_run_make
from tests.factories import registered_model_create, scored_run_create, user_create

pytestmark = pytest.mark.django_db

HUGE = "9" * 30  # past bigint
GARBAGE = ["²", "٣", "abc", "-1", "0", "1.5", "1e9", " ", HUGE, "9" * 5000, "<script>", "%", "١٢"]
HOSTILE = ["²", "١٢", "abc", "-1", HUGE, "9" * 5000]  # what every parameter of every page is fed


@pytest.fixture
def site():
    """A model with two scored runs and an evaluator dataset with two runs, all visible to everyone."""
    model = registered_model_create(display_name="org/seen")
    values = {"arc": 0.5, "hellaswag": 0.6, "mmlu": 0.4, "truthfulqa": 0.3, "winogrande": 0.7, "gsm8k": 0.2}
    first = scored_run_create(model=model, values=values, finished_at=timezone.now())
    second = scored_run_create(model=model, values={key: value + 0.01 for key, value in values.items()})
    dataset = dataset_make()
    version = dataset.latest_version
    ev_a, ev_b = evaluator_run_make(version=version), evaluator_run_make(version=version)
    return {"model": model, "runs": (first, second), "dataset": dataset, "ev": (ev_a, ev_b)}


@pytest.fixture
def member(client):
    client.force_login(user_create())
    return client


def _pages(site) -> list[tuple[str, list[str]]]:
    """Each page with the parameters its views read."""
    run_a, run_b = site["runs"]
    ev_a, _ev_b = site["ev"]
    return [
        (
            reverse("leaderboard:index"),
            [
                "q",
                "suite",
                "type",
                "precision",
                "size",
                "sort",
                "page",
                "per_page",
                "stderr",
                "cols",
                "show_private",
                "show_flagged",
            ],
        ),
        (reverse("leaderboard:export", args=["json"]), ["q", "sort", "page", "per_page", "cols", "type"]),
        (reverse("leaderboard:export", args=["csv"]), ["q", "sort", "size"]),
        (reverse("leaderboard:metrics_through_time"), ["suite", "metric", "models"]),
        (reverse("leaderboard:model_detail", args=[site["model"].pk]), ["run"]),
        (reverse("leaderboard:run_samples", args=[run_a.pk]), ["task", "correct", "page", "filter", "per_page", "doc"]),
        (reverse("leaderboard:compare"), ["a", "b"]),
        (reverse("runs:queue"), ["status", "page"]),
        (reverse("runs:detail", args=[run_b.pk]), []),
        (reverse("evaluator:index"), []),
        (reverse("evaluator:dataset", args=[site["dataset"].pk]), ["v", "q", "tag", "page"]),
        (reverse("evaluator:run", args=[ev_a.pk]), ["tag", "metric", "unscored", "page"]),
        (reverse("evaluator:run_samples", args=[ev_a.pk]), ["tag", "metric", "unscored", "page"]),
        (reverse("evaluator:run_export", args=[ev_a.pk, "json"]), []),
        (reverse("evaluator:compare"), ["a", "b"]),
    ]


# --- The shared readers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", GARBAGE + [None, "", "12a", "+3", "0x10"])
def test_parse_int_never_raises_and_keeps_only_ascii_numbers_in_range(value):
    assert parse_int(value, "default") == "default"
    assert parse_int("42") == 42 and parse_int(" 7 ") == 7 and parse_int(str(2**63 - 1)) == 2**63 - 1
    assert parse_int(str(2**63)) is None and parse_int("0", minimum=0) == 0


def test_list_choice_and_text_readers():
    from django.http import QueryDict

    params = QueryDict("models=3&models=²&models=3&models=x&models=5&metric=arc&metric2=%3Cb%3E&q=%20%20hi%20")
    assert int_list_param(params, "models") == [3, 5]
    assert choice_param(params, "metric", {"arc", "mmlu"}) == "arc"
    assert choice_param(params, "metric2", {"arc"}, "average") == "average"
    assert text_param(params, "q") == "hi" and text_param(params, "missing", "d") == "d"
    assert int_param(params, "models") == 5 and int_param(params, "nothing", 9) == 9  # the last one, as QueryDict.get


# --- Each page, each parameter -------------------------------------------------------------------------------


def test_every_parameter_of_every_page_survives_garbage(member, site):
    failures = []
    for url, names in _pages(site):
        for name in names:
            for value in HOSTILE:
                response = member.get(url, {name: value})
                if response.status_code >= 500 or response.status_code not in (200, 404):
                    failures.append((url, name, value, response.status_code))
        # Repeated and unknown parameters too.
        response = member.get(url, {name: ["1", "²", HUGE] for name in names} | {"unknown": "x"})
        if response.status_code >= 500:
            failures.append((url, "*", "repeated", response.status_code))
    assert not failures


def test_anonymous_garbage_is_sent_to_the_login_page(client, site):
    for url, names in _pages(site):
        response = client.get(url, {name: "²" for name in names})
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_unicode_digit_models_on_metrics_through_time(member, site):
    """int("²") raised: the chart page with models=² draws no family instead of failing."""
    url = reverse("leaderboard:metrics_through_time")
    response = member.get(url, {"models": ["²", str(site["model"].pk)]})
    assert response.status_code == 200
    assert "org/seen" in response.content.decode()
    assert member.get(url, {"models": "²", "metric": "²"}, headers={"HX-Request": "true"}).status_code == 200


@pytest.mark.parametrize(
    "pair", [{"a": "abc", "b": "abc"}, {"a": "²"}, {"a": HUGE, "b": HUGE}, {}, {"a": "1", "b": ""}]
)
def test_evaluator_compare_answers_garbage_with_404(member, site, pair):
    response = member.get(reverse("evaluator:compare"), pair)
    assert response.status_code == 404


def test_evaluator_compare_still_compares(member, site):
    ev_a, ev_b = site["ev"]
    response = member.get(reverse("evaluator:compare"), {"a": ev_a.pk, "b": ev_b.pk})
    assert response.status_code == 200


def test_queue_status_filter_and_page(member, site):
    queue = reverse("runs:queue")
    assert member.get(queue, {"status": RunStatus.SUCCEEDED}).status_code == 200
    assert "org/seen" not in member.get(queue, {"status": RunStatus.FAILED}).content.decode()
    assert "org/seen" in member.get(queue, {"status": "²", "page": HUGE}).content.decode()


def test_dataset_version_picker_ignores_unicode_digits(member, site):
    dataset = site["dataset"]
    response = member.get(reverse("evaluator:dataset", args=[dataset.pk]), {"v": "١"})  # Arabic-Indic one
    assert response.status_code == 200 and response.context["version"].number == 1


@pytest.mark.parametrize(
    "path",
    [
        "/models/" + HUGE + "/",
        "/runs/" + HUGE + "/",
        "/evaluator/runs/" + HUGE + "/",
        "/evaluator/datasets/" + HUGE + "/",
    ],
)
def test_ids_in_the_path_past_bigint_are_not_found(member, site, path):
    assert member.get(path).status_code == 404


# --- NUL --------------------------------------------------------------------------------------------------------

NUL_CASES = [
    (lambda s: reverse("leaderboard:index"), {"q": "a\x00b"}),
    (lambda s: reverse("leaderboard:index"), {"precision": "\x00"}),
    (lambda s: reverse("leaderboard:export", args=["csv"]), {"q": "\x00"}),
    (lambda s: reverse("evaluator:dataset", args=[s["dataset"].pk]), {"q": "\x00"}),
    (lambda s: reverse("evaluator:dataset", args=[s["dataset"].pk]), {"tag": "x\x00"}),
    (lambda s: reverse("evaluator:run", args=[s["ev"][0].pk]), {"tag": "\x00", "metric": "m"}),
    (lambda s: reverse("evaluator:run_samples", args=[s["ev"][0].pk]), {"metric": "\x00"}),
    (lambda s: reverse("runs:queue"), {"status\x00": "1"}),  # in a name
    (lambda s: reverse("leaderboard:submit_browse"), {"path": "/models/\x00"}),
    (lambda s: "/admin/leaderboard/registeredmodel/", {"q": "\x00"}),
]


@pytest.mark.parametrize(("url", "params"), NUL_CASES)
def test_nul_in_a_query_parameter_is_a_400_page(member, site, url, params):
    response = member.get(url(site), params)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


@pytest.mark.parametrize(("url", "params"), NUL_CASES[:3])
def test_nul_is_refused_before_the_login_redirect(client, site, url, params):
    response = client.get(url(site), params)
    assert response.status_code == 400 and "NUL character" in response.content.decode()


def test_nul_in_the_path_or_a_form_field_or_a_file_name(member, site):
    assert member.get("/evaluator/datasets/\x00/").status_code == 400
    assert member.post(reverse("leaderboard:columns_save"), {"cols": ["model", "ar\x00c"]}).status_code == 400
    from django.core.files.uploadedfile import SimpleUploadedFile

    from evaluator.models import GoldenDataset

    refused = SimpleUploadedFile("golden.csv", b"question\nq1\n", content_type="text/csv")
    assert member.post(reverse("evaluator:dataset_new"), {"name": "x\x00", "file": refused}).status_code == 400
    assert GoldenDataset.objects.count() == 1  # only the fixture's
    # A file's name is cleaned by Django's own parser (non-printable characters dropped): stored, no NUL.
    upload = SimpleUploadedFile("golden\x00.csv", b"question\nq1\n", content_type="text/csv")
    assert member.post(reverse("evaluator:dataset_new"), {"name": "x", "file": upload}).status_code == 302
    assert GoldenDataset.objects.latest("pk").versions.get().source == "golden.csv"


def test_nul_answer_is_json_for_a_json_client(member, site):
    response = member.get(reverse("leaderboard:export", args=["json"]), {"q": "\x00"})
    assert response.status_code == 400 and "NUL character" in response.json()["error"]
    response = member.get(reverse("leaderboard:index"), {"q": "\x00"}, headers={"Accept": "application/json"})
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")


def test_nul_page_is_translated(site):
    korean = Client(headers={"Accept-Language": "ko"})
    response = korean.get(reverse("leaderboard:index"), {"q": "\x00"})
    assert response.status_code == 400 and '<html lang="ko"' in response.content.decode()
