"""Issue #11, the leaderboard's page bullets: the sort kept by the filter form, the "T" type column and its
legend, rows per page, "Model sha", unknown @prefixes named, the favicon, and the stderr of plain means
(MMLU over its subjects, the Average over the columns) checked against numbers worked out by hand."""

from __future__ import annotations

import html as html_lib
import math
import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from leaderboard.harness.suites import mean_stderr, suite_column_stderrs, suite_get
from leaderboard.models import LeaderboardEntry
from leaderboard.table import search_parse, search_unknown_prefixes
from runs.models import Score
from tests.factories import registered_model_create, scored_run_create, user_create

pytestmark = pytest.mark.django_db

ALL_SIX = ("arc", "hellaswag", "mmlu", "truthfulqa", "winogrande", "gsm8k")


def six(value: float, **overrides) -> dict[str, float]:
    return {key: overrides.get(key, value) for key in ALL_SIX}


@pytest.fixture
def user(client):
    user = user_create()
    client.force_login(user)
    return user


def _rows(html: str) -> dict[str, str]:
    """Model name -> its <tr> in the leaderboard table."""
    rows = {}
    for row in re.findall(r'<tr data-model-id="\d+">(.*?)</tr>', html, re.S):
        name = re.search(r'class="model-link"[^>]*>([^<]+)<', row).group(1)
        rows[html_lib.unescape(name)] = row
    return rows


# --- the sort survives a filter or a search -------------------------------------------------------


def test_the_sort_field_travels_with_the_table(client, user):
    """The filter form's sort is a hidden field inside the swapped table (form="lb-filters"): after a header
    click the swapped-in table carries the new sort, so the form sends it with the next filter."""
    scored_run_create(model=registered_model_create(display_name="a/model"), values=six(0.5))
    page = client.get(reverse("leaderboard:index"), {"sort": "arc"}).content.decode()
    partial = client.get(
        reverse("leaderboard:index"), {"sort": "-winogrande", "q": "model"}, headers={"HX-Request": "true"}
    ).content.decode()
    for html, sort in ((page, "arc"), (partial, "-winogrande")):
        fields = re.findall(r'<input type="hidden" name="sort"[^>]*>', html)
        assert fields == [f'<input type="hidden" name="sort" id="lb-sort" form="lb-filters" value="{sort}">'], fields
    # The form itself holds no sort of its own any more (that one went stale after a header click).
    form = page[page.index('<form id="lb-filters"') : page.index("</form>", page.index('<form id="lb-filters"'))]
    assert 'name="sort"' not in form
    assert "{#" not in page and "{% comment" not in page  # no template comment leaks into the page
    # The exports follow the view too: the partial replaces them out of band.
    assert 'id="lb-export" hx-swap-oob="true"' in partial
    assert "sort=-winogrande" in partial[partial.index('id="lb-export"') :]
    # So does the column picker: saving comes back to the view as it is now (its shared "cols" left out,
    # or they would hide the columns just saved).
    assert (
        '<form method="post" id="lb-columns-form" action="/columns/?suite=openllm_v1&amp;q=model&amp;sort=-winogrande" '
        'hx-swap-oob="true">' in partial
    )
    shared = client.get(reverse("leaderboard:index"), {"sort": "arc", "cols": ["model", "arc"]}).content.decode()
    assert 'action="/columns/?suite=openllm_v1&amp;sort=arc">' in shared


# --- T column, legend, rows per page, Model sha -----------------------------------------------------


