"""The "LLM Benchmark" table: search, filters, toggles, sort, pages, columns, exports, reference rows."""

import csv
import io
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from leaderboard.harness.suites import suite_get
from leaderboard.models import LeaderboardPreference, ReferenceRow
from leaderboard.selectors import leaderboard_page
from leaderboard.table import LeaderboardQuery, search_parse, table_columns
from runs.choices import RunStatus
from tests.factories import registered_model_create, run_create_row, scored_run_create, user_create

pytestmark = pytest.mark.django_db

ALL_SIX = ("arc", "hellaswag", "mmlu", "truthfulqa", "winogrande", "gsm8k")


def six(value: float, **overrides) -> dict[str, float]:
    return {key: overrides.get(key, value) for key in ALL_SIX}


@pytest.fixture
def user():
    return user_create()


@pytest.fixture
def board():
    """Five ranked models with different traits, and one without a finished run."""
    built = {
        "llama": registered_model_create(
            display_name="acme/llama-7b-chat",
            architecture="LlamaForCausalLM",
            model_type="chat",
            precision="bfloat16",
            num_params=6_700_000_000,
            license="llama2",
        ),
        "mistral": registered_model_create(
            display_name="acme/mistral-7b",
            architecture="MistralForCausalLM",
            precision="float16",
            num_params=7_200_000_000,
            license="apache-2.0",
        ),
        "tiny": registered_model_create(
            display_name="lab/tiny-1b",
            architecture="LlamaForCausalLM",
            precision="bfloat16",
            num_params=1_100_000_000,
            license="apache-2.0",
        ),
        "merged": registered_model_create(display_name="lab/frankenmerge-13b", merged=True, num_params=13_000_000_000),
        "moe": registered_model_create(
            display_name="lab/mixture-47b",
            moe=True,
            architecture="MixtralForCausalLM",
            precision="8bit",
            num_params=46_700_000_000,
            license="apache-2.0",
        ),
        "unscored": registered_model_create(display_name="lab/queued-only"),
    }
    scored_run_create(model=built["llama"], values=six(0.6))
    scored_run_create(model=built["mistral"], values=six(0.7))
    scored_run_create(model=built["tiny"], values=six(0.3, gsm8k=0.0))
    scored_run_create(model=built["merged"], values=six(0.8))
    scored_run_create(model=built["moe"], values=six(0.75))
    run_create_row(model=built["unscored"], status=RunStatus.QUEUED)
    return built


def names(page) -> list[str]:
    return [row.model.display_name for row in page.rows]


def page_for(user, **query_fields):
    suite = suite_get("openllm_v1")
    query = LeaderboardQuery(suite=suite.name, **query_fields)
    return leaderboard_page(user=user, query=query, columns=list(suite.columns), table_columns=table_columns(suite))


def test_default_view_ranks_by_average_and_hides_merged(board, user):
    page = page_for(user)
    assert names(page) == ["lab/mixture-47b", "acme/mistral-7b", "acme/llama-7b-chat", "lab/tiny-1b"]
    assert [row.rank for row in page.rows] == [1, 2, 3, 4]
    assert page.rows[0].average == pytest.approx(0.75)
    assert page.rows[3].average == pytest.approx((0.3 * 5 + 0.0) / 6)
    assert page.rows[1].stderrs["arc"] == pytest.approx(0.01)


def test_toggles_show_merged_and_hide_moe(board, user):
    assert "lab/frankenmerge-13b" in names(page_for(user, show={"merged": True}))
    assert "lab/mixture-47b" not in names(page_for(user, show={"moe": False}))


def test_a_model_missing_a_column_has_no_average_and_ranks_last(user):
    partial = registered_model_create(display_name="x/partial")
    full = registered_model_create(display_name="x/full")
    scored_run_create(model=partial, values={"arc": 0.99, "mmlu": 0.99})
    scored_run_create(model=full, values=six(0.1))
    page = page_for(user)
    assert names(page) == ["x/full", "x/partial"]
    assert page.rows[1].average is None and page.rows[1].rank is None


def test_newest_full_run_counts_and_smoke_runs_never_rank(user):
    model = registered_model_create(display_name="x/revised")
    scored_run_create(model=model, values=six(0.2), finished_at=timezone.now() - timezone.timedelta(days=2))
    scored_run_create(model=model, values=six(0.4))
    scored_run_create(model=model, values=six(0.9), is_partial=True)
    (row,) = page_for(user).rows
    assert row.average == pytest.approx(0.4)


