"""A partial run end to end: on a (cut-down) mirror without HellaSwag, a submitter knowingly runs the Open LLM
Leaderboard v1 suite without it; a real worker runs the other five columns with real lm-eval; the leaderboard
does not rank it, and the model page shows HellaSwag as missing. The chosen batch size reaches the reproduce
commands."""

import signal

import pytest
from django.urls import reverse

from leaderboard.models import LeaderboardEntry
from runs.choices import RunStatus
from runs.models import EvaluationRun, Score
from tests.factories import user_create
from tests.workers import WorkerProcess, queues_purge, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_without_hellaswag(settings, mini_mirror, tmp_path):
    from tests.mirror_fixtures import mirror_without

    settings.DATASET_MIRROR = mirror_without(tmp_path / "mirror", source=mini_mirror).resolve()
    queues_purge()
    process = WorkerProcess("partial-worker")
    yield process
    process.kill(signal.SIGTERM)


def test_partial_run_is_run_shown_and_never_ranked(
    client, settings, worker_without_hellaswag, tiny_model, mirror_checked
):
    mirror_checked(settings.DATASET_MIRROR, "openllm_v1")
    client.force_login(user_create())
    data = {
        "storage_path": str(tiny_model),
        "display_name": "acme/tiny-partial",
        "precision": "float32",
        "weight_type": "original",
        "model_type": "fine_tuned",
        "suite": "openllm_v1",
        "batch_size": "2",
    }
    refused = client.post(reverse("leaderboard:submit"), data)
    assert refused.status_code == 200 and "Rowan/hellaswag" in refused.content.decode()
    assert not EvaluationRun.objects.exists()

    response = client.post(reverse("leaderboard:submit"), {**data, "partial": "on"}, follow=True)
    assert response.redirect_chain, response.content.decode()[-2000:]
    assert "Partial run: HellaSwag (Rowan/hellaswag) will not be run" in response.content.decode()
    run = EvaluationRun.objects.get()
    wait_for(
        lambda: EvaluationRun.objects.get(pk=run.pk).status not in (RunStatus.QUEUED, RunStatus.RUNNING),
        900,
        "the worker to finish the partial suite",
        worker_without_hellaswag,
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, f"{run.status}: {run.error_message}\n{run.log[-3000:]}"
    assert run.is_partial

    tasks = set(Score.objects.filter(run=run).values_list("task", flat=True))
    assert {"arc_challenge", "truthfulqa_mc2", "winogrande", "gsm8k", "mmlu_plain_mean"} <= tasks
    assert "hellaswag" not in tasks
    assert Score.objects.get(run=run, task="openllm_v1_average").value is None
    assert all("--batch_size 2" in command for command in run.details["reproduce_commands"].values())

    assert not LeaderboardEntry.objects.filter(model=run.model).exists()
    table = client.get(reverse("leaderboard:index")).content.decode()
    assert "acme/tiny-partial" not in table[table.index('id="leaderboard"') :]

    page = client.get(reverse("leaderboard:model_detail", args=[run.model.pk])).content.decode()
    assert "partial run (missing: hellaswag): never ranked" in page
    hellaswag_row = page[page.index('data-column="hellaswag"') :].split("</tr>")[0]
    assert "column-missing" in hellaswag_row and "missing" in hellaswag_row
    arc_row = page[page.index('data-column="arc"') :].split("</tr>")[0]
    assert "column-missing" not in arc_row