def test_type_symbol_column_and_legend(client, user):
    models = {
        "p/pretrained": registered_model_create(display_name="p/pretrained", model_type="pretrained"),
        "p/chat": registered_model_create(display_name="p/chat", model_type="chat"),
        "p/tuned": registered_model_create(display_name="p/tuned", model_type="fine_tuned"),
        "p/merge": registered_model_create(display_name="p/merge", model_type="fine_tuned", merged=True),
    }
    for model in models.values():
        scored_run_create(model=model, values=six(0.5))
    html = client.get(reverse("leaderboard:index"), {"show_merged": "1"}).content.decode()
    assert '<th class="" data-column="type_symbol"' in html
    rows = _rows(html)
    for name, symbol in (("p/pretrained", "🟢"), ("p/chat", "💬"), ("p/tuned", "🔶"), ("p/merge", "🤝")):
        assert f">{symbol}</td>" in rows[name], name
    assert 'title="chat models (RLHF, DPO, IFT, ...)">💬' in rows["p/chat"]
    legend = html[html.index('id="lb-type-legend"') :].split("</p>")[0]
    for text in (
        "🟢 pretrained",
        "🟩 continuously pretrained",
        "🔶 fine-tuned on domain data",
        "💬 chat models",
        "🟦 RL-tuned",
        "🤝 merge",
    ):
        assert text in html_lib.unescape(legend), text
    # Sorting by T sorts by type.
    by_type = client.get(reverse("leaderboard:index"), {"sort": "type_symbol"}).content.decode()
    assert list(_rows(by_type)) == ["p/chat", "p/tuned", "p/pretrained"]


def test_rows_per_page_control_takes_only_its_choices(client, user):
    for n in range(60):
        scored_run_create(model=registered_model_create(display_name=f"bulk/m{n:02d}"), values=six(n / 100))
    html = client.get(reverse("leaderboard:index"), {"per_page": "50"}).content.decode()
    assert len(_rows(html)) == 50 and "page 1 of 2" in html
    assert '<option value="50" selected>' in html
    assert re.search(r'<select name="per_page" id="lb-per-page">', html)
    # Anything else falls back to the default (100): every row on one page, never an error.
    for wrong in ("7", "0", "-50", "100000", "abc", "1e3"):
        response = client.get(reverse("leaderboard:index"), {"per_page": wrong})
        assert response.status_code == 200
        assert len(_rows(response.content.decode())) == 60, wrong
    # The links of the table keep the chosen size.
    assert "per_page=50" in html[html.index('class="pager"') :]


def test_revision_column_is_called_model_sha(client, user):
    model = registered_model_create(display_name="r/model", revision="c0ffee" * 6)
    scored_run_create(model=model, values=six(0.5))
    html = client.get(reverse("leaderboard:index")).content.decode()
    header = html[html.index('data-column="revision"') :].split("</th>")[0]
    assert "Model sha" in header and "Revision" not in header
    page = client.get(reverse("leaderboard:model_detail", args=[model.pk])).content.decode()
    assert "<dt>Model sha</dt>" in page


# --- unknown @prefixes --------------------------------------------------------------------------------


def test_unknown_search_prefix_is_named_and_left_out(client, user):
    scored_run_create(model=registered_model_create(display_name="acme/llama-7b"), values=six(0.5))
    scored_run_create(model=registered_model_create(display_name="acme/mistral-7b"), values=six(0.6))
    assert search_unknown_prefixes("llama @arch:mistral; @Licence:mit @type:chat") == ["arch", "licence"]
    assert search_unknown_prefixes("@architecture:llama @precision:bfloat16 a@b:c") == []
    assert search_unknown_prefixes("llama;@foo:x") == ["foo"]  # right after a ";" too (search_parse drops it there)
    assert [term.words for term in search_parse("llama;@foo:x")] == [("llama",)]
    assert search_parse("llama @arch:mistral")[0].words == ("llama",)

    html = client.get(reverse("leaderboard:index"), {"q": "llama @arch:mistral"}).content.decode()
    problem = html_lib.unescape(html[html.index('id="lb-search-problem"') :].split("</p>")[0])
    assert "Unknown search prefix @arch:" in problem
    assert "@architecture:, @license:, @precision:, @type:" in problem
    assert list(_rows(html)) == ["acme/llama-7b"]  # the rest of the search still applies
    # Known prefixes say nothing.
    quiet = client.get(reverse("leaderboard:index"), {"q": "@architecture:llama"}).content.decode()
    assert "lb-search-problem" not in quiet
    # The htmx partial (typing in the box) says it too.
    partial = client.get(reverse("leaderboard:index"), {"q": "@foo:x"}, headers={"HX-Request": "true"}).content.decode()
    assert "Unknown search prefix @foo:" in html_lib.unescape(partial)


# --- favicon ----------------------------------------------------------------------------------------------