def test_search_union_words_and_prefixes(board, user):
    assert search_parse("a b; @license:apache-2.0")[1].fields == (("license", "apache-2.0"),)
    assert names(page_for(user, search="llama; mistral")) == ["acme/mistral-7b", "acme/llama-7b-chat"]
    assert names(page_for(user, search="@architecture:mixtral")) == ["lab/mixture-47b"]
    assert names(page_for(user, search="@license:apache @precision:bfloat16")) == ["lab/tiny-1b"]
    assert names(page_for(user, search="@type:chat")) == ["acme/llama-7b-chat"]
    assert names(page_for(user, search="acme 7b chat")) == ["acme/llama-7b-chat"]
    assert names(page_for(user, search="nothing-like-this")) == []


def test_filters_by_type_precision_and_size(board, user):
    assert names(page_for(user, types=("chat",))) == ["acme/llama-7b-chat"]
    assert names(page_for(user, precisions=("float16",))) == ["acme/mistral-7b"]
    assert names(page_for(user, sizes=("7",))) == ["acme/mistral-7b", "acme/llama-7b-chat"]
    assert names(page_for(user, sizes=("1.5", "60"))) == ["lab/mixture-47b", "lab/tiny-1b"]


def test_private_models_need_the_toggle_and_the_right_to_see_them(board):
    owner = user_create()
    secret = registered_model_create(display_name="team/secret", private=True, owner=owner)
    scored_run_create(model=secret, values=six(0.99))
    assert "team/secret" not in names(page_for(owner))
    assert names(page_for(owner, show={"private": True}))[0] == "team/secret"
    assert "team/secret" not in names(page_for(user_create(), show={"private": True}))


def test_sort_by_any_column_and_paginate(board, user):
    ascending = names(page_for(user, sort="params"))
    assert ascending == ["lab/tiny-1b", "acme/llama-7b-chat", "acme/mistral-7b", "lab/mixture-47b"]
    assert names(page_for(user, sort="-model")) == sorted(ascending, reverse=True)
    assert names(page_for(user, sort="gsm8k"))[0] == "lab/tiny-1b"
    page_two = page_for(user, page=2, page_size=50)
    assert page_two.page == 1  # past the end: the last page
    # The rank stays the rank by average whatever the sort.
    by_params = page_for(user, sort="params").rows
    assert [r.rank for r in by_params] == [4, 3, 2, 1]


def test_query_round_trips_through_the_url():
    suite = suite_get("openllm_v1")
    sortable = {c.key for c in table_columns(suite) if c.sort_field}
    query = LeaderboardQuery(
        suite="openllm_v1",
        search="a; @license:mit",
        types=("chat",),
        precisions=("4bit",),
        sizes=("7", "unknown"),
        show={"merged": True, "moe": False},
        sort="arc",
        page=3,
        show_stderr=True,
    )
    from django.http import QueryDict

    again = LeaderboardQuery.from_querydict(QueryDict(query.urlencode()), suite="openllm_v1", sortable=sortable)
    assert again == query
    junk = LeaderboardQuery.from_querydict(
        QueryDict("sort=;drop&type=nope&size=9&page=-2&per_page=7"), suite="openllm_v1", sortable=sortable
    )
    assert (junk.sort, junk.types, junk.sizes, junk.page, junk.page_size) == ("-average", (), (), 1, 100)


