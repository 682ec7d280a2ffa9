"""Comparing two runs: deltas, their uncertainty and significance, flipped samples, and the compare page."""

from __future__ import annotations

import math

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from leaderboard.comparison import sample_flips, score_delta, score_deltas
from leaderboard.harness.suites import suite_get
from runs.models import Score
from tests.factories import registered_model_create, scored_run_create, user_create
from tests.leaderboard.sample_runs import raw_samples, real_runs, store_run  # noqa: F401 (fixture)


def test_score_delta_and_significance():
    delta, stderr, significant = score_delta(value_a=0.50, value_b=0.56, stderr_a=0.02, stderr_b=0.02)
    assert delta == pytest.approx(0.06) and stderr == pytest.approx(math.sqrt(0.0008))
    assert significant is True  # 0.06 > 1.96 * 0.0283 = 0.0554
    assert score_delta(value_a=0.50, value_b=0.55, stderr_a=0.02, stderr_b=0.02)[2] is False  # 0.05 < 0.0554
    assert score_delta(value_a=0.6, value_b=0.5, stderr_a=0.01, stderr_b=0.01)[0] == pytest.approx(-0.1)
    assert score_delta(value_a=0.6, value_b=0.5, stderr_a=0.01, stderr_b=0.01)[2] is True  # either direction
    assert score_delta(value_a=0.5, value_b=0.6, stderr_a=None, stderr_b=0.01) == (pytest.approx(0.1), None, None)
    assert score_delta(value_a=None, value_b=0.6, stderr_a=0.01, stderr_b=0.01) == (None, None, None)


@pytest.mark.django_db
def test_score_deltas_keep_what_both_runs_have():
    model = registered_model_create()
    a = scored_run_create(model=model, values={"arc": 0.40, "hellaswag": 0.70, "gsm8k": 0.10}, stderr=0.01)
    b = scored_run_create(model=model, values={"arc": 0.50, "hellaswag": 0.71}, stderr=0.01)
    Score.objects.create(run=b, task="only_in_b", metric="acc", value=0.9)
    columns, rows = score_deltas(
        scores_a=a.scores.all(), scores_b=b.scores.all(), columns=suite_get("openllm_v1").columns
    )
    assert [(c.label, c.task) for c in columns] == [("ARC", "arc_challenge"), ("HellaSwag", "hellaswag")]
    assert [(r.task, r.metric, r.filter) for r in rows] == [
        ("arc_challenge", "acc_norm", "none"),
        ("hellaswag", "acc_norm", "none"),
    ]
    arc, hellaswag = rows
    assert (arc.value_a, arc.value_b, arc.delta, arc.significant) == (0.40, 0.50, pytest.approx(0.10), True)
    assert hellaswag.delta == pytest.approx(0.01) and hellaswag.significant is False


@pytest.mark.django_db
def test_compare_page_shows_deltas_and_hides_other_users_private_runs(client):
    team = Group.objects.create(name="team-b")
    member, outsider = user_create(groups=(team,)), user_create()
    public = registered_model_create(display_name="org/public")
    secret = registered_model_create(display_name="team-b/secret", private=True, group=team, owner=member)
    a = scored_run_create(model=public, values={"arc": 0.40, "winogrande": 0.60}, stderr=0.01)
    b = scored_run_create(model=secret, values={"arc": 0.55, "winogrande": 0.61}, stderr=0.01)
    url = f"{reverse('leaderboard:compare')}?a={a.pk}&b={b.pk}"

    client.force_login(outsider)
    assert client.get(url).status_code == 404
    assert client.get(f"{reverse('leaderboard:compare')}?a={a.pk}").status_code == 404

    client.force_login(member)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "org/public" in html and "team-b/secret" in html
    columns = html[html.index('id="compare-columns"') : html.index('id="compare-scores"')]
    arc = columns[columns.index('data-key="arc_challenge,acc_norm,none"') :].split("</tr>")[0]
    # No samples: the stderrs decide, 15 ± 1.96·√2·1 points, and the row says which test it used.
    assert "40.00" in arc and "55.00" in arc and "+15.00" in arc and "12.23 … 17.77" in arc
    assert 'data-test="stderr-z"' in arc
    assert 'class="significant"' in arc
    wino = columns[columns.index('data-key="winogrande,acc,none"') :].split("</tr>")[0]
    assert "+1.00" in wino and "significant" not in wino
    assert "no per-sample log" in html  # factory runs have no samples