def test_favicon_is_served_and_linked(client):
    response = client.get("/favicon.ico")  # anonymous, as browsers ask before logging in
    assert response.status_code == 302
    assert response["Location"].endswith("img/favicon.ico")
    for name in ("img/favicon.ico", "img/favicon.svg"):
        found = finders.find(name)
        assert found, name
    with open(finders.find("img/favicon.ico"), "rb") as handle:
        assert handle.read(4) == b"\x00\x00\x01\x00"  # an ICO header
    login = client.get(reverse("login")).content.decode()
    assert '<link rel="icon" href="/static/img/favicon.ico"' in login


# --- stderr of plain means ------------------------------------------------------------------------------


def test_mean_stderr_matches_numbers_worked_by_hand():
    # k=2: sqrt(0.03^2 + 0.04^2) / 2 = sqrt(0.0009 + 0.0016) / 2 = 0.05 / 2 = 0.025
    assert mean_stderr([0.03, 0.04]) == pytest.approx(0.025, abs=1e-15)
    # k=4, all 0.02: sqrt(4 * 0.0004) / 4 = 0.04 / 4 = 0.01 (= 0.02 / sqrt(4))
    assert mean_stderr([0.02] * 4) == pytest.approx(0.01, abs=1e-15)
    # k=3: sqrt(0.01^2 + 0.02^2 + 0.02^2) = sqrt(0.0009) = 0.03; / 3 = 0.01
    assert mean_stderr([0.01, 0.02, 0.02]) == pytest.approx(0.01, abs=1e-15)
    # One estimate: its own.
    assert mean_stderr([0.0123]) == pytest.approx(0.0123, abs=1e-15)
    # A missing stderr: none (a partial sum would understate it); no estimates: none.
    assert mean_stderr([0.01, None]) is None
    assert mean_stderr([]) is None


def _row(task, metric, value, stderr, filter="none"):
    from runs.executors import ScoreRow

    return ScoreRow(task=task, metric=metric, value=value, filter=filter, stderr=stderr)


def test_suite_rows_store_the_plain_mean_and_average_stderrs():
    """What a worker stores: the MMLU plain-mean row and the suite-average row get their stderrs."""
    from leaderboard.harness.results import _suite_rows
    from leaderboard.harness.suites import suite_average, suite_column_values

    suite = suite_get("openllm_v1")
    # Three "subjects" stand in for MMLU's 57: stderrs 0.03, 0.04, 0.12 -> sqrt(0.0009+0.0016+0.0144)/3
    # = sqrt(0.0169)/3 = 0.13/3.
    leaf_tasks = {"mmlu": ["mmlu_a", "mmlu_b", "mmlu_c"]}
    rows = [
        _row("mmlu_a", "acc", 0.5, 0.03),
        _row("mmlu_b", "acc", 0.6, 0.04),
        _row("mmlu_c", "acc", 0.7, 0.12),
        _row("arc_challenge", "acc_norm", 0.4, 0.01),
        _row("hellaswag", "acc_norm", 0.5, 0.02),
        _row("truthfulqa_mc2", "acc", 0.45, 0.02),
        _row("winogrande", "acc", 0.6, 0.01),
        _row("gsm8k", "exact_match", 0.1, 0.04, filter="strict-match"),
    ]
    values = suite_column_values(suite, rows, leaf_tasks)
    extra = {r.task: r for r in _suite_rows(suite, rows, leaf_tasks, values, suite_average(values))}
    mmlu_se = 0.13 / 3
    assert extra["mmlu_plain_mean"].stderr == pytest.approx(mmlu_se, rel=1e-12)
    # Average of six columns: sqrt(0.01^2 + 0.02^2 + mmlu_se^2 + 0.02^2 + 0.01^2 + 0.04^2) / 6
    by_hand = math.sqrt(0.0001 + 0.0004 + mmlu_se**2 + 0.0004 + 0.0001 + 0.0016) / 6
    assert extra["openllm_v1_average"].stderr == pytest.approx(by_hand, rel=1e-12)
    # On paper: 0.0001 + 0.0004 + 0.0004 + 0.0001 + 0.0016 = 0.0026; mmlu_se^2 = 0.0433333^2 = 0.0018778;
    # sqrt(0.0044778) = 0.0669163; / 6 = 0.0111527.
    assert by_hand == pytest.approx(0.0111527, abs=1e-7)
    # A subject without stderr: the plain mean has none, and so has the Average.
    rows[0] = _row("mmlu_a", "acc", 0.5, None)
    extra = {r.task: r for r in _suite_rows(suite, rows, leaf_tasks, values, suite_average(values))}
    assert extra["mmlu_plain_mean"].stderr is None and extra["openllm_v1_average"].stderr is None


