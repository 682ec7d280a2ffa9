"""Metrics through time: the best score so far, a line per model family across revisions, the picker."""

import json
from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leaderboard.harness.suites import suite_get
from leaderboard.history import score_history
from runs.choices import RunStatus
from tests.factories import registered_model_create, run_create_row, scored_run_create, user_create

pytestmark = pytest.mark.django_db

SIX = ("arc", "hellaswag", "mmlu", "truthfulqa", "winogrande", "gsm8k")
T0 = timezone.now() - timedelta(days=30)


def six(value, **overrides):
    return {key: overrides.get(key, value) for key in SIX}


def at(days):
    return T0 + timedelta(days=days)


@pytest.fixture
def suite():
    return suite_get("openllm_v1")


@pytest.fixture
def user():
    return user_create()


def test_best_so_far_and_family_lines(suite, user):
    v1 = registered_model_create(display_name="acme/chat v1", storage_path="/models/acme-chat", revision="a" * 40)
    v2 = registered_model_create(display_name="acme/chat v2", storage_path="/models/acme-chat", revision="b" * 40)
    other = registered_model_create(display_name="lab/base", storage_path="/models/lab-base")
    scored_run_create(model=v1, values=six(0.40), finished_at=at(1))
    scored_run_create(model=other, values=six(0.50), finished_at=at(2))
    scored_run_create(model=v2, values=six(0.45), finished_at=at(3))
    scored_run_create(model=v2, values=six(0.60), finished_at=at(4))
    # Never drawn: a smoke run, a failed run, a deleted model's run.
    scored_run_create(model=other, values=six(0.99), finished_at=at(5), is_partial=True)
    run_create_row(model=other, status=RunStatus.FAILED, finished_at=at(6))
    scored_run_create(model=registered_model_create(deleted=True), values=six(0.98), finished_at=at(7))

    history = score_history(user=user, suite=suite)
    assert [round(p.value, 2) for p in history.best] == [0.40, 0.50, 0.60]
    assert [p.display_name for p in history.best] == ["acme/chat v1", "lab/base", "acme/chat v2"]
    family = history.families[0]
    assert family.key == "/models/acme-chat" and family.label == "acme/chat v2"
    assert [round(p.value, 2) for p in family.points] == [0.40, 0.45, 0.60]
    assert [p.at for p in family.points] == sorted(p.at for p in family.points)
    assert [f.label for f in history.families] == ["acme/chat v2", "lab/base"]

    gsm8k = score_history(user=user, suite=suite, metric_key="gsm8k")
    assert gsm8k.metric_key == "gsm8k" and len(gsm8k.families) == 2
    picked = score_history(user=user, suite=suite, model_ids=[other.pk])
    assert [f.label for f in picked.shown] == ["lab/base"]
    assert score_history(user=user, suite=suite, model_ids=[]).shown == []


def test_metric_select_draws_that_column_and_keeps_the_ranking_by_average(suite, user):
    strong = registered_model_create(display_name="strong/avg")
    math = registered_model_create(display_name="math/only")
    scored_run_create(model=strong, values=six(0.70, gsm8k=0.20), finished_at=at(1))
    scored_run_create(model=math, values=six(0.30, gsm8k=0.90), finished_at=at(2))

    history = score_history(user=user, suite=suite, metric_key="gsm8k")
    assert [(p.display_name, p.value) for p in history.best] == [("strong/avg", 0.20), ("math/only", 0.90)]
    assert [f.label for f in history.families] == ["strong/avg", "math/only"]  # by latest average
    assert [f.points[0].value for f in history.families] == [0.20, 0.90]
    assert round(history.families[0].latest_average, 4) == round((0.70 * 5 + 0.20) / 6, 4)
    assert [round(p.value, 4) for p in score_history(user=user, suite=suite).best] == [round((0.70 * 5 + 0.20) / 6, 4)]
    with pytest.raises(ValueError):
        score_history(user=user, suite=suite, metric_key="nope")


def test_private_models_of_others_and_incomplete_runs_are_left_out(suite, user):
    secret = registered_model_create(private=True, owner=user_create())
    scored_run_create(model=secret, values=six(0.9), finished_at=at(1))
    partial_columns = registered_model_create()
    scored_run_create(model=partial_columns, values={"arc": 0.9}, finished_at=at(2))
    assert score_history(user=user, suite=suite).families == []
    assert len(score_history(user=user, suite=suite, metric_key="arc").families) == 1


def test_query_count_does_not_grow_with_models(suite, user, django_assert_num_queries):
    for n in range(5):
        scored_run_create(model=registered_model_create(), values=six(n / 10), finished_at=at(n))
    with django_assert_num_queries(2):
        few = score_history(user=user, suite=suite)
    for n in range(45):
        scored_run_create(model=registered_model_create(), values=six(n / 100), finished_at=at(n))
    with django_assert_num_queries(2):
        many = score_history(user=user, suite=suite)
    assert len(few.families) == 5 and len(many.families) == 50 and len(many.shown) == 10


