"""The model page (header, scores per suite, run history, compare form) and the per-sample browser pages."""

from __future__ import annotations

import html as html_lib
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from runs.choices import RunStatus
from tests.factories import registered_model_create, run_create_row, scored_run_create, user_create
from tests.leaderboard.sample_runs import raw_samples, real_runs, store_run  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    end = html.find("</section>", start)
    return html[start:end]


@pytest.fixture
def owner():
    return user_create(username="alice")


@pytest.fixture
def model(owner):
    return registered_model_create(
        display_name="acme/llama-7b-ko",
        storage_path="/models/acme/llama-7b-ko",
        revision="ab" * 20,
        architecture="LlamaForCausalLM",
        num_params=6_740_000_000,
        precision="bfloat16",
        model_type="fine_tuned",
        weight_type="original",
        license="llama2",
        owner=owner,
    )


def test_header_latest_scores_picker_and_history(client, owner, model):
    now = timezone.now()
    old = scored_run_create(
        model=model,
        values={"arc": 0.3012, "winogrande": 0.61},
        finished_at=now - timedelta(days=3),
        started_at=now - timedelta(days=3, minutes=5),
        queued_at=now - timedelta(days=3, hours=1),
    )
    new = scored_run_create(
        model=model,
        values={"arc": 0.4567, "winogrande": 0.62},
        finished_at=now - timedelta(hours=1),
        started_at=now - timedelta(hours=1, minutes=2, seconds=3),
        queued_at=now - timedelta(hours=2),
    )
    smoke = scored_run_create(
        model=model, values={"arc": 0.9999}, is_partial=True, finished_at=now, queued_at=now - timedelta(minutes=30)
    )
    failed = run_create_row(
        model=model, status=RunStatus.FAILED, queued_at=now - timedelta(days=1), error_message="out of memory"
    )
    queued = run_create_row(model=model, status=RunStatus.QUEUED, queued_at=now)
    client.force_login(owner)

    html = client.get(reverse("leaderboard:model_detail", args=[model.pk])).content.decode()
    header = _section(html, "model-header")
    for text in (
        "acme/llama-7b-ko",
        "/models/acme/llama-7b-ko",
        "ab" * 20,
        "LlamaForCausalLM",
        "6.74",
        "bfloat16",
        "fine-tuned on domain data",
        "Original",
        "llama2",
        "alice",
    ):
        assert text in html_lib.unescape(header), text
    scores = _section(html, "model-scores")
    # The newest FULL succeeded run of the suite is shown, not the older one nor the newer smoke run.
    assert "45.67" in scores and "30.12" not in scores and "99.99" not in scores
    assert f'href="{reverse("runs:detail", args=[new.pk])}"' in scores
    assert '<tr data-column="arc"><td>ARC</td><td>arc_challenge</td><td>acc_norm</td><td>none</td>' in scores

    # The picker shows any succeeded run instead of the latest of its suite.
    picked = client.get(reverse("leaderboard:model_detail", args=[model.pk]), {"run": old.pk}).content.decode()
    scores = _section(picked, "model-scores")
    assert "30.12" in scores and "45.67" not in scores
    assert f'<option value="{old.pk}" selected>' in scores

    history = _section(html, "run-history")
    for run in (old, new, smoke, failed, queued):
        assert f'href="{reverse("runs:detail", args=[run.pk])}">#{run.pk}</a>' in history
    assert history.index(f"#{queued.pk}<") < history.index(f"#{new.pk}<") < history.index(f"#{old.pk}<")
    assert "status-failed" in history and "status-queued" in history
    assert "2m 03s" in history  # the newest run's duration
    new_row = history[history.index(f'data-run="{smoke.pk}"') :].split("</tr>")[0]
    assert ">yes<" in new_row  # the smoke run is marked partial

    compare = _section(html, "compare-form")
    assert f'action="{reverse("leaderboard:compare")}"' in compare
    assert f'<option value="{new.pk}" selected>' in compare  # run A: the shown run


def test_compare_form_offers_visible_runs_of_other_models(client, owner, model):
    team = Group.objects.create(name="team-c")
    scored_run_create(model=model, values={"arc": 0.4})
    other = registered_model_create(display_name="org/other-public")
    other_run = scored_run_create(model=other, values={"arc": 0.5})
    secret = registered_model_create(display_name="team-c/secret", private=True, group=team)
    secret_run = scored_run_create(model=secret, values={"arc": 0.6})
    client.force_login(owner)
    compare = _section(
        client.get(reverse("leaderboard:model_detail", args=[model.pk])).content.decode(), "compare-form"
    )
    assert f'value="{other_run.pk}"' in compare and "org/other-public" in compare
    assert f'value="{secret_run.pk}"' not in compare and "team-c/secret" not in compare


def test_private_model_is_a_404_for_other_users(client):
    team = Group.objects.create(name="team-d")
    member, outsider, staff = user_create(groups=(team,)), user_create(), user_create(is_staff=True)
    secret = registered_model_create(display_name="team-d/secret", private=True, group=team)
    run = scored_run_create(model=secret, values={"arc": 0.5})
    url = reverse("leaderboard:model_detail", args=[secret.pk])
    samples_url = reverse("leaderboard:run_samples", args=[run.pk])
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    assert client.get(samples_url).status_code == 404
    assert client.get(reverse("leaderboard:model_detail", args=[999999])).status_code == 404
    for user in (member, staff):
        client.force_login(user)
        assert client.get(url).status_code == 200
        response = client.get(samples_url)
        assert response.status_code == 200 and "no per-sample log" in response.content.decode()
    client.logout()
    assert client.get(url).status_code == 302  # login required