def test_leaderboard_average_stderr_from_the_columns(client, user):
    model = registered_model_create(display_name="se/model")
    # Six columns each ± 0.01 -> sqrt(6 * 0.0001) / 6 = 0.01 / sqrt(6) = 0.00408248...
    scored_run_create(model=model, values=six(0.5), stderr=0.01)
    entry = LeaderboardEntry.objects.get(model=model)
    assert entry.average_stderr == pytest.approx(0.01 / math.sqrt(6), rel=1e-12)
    html = client.get(reverse("leaderboard:index"), {"stderr": "1"}).content.decode()
    average = _rows(html)["se/model"].split('class="num strong"')[1].split("</td>")[0]
    assert 'title="± 0.41"' in average and "± 0.41</span>" in average  # 0.408 %
    plain = client.get(reverse("leaderboard:index")).content.decode()
    assert "± 0.41</span>" not in plain  # only with the stderr toggle; the tooltip always
    export = client.get(reverse("leaderboard:export", args=["json"])).json()
    assert export["rows"][0]["average_stderr"] == pytest.approx(0.4082, abs=1e-4)


def test_old_runs_get_the_plain_mean_stderr_from_their_subjects(client, user):
    """A run stored before plain means had a stderr: the ranking and the model page compute it from the
    subjects' rows (the run's leaf tasks), so its Average has one too."""
    model = registered_model_create(display_name="old/model")
    run = scored_run_create(model=model, values=six(0.5), stderr=0.02)
    Score.objects.filter(run=run, task="mmlu_plain_mean").update(stderr=None)
    run.details = {"leaf_tasks": {"mmlu": ["mmlu_x", "mmlu_y"]}}
    run.save(update_fields=["details"])
    Score.objects.bulk_create(
        [
            Score(run=run, task="mmlu_x", metric="acc", filter="none", value=0.4, stderr=0.06),
            Score(run=run, task="mmlu_y", metric="acc", filter="none", value=0.6, stderr=0.08),
        ]
    )
    from leaderboard.ranking import leaderboard_entry_refresh

    entry = leaderboard_entry_refresh(model_id=model.pk, suite_name="openllm_v1")
    # MMLU: sqrt(0.06^2 + 0.08^2) / 2 = 0.1 / 2 = 0.05.
    assert entry.stderrs["mmlu"] == pytest.approx(0.05, rel=1e-12)
    # Average: sqrt(5 * 0.02^2 + 0.05^2) / 6 = sqrt(0.002 + 0.0025) / 6 = sqrt(0.0045) / 6
    assert entry.average_stderr == pytest.approx(math.sqrt(0.0045) / 6, rel=1e-12)
    assert suite_column_stderrs(
        suite_get("openllm_v1").columns, Score.objects.filter(run=run), run.details["leaf_tasks"]
    )["mmlu"] == pytest.approx(0.05)
    page = client.get(reverse("leaderboard:model_detail", args=[model.pk])).content.decode()
    mmlu = page[page.index('<tr data-column="mmlu">') :].split("</tr>")[0]
    assert '<td class="num">5.00</td>' in mmlu
    average = page[page.index('<tr class="average-row">') :].split("</tr>")[0] if 'class="average-row"' in page else ""
    # The factory stores no average row; when a worker's run has one, its stderr shows (see the model page tests).
    assert average == "" or "1.12" in average


def test_about_documents_the_mean_stderr(client, user):
    html = html_lib.unescape(client.get(reverse("leaderboard:about")).content.decode())
    item = html[html.index('id="about-mean-stderr"') :].split("</li>")[0]
    assert "√(se₁² + … + seₖ²) / k" in item and "MMLU" in item and "Average" in item