def test_page_and_htmx_partial(client, board, user):
    client.force_login(user)
    url = reverse("leaderboard:index")
    html = client.get(url, {"q": "mistral", "stderr": "1"}).content.decode()
    assert '<form id="lb-filters"' in html and "acme/mistral-7b" in html and "acme/llama-7b-chat" not in html
    assert "± 1.00" in html
    partial = client.get(url, {"sort": "params"}, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial and '<table class="data leaderboard"' in partial
    assert partial.index("lab/tiny-1b") < partial.index("lab/mixture-47b")


def test_random_baseline_row_is_shown_but_not_ranked(client, board, user):
    assert ReferenceRow.objects.filter(kind="baseline", suite="openllm_v1").exists()
    ReferenceRow.objects.create(suite="openllm_v1", label="GPT-ref", values=six(0.5))
    client.force_login(user)
    html = client.get(reverse("leaderboard:index")).content.decode()
    assert "Random baseline" in html and "GPT-ref" in html
    assert html.index("GPT-ref") < html.index("lab/mixture-47b")
    baseline = html[html.index("Random baseline") :].split("</tr>")[0]
    # Chance levels 25, 25, 25, 25, 50 and 0; the average (25 + 25 + 25 + 25 + 50 + 0) / 6 = 25.
    assert re.findall(r'<td class="num">([\d.]+)</td>', baseline) == [
        "25.00",
        "25.00",
        "25.00",
        "25.00",
        "25.00",
        "50.00",
        "0.00",
    ]
    assert [row.rank for row in page_for(user).rows] == [1, 2, 3, 4]


def test_column_picker_is_remembered_per_user_and_the_url_wins(client, board, user):
    client.force_login(user)
    url = reverse("leaderboard:index")
    response = client.post(
        reverse("leaderboard:columns_save") + "?q=acme", {"cols": ["rank", "average", "gsm8k", "owner"]}
    )
    assert response.status_code == 302 and response["Location"].endswith("?q=acme")
    assert LeaderboardPreference.objects.get(user=user).columns == ["rank", "average", "gsm8k", "owner"]
    html = client.get(url).content.decode()
    headers = [
        c
        for c in ('data-column="arc"', 'data-column="gsm8k"', 'data-column="owner"', 'data-column="model"')
        if c in html
    ]
    assert headers == ['data-column="gsm8k"', 'data-column="owner"', 'data-column="model"']
    shared = client.get(url, {"cols": ["model", "arc"]}).content.decode()
    assert 'data-column="arc"' in shared and 'data-column="gsm8k"' not in shared
    client.force_login(user_create())
    assert 'data-column="arc"' in client.get(url).content.decode()


def test_exports_follow_the_current_view(client, board, user):
    client.force_login(user)
    response = client.get(reverse("leaderboard:export", args=["csv"]), {"q": "acme", "sort": "-arc"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["model"] for r in rows] == ["acme/mistral-7b", "acme/llama-7b-chat"]
    assert float(rows[0]["arc"]) == pytest.approx(70.0) and float(rows[0]["arc_stderr"]) == pytest.approx(1.0)
    data = json.loads(client.get(reverse("leaderboard:export", args=["json"]), {"size": "1.5"}).content)
    assert [r["model"] for r in data["rows"]] == ["lab/tiny-1b"]
    assert data["rows"][0]["gsm8k"] == 0.0 and data["rows"][0]["rank"] == 1  # rank within the view
    empty = client.get(reverse("leaderboard:export", args=["csv"]), {"q": "zzz"}).content.decode("utf-8-sig")
    assert empty.splitlines()[0].startswith("rank,model,model_id,average,average_stderr,arc,arc_stderr")


def test_query_count_does_not_grow_with_models(client, user, django_assert_max_num_queries):
    for n in range(40):
        scored_run_create(model=registered_model_create(display_name=f"bulk/m{n}"), values=six(n / 100))
    client.force_login(user)
    # session + user + preference + count + page + stderrs + reference rows, whatever the number of models.
    with django_assert_max_num_queries(8):
        response = client.get(reverse("leaderboard:index"), {"stderr": "1"})
    assert response.content.decode().count("bulk/m") == 40


def test_reference_rows_are_edited_in_the_admin(client):
    client.force_login(user_create(is_staff=True, is_superuser=True))
    row = ReferenceRow.objects.get(kind="baseline")
    assert client.get(reverse("admin:leaderboard_referencerow_change", args=[row.pk])).status_code == 200


def test_ranking_rows_follow_runs_through_the_finish_hook(user):
    """A run finished through the lifecycle updates the ranking; rebuild recomputes from scratch."""
    from leaderboard.models import LeaderboardEntry
    from leaderboard.ranking import leaderboard_rebuild
    from runs.executors import RunOutcome, ScoreRow
    from runs.services import run_claim, run_create, run_finish
    from tests.factories import OPENLLM_V1_SCORE_ROWS

    model = registered_model_create(display_name="x/hooked")
    scored_run_create(model=model, values=six(0.2))
    run = run_create(kind="benchmark", spec={"suite": "openllm_v1"}, model=model, enqueue=False)
    assert run_claim(run_id=run.pk, worker_host="test")
    rows = [ScoreRow(task=t, metric=m, filter=f, value=0.6, stderr=0.02) for t, m, f in OPENLLM_V1_SCORE_ROWS.values()]
    assert run_finish(run_id=run.pk, status=RunStatus.SUCCEEDED, outcome=RunOutcome(scores=rows))
    (row,) = page_for(user).rows
    assert row.run_id == run.pk and row.average == pytest.approx(0.6) and row.stderrs["gsm8k"] == 0.02

    run.delete()  # e.g. an admin removes a bad run: the rebuild falls back to the older one
    assert leaderboard_rebuild() == 1
    assert page_for(user).rows[0].average == pytest.approx(0.2)
    LeaderboardEntry.objects.all().delete()
    leaderboard_rebuild()
    assert page_for(user).rows[0].average == pytest.approx(0.2)


def test_csv_export_keeps_spreadsheet_formulas_inert(client, user):
    """A license or a name typed as "=..." reaches Excel as text; negative numbers stay numbers."""
    model = registered_model_create(display_name="=cmd|' /C calc'!A0", license="@license")
    scored_run_create(model=model, values=six(0.5))
    client.force_login(user)
    rows = list(
        csv.DictReader(io.StringIO(client.get(reverse("leaderboard:export", args=["csv"])).content.decode("utf-8-sig")))
    )
    row = next(r for r in rows if r["model_id"] == str(model.pk))
    assert row["model"] == "'=cmd|' /C calc'!A0" and row["license"] == "'@license"
    assert float(row["average"]) == pytest.approx(50.0)
