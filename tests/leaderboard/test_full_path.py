"""The whole path: submit through the site, a real worker takes the run from the broker, lm-eval
scores the tiny model on the (cut-down) mirror, and the leaderboard row shows the scores."""

import re

import pytest
from django.urls import reverse

from runs.choices import RunStatus
from runs.models import EvaluationRun, Score
from tests.factories import user_create
from tests.workers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SIX_COLUMNS = ("arc_challenge", "hellaswag", "truthfulqa_mc2", "winogrande", "gsm8k")


def test_submit_run_and_rank(client, suite_worker, tiny_model):
    user = user_create()
    client.force_login(user)
    response = client.post(
        reverse("leaderboard:submit"),
        {
            "storage_path": str(tiny_model),
            "display_name": "acme/tiny-llama-e2e",
            "precision": "float32",
            "weight_type": "original",
            "model_type": "fine_tuned",
            "suite": "openllm_v1",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    run = EvaluationRun.objects.get()
    assert response["Location"] == reverse("runs:detail", args=[run.pk])
    assert not run.is_partial

    wait_for(
        lambda: EvaluationRun.objects.get(pk=run.pk).status not in (RunStatus.QUEUED, RunStatus.RUNNING),
        900,
        "the worker to finish the suite",
        suite_worker,
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, f"{run.status}: {run.error_message}\n{run.log[-3000:]}"
    assert run.library_versions["lm_eval"] == "0.4.13"
    assert run.samples_path

    stored = {(s.task, s.metric, s.filter): s for s in Score.objects.filter(run=run)}
    for task in SIX_COLUMNS:
        assert any(key[0] == task for key in stored), f"no score for {task}"
    assert ("gsm8k", "exact_match", "strict-match") in stored
    assert stored[("arc_challenge", "acc_norm", "none")].n_shot == 25
    assert stored[("arc_challenge", "acc_norm", "none")].stderr is not None
    assert (
        sum(
            1
            for task, metric, _ in stored
            if task.startswith("mmlu_") and metric == "acc" and task != "mmlu_plain_mean"
        )
        >= 57
    )

    html = client.get(reverse("leaderboard:index")).content.decode()
    table = html[html.index('id="leaderboard"') :]
    assert "acme/tiny-llama-e2e" in table
    row = table[table.index("acme/tiny-llama-e2e") :].split("</tr>")[0]
    assert len(re.findall(r'<td class="num[^"]*"[^>]*>\d+\.\d\d', row)) >= 7, row  # average + six columns

    # Submitting the same revision, suite and settings again does not queue a second run.
    again = client.post(
        reverse("leaderboard:submit"),
        {
            "storage_path": str(tiny_model),
            "display_name": "acme/tiny-llama-e2e",
            "precision": "float32",
            "weight_type": "original",
            "model_type": "fine_tuned",
            "suite": "openllm_v1",
        },
        follow=True,
    )
    assert EvaluationRun.objects.count() == 1
    assert "An identical run" in again.content.decode()