def test_page_query_count_does_not_grow_with_models(client, user):
    client.force_login(user)
    url = reverse("leaderboard:metrics_through_time")
    for n in range(5):
        scored_run_create(model=registered_model_create(), values=six(n / 10), finished_at=at(n))
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for n in range(45):
        scored_run_create(model=registered_model_create(), values=six(n / 100), finished_at=at(n))
    with CaptureQueriesContext(connection) as many:
        html = client.get(url).content.decode()
    assert len(many) == len(few) <= 6
    assert html.count('name="models" value="') == 51  # the empty one and one per family


def test_plotly_is_vendored_in_static():
    path = finders.find("vendor/plotly.min.js")
    assert path is not None
    with open(path, encoding="utf-8") as handle:
        assert "plotly.js v" in handle.read(300)


def test_page_serves_plotly_from_static_and_the_partial_redraws(client, user):
    plotted = registered_model_create(display_name="acme/plotted", revision="0123456789abcdef" * 2 + "01234567")
    scored_run_create(model=plotted, values=six(0.5), finished_at=at(1))
    client.force_login(user)
    html = client.get(reverse("leaderboard:metrics_through_time")).content.decode()
    assert "/static/vendor/plotly.min.js" in html and "cdn" not in html.lower()
    assert 'id="mtt-figure"' in html and "acme/plotted" in html
    partial = client.get(
        reverse("leaderboard:metrics_through_time"), {"metric": "gsm8k"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "<html" not in partial
    figure = json.loads(json.loads(partial.split('type="application/json">')[1].split("</script>")[0]))
    assert figure["layout"]["title"]["text"] == "GSM8K through time"
    assert {trace["name"] for trace in figure["data"]} == {"Best so far", "acme/plotted"}
    assert figure["data"][0]["line"]["shape"] == "hv" and figure["data"][0]["y"][0] == pytest.approx(50)
    hover = figure["data"][1]["text"][0]
    assert "acme/plotted" in hover and "0123456789<" in hover and "0123456789a" not in hover and "50.00" in hover
    # Unticking every model (the form sends an empty ``models``) draws none; an unknown metric is the Average.
    partial = client.get(
        reverse("leaderboard:metrics_through_time"), {"metric": "nope", "models": ""}, headers={"HX-Request": "true"}
    ).content.decode()
    figure = json.loads(json.loads(partial.split('type="application/json">')[1].split("</script>")[0]))
    assert [trace["name"] for trace in figure["data"]] == ["Best so far"]
    assert figure["layout"]["title"]["text"] == "Average through time"


def _figure(client, **params):
    partial = client.get(reverse("leaderboard:metrics_through_time"), params, headers={"HX-Request": "true"})
    return json.loads(json.loads(partial.content.decode().split('type="application/json">')[1].split("</script>")[0]))


def test_a_family_keeps_its_colour_and_the_hover_has_date_and_stderr(client, user):
    import math

    first = registered_model_create(display_name="acme/first", storage_path="/models/acme-first")
    second = registered_model_create(display_name="lab/second", storage_path="/models/lab-second")
    scored_run_create(model=first, values=six(0.5), stderr=0.01, finished_at=at(1).replace(hour=9, minute=5))
    scored_run_create(model=second, values=six(0.4), stderr=0.02, finished_at=at(2))
    client.force_login(user)

    def colours(**params):
        return {t["name"]: t["line"]["color"] for t in _figure(client, **params)["data"] if t["name"] != "Best so far"}

    both = colours(models=[first.pk, second.pk])
    assert both["acme/first"] != both["lab/second"]
    assert colours(models=[second.pk]) == {"lab/second": both["lab/second"]}  # unticking one repaints nothing
    assert colours(models=[second.pk], metric="arc") == {"lab/second": both["lab/second"]}

    trace = next(t for t in _figure(client, models=[first.pk])["data"] if t["name"] == "acme/first")
    when = timezone.localtime(at(1).replace(hour=9, minute=5)).strftime("%Y-%m-%d %H:%M")
    average_stderr = math.sqrt(6 * 0.01**2) / 6 * 100  # the plain mean of six columns, each ± 1.00
    assert f"evaluated {when}" in trace["text"][0] and f"50.00 ± {average_stderr:.2f}" in trace["text"][0]
    trace = next(t for t in _figure(client, models=[second.pk], metric="gsm8k")["data"] if t["name"] == "lab/second")
    assert "40.00 ± 2.00" in trace["text"][0]


def test_an_empty_chart_says_so_instead_of_drawing_bare_axes(client, user):
    client.force_login(user)
    html = client.get(reverse("leaderboard:metrics_through_time")).content.decode()
    assert 'id="mtt-empty"' in html and "Nothing to draw yet." in html
    assert 'id="mtt-plot"' not in html and 'id="mtt-figure"' not in html
    scored_run_create(model=registered_model_create(), values=six(0.5), finished_at=at(1))
    html = client.get(reverse("leaderboard:metrics_through_time"), {"models": ""}).content.decode()
    assert 'id="mtt-plot"' in html and 'id="mtt-none-picked"' in html  # the best line alone, and why