def test_query_count_does_not_grow_with_runs(client, owner, model, django_assert_max_num_queries):
    client.force_login(owner)
    scored_run_create(model=model, values={"arc": 0.4, "hellaswag": 0.5})
    url = reverse("leaderboard:model_detail", args=[model.pk])
    with django_assert_max_num_queries(8):
        assert client.get(url).status_code == 200
    now = timezone.now()
    for n in range(15):
        scored_run_create(model=model, values={"arc": 0.4, "mmlu": 0.3}, finished_at=now - timedelta(hours=n))
        run_create_row(model=model, status=RunStatus.FAILED)
        scored_run_create(model=registered_model_create(), values={"arc": 0.2})
    with django_assert_max_num_queries(8):
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count('<tr data-run="') == 31


def test_leaderboard_and_run_page_link_to_the_model_page(client, owner, model):
    run = scored_run_create(
        model=model, values={key: 0.5 for key in ("arc", "hellaswag", "mmlu", "truthfulqa", "winogrande", "gsm8k")}
    )
    client.force_login(owner)
    link = f'href="{reverse("leaderboard:model_detail", args=[model.pk])}"'
    assert link in client.get(reverse("leaderboard:index")).content.decode()
    assert link in client.get(reverse("runs:detail", args=[run.pk])).content.decode()


# --- with a real run -----------------------------------------------------------------------------------


@pytest.fixture
def real_run(real_runs, settings, owner, model):  # noqa: F811 (fixture)
    return store_run(real_runs["a"], model=model, artifacts_dir=settings.ARTIFACTS_DIR)


@pytest.mark.slow
def test_model_page_of_a_real_run(client, owner, model, real_run):
    client.force_login(owner)
    html = client.get(reverse("leaderboard:model_detail", args=[model.pk])).content.decode()
    scores = _section(html, "model-scores")
    assert "Page check" in scores
    for label, task in (("ARC", "arc_challenge"), ("TruthfulQA", "truthfulqa_mc2"), ("GSM8K", "gsm8k")):
        row = scores[scores.index(f'<tr data-column="{label.lower()}">') :].split("</tr>")[0]
        assert task in row
    arc = real_run.scores.get(task="arc_challenge", metric="acc_norm")
    arc_row = scores[scores.index('<tr data-column="arc">') :].split("</tr>")[0]
    assert f"{arc.value * 100:.2f}" in arc_row and f"{arc.stderr * 100:.2f}" in arc_row
    # Every Score row, with its reproduce command (a copy button) and the task's config.
    rows = scores[scores.index('class="data score-rows"') :]
    assert rows.count("<tr class=") == real_run.scores.count()
    for task, command in real_run.details["reproduce_commands"].items():
        assert task in command
        assert f'data-copy="{html_lib.escape(command)}"' in rows
    gsm8k = rows[rows.index('data-task="gsm8k"') :]
    assert (
        "strict-match" in gsm8k
        and "flexible-extract" in gsm8k
        and "&quot;output_type&quot;: &quot;generate_until&quot;" in gsm8k
    )
    samples_link = f"{reverse('leaderboard:run_samples', args=[real_run.pk])}?task=arc_challenge"
    assert samples_link in rows


@pytest.mark.slow
def test_sample_browser_pages(client, owner, real_run, real_runs):  # noqa: F811
    client.force_login(owner)
    url = reverse("leaderboard:run_samples", args=[real_run.pk])
    raw = raw_samples(real_runs["a"]["samples"], "arc_challenge")
    correct = sum(s["acc_norm"] > 0.5 for s in raw)

    page = client.get(url, {"task": "arc_challenge"}).content.decode()
    assert "<html" in page and 'hx-get="' + url + '"' in page and 'hx-push-url="true"' in page
    assert 'hx-target="#samples"' in page
    assert f'<span class="sample-correct" data-count="correct">{correct} correct</span>' in page
    assert f'data-count="incorrect">{len(raw) - correct} incorrect</span>' in page
    for sample in raw:
        assert html_lib.escape(sample["doc"]["question"]) in page
        for choice in sample["doc"]["choices"]["text"]:
            assert html_lib.escape(choice) in page
    assert page.count('<tr class="sample') == len(raw)

    # A filter change asks htmx for the partial only.
    partial = client.get(
        url, {"task": "arc_challenge", "correct": "no"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "<html" not in partial and 'id="samples-filters"' in partial
    assert partial.count('<tr class="sample is-incorrect"') == len(raw) - correct
    assert "is-correct" not in partial
    # History restore after a cache miss wants the whole page.
    restored = client.get(
        url, {"task": "arc_challenge"}, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restored.content.decode()

    # Generation: the target and the model's (filtered) answer; pages link to each other.
    gsm8k = client.get(url, {"task": "gsm8k", "filter": "strict-match", "per_page": 2}).content.decode()
    assert "Page 1 of 2" in gsm8k
    strict = [s for s in raw_samples(real_runs["a"]["samples"], "gsm8k") if s["filter"] == "strict-match"]
    for sample in strict[:2]:
        assert html_lib.escape(sample["resps"][0][0]) in gsm8k
        assert f'<strong class="model-choice">{html_lib.escape(sample["filtered_resps"][0])}</strong>' in gsm8k
    assert f'href="{url}?task=gsm8k&amp;filter=strict-match&amp;per_page=2&amp;page=2"' in gsm8k
    assert "####" in gsm8k  # the target's final answer line
    assert gsm8k.count('<tr class="sample') == 2