@pytest.mark.slow
@pytest.mark.django_db
def test_flipped_samples_of_two_real_runs(client, settings, real_runs):  # noqa: F811
    user = user_create()
    run_a = store_run(
        real_runs["a"], model=registered_model_create(display_name="org/tiny-a"), artifacts_dir=settings.ARTIFACTS_DIR
    )
    run_b = store_run(
        real_runs["b"], model=registered_model_create(display_name="org/tiny-b"), artifacts_dir=settings.ARTIFACTS_DIR
    )

    # Expected flips, from the raw files, judged on the suite's metric of each task.
    metric = {"arc_challenge": "acc_norm", "truthfulqa_mc2": "acc", "winogrande": "acc", "gsm8k": "exact_match"}
    outcome = {
        name: {
            (s["task"], s["filter"], s["doc_id"]): s[metric[s["task"]]] > 0.5
            for s in raw_samples(real_runs[name]["samples"])
        }
        for name in ("a", "b")
    }
    expected = {
        key: (outcome["a"][key], outcome["b"][key]) for key in outcome["a"] if outcome["a"][key] != outcome["b"][key]
    }
    assert expected, "the two tiny models should disagree on some sample"

    flips = {(f.task, f.filter): f for f in sample_flips(run_a=run_a, run_b=run_b)}
    assert set(flips) == {
        ("arc_challenge", "none"),
        ("truthfulqa_mc2", "none"),
        ("winogrande", "none"),
        ("gsm8k", "strict-match"),
        ("gsm8k", "flexible-extract"),
    }
    found = {(f.task, f.filter, doc): (True, False) for f in flips.values() for doc in f.became_incorrect}
    found |= {(f.task, f.filter, doc): (False, True) for f in flips.values() for doc in f.became_correct}
    assert found == expected
    assert flips[("truthfulqa_mc2", "none")].compared == 6

    client.force_login(user)
    html = client.get(reverse("leaderboard:compare"), {"a": run_a.pk, "b": run_b.pk}).content.decode()
    flips_html = html[html.index('id="compare-flips"') :]
    for (task, _filter, doc), _ in expected.items():
        assert f"{reverse('leaderboard:run_samples', args=[run_a.pk])}?task={task}&amp;doc={doc}" in flips_html
    # The score table: ARC acc_norm of both runs, with its delta.
    arc_a = run_a.scores.get(task="arc_challenge", metric="acc_norm")
    arc_b = run_b.scores.get(task="arc_challenge", metric="acc_norm")
    row = html[html.index('data-key="arc_challenge,acc_norm,none"') :].split("</tr>")[0]
    assert f"{arc_a.value * 100:.2f}" in row and f"{arc_b.value * 100:.2f}" in row
    assert f"{(arc_b.value - arc_a.value) * 100:.2f}" in row

    # A flip link opens that document in the sample browser.
    task, _filter, doc = next(iter(expected))
    page = client.get(reverse("leaderboard:run_samples", args=[run_a.pk]), {"task": task, "doc": doc}).content.decode()
    assert page.count('<tr class="sample') == (2 if task == "gsm8k" else 1)
    assert f'data-doc="{doc}"' in page


@pytest.mark.slow
@pytest.mark.django_db
def test_compare_folds_unflipped_tasks_and_shows_flipped_samples_side_by_side(client, settings, real_runs):  # noqa: F811
    import html as html_lib

    run_a = store_run(real_runs["a"], model=registered_model_create(), artifacts_dir=settings.ARTIFACTS_DIR)
    run_b = store_run(real_runs["b"], model=registered_model_create(), artifacts_dir=settings.ARTIFACTS_DIR)
    flips = sample_flips(run_a=run_a, run_b=run_b)
    flipped = [f for f in flips if f.flipped]
    assert flipped, "the two tiny models should disagree on some sample"
    client.force_login(user_create())
    url = reverse("leaderboard:compare")
    html = client.get(url, {"a": run_a.pk, "b": run_b.pk}).content.decode()
    shown = html[html.index('id="flips-table"') :].split("</table>")[0]
    assert all(f'data-task="{f.task}" data-filter="{f.filter}"' in shown for f in flipped)
    unflipped = [f for f in flips if not f.flipped]
    if unflipped:  # tasks with no flip are folded away, not listed with the others
        folded = html[html.index('<details class="unflipped"') :].split("</details>")[0]
        assert all(f'data-task="{f.task}" data-filter="{f.filter}"' in folded for f in unflipped)
        assert not any(f'data-task="{f.task}" data-filter="{f.filter}"' in shown for f in unflipped)

    # Side by side: each flipped document of the picked task with the prompt, both outputs and both scores.
    for flip in flipped:
        page = client.get(
            url, {"a": run_a.pk, "b": run_b.pk, "task": flip.task, "filter": flip.filter}
        ).content.decode()
        side = page[page.index('id="side-by-side"') :]
        assert f"{flip.task} ({flip.filter})" in side.split("</h2>")[0]
        raw = {
            name: {
                s["doc_id"]: s for s in raw_samples(real_runs[name]["samples"], flip.task) if s["filter"] == flip.filter
            }
            for name in ("a", "b")
        }
        for doc in flip.became_incorrect + flip.became_correct:
            pair = side[side.index(f'<article class="flip-pair" data-doc="{doc}">') :].split("</article>")[0]
            assert html_lib.escape(raw["a"][doc]["doc"].get("question", "")[:40]) in pair
            assert pair.count('<div class="flip-side ') == 2
            metric = {"arc_challenge": "acc_norm", "gsm8k": "exact_match"}.get(flip.task, "acc")
            for name in ("a", "b"):
                assert f"{metric} = {raw[name][doc][metric]:.4f}" in pair
            if flip.task == "gsm8k":
                assert html_lib.escape(raw["a"][doc]["resps"][0][0]) in pair
                assert html_lib.escape(raw["b"][doc]["resps"][0][0]) in pair
    # An unknown task falls back to the first task that flipped.
    page = client.get(url, {"a": run_a.pk, "b": run_b.pk, "task": "nope", "filter": "x"}).content.decode()
    assert f"{flipped[0].task} ({flipped[0].filter})" in page[page.index('id="side-by-side"') :].split("</h2>")[0]
