"""The dataset mirror is checked before anything is queued: a suite it cannot serve is refused with a message
naming what is missing, or run knowingly as a partial run; the check belongs to the mirror folder it was made
for and is redone when the mirror changes. Also the submitter's batch size."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse

from leaderboard.harness.suites import suite_get
from leaderboard.mirror_reports import (
    Served,
    SuiteNotServed,
    mirror_checks_due,
    mirror_key,
    suite_availability,
)
from leaderboard.models import MirrorCheck
from leaderboard.services import benchmark_submit, model_register
from runs.models import EvaluationRun
from tests.factories import user_create
from tests.mirror_fixtures import write_synthetic_hellaswag

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client):
    user = user_create()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture(autouse=True)
def _fresh_refresh_requests():
    cache.clear()  # a refresh request is remembered per process for minutes
    yield
    cache.clear()


def _post(client, tiny_model, **fields):
    data = {
        "storage_path": str(tiny_model),
        "precision": "float32",
        "weight_type": "original",
        "model_type": "pretrained",
        "suite": "openllm_v1",
        "batch_size": "auto",
        **fields,
    }
    return client.post(reverse("leaderboard:submit"), data)


def test_form_refuses_a_suite_the_mirror_cannot_serve_naming_the_missing_dataset(
    logged_in, tiny_model, mirror_lacking_hellaswag, mirror_checked
):
    mirror_checked(mirror_lacking_hellaswag)
    response = _post(logged_in, tiny_model)
    html = response.content.decode()
    assert response.status_code == 200
    assert "cannot serve every column of Open LLM Leaderboard v1" in html
    assert "HellaSwag" in html and "Rowan/hellaswag" in html
    assert not EvaluationRun.objects.exists()


def test_submit_page_lists_what_the_mirror_serves(logged_in, mirror_lacking_hellaswag, mirror_checked):
    mirror_checked(mirror_lacking_hellaswag)
    html = logged_in.get(reverse("leaderboard:submit")).content.decode()
    listing = html[html.index('id="suite-availability"') :]
    assert 'data-suite="openllm_v1" data-served="partial"' in listing
    assert 'data-suite="kobest" data-served="served"' in listing
    assert "HellaSwag: missing from the mirror" in listing
    # The default suite is not served fully, so the form starts on one that is.
    assert '<option value="kobest" selected>' in html
    assert "Open LLM Leaderboard v1 (missing: HellaSwag)" in html


def test_partial_run_leaves_the_missing_columns_out(logged_in, tiny_model, mirror_lacking_hellaswag, mirror_checked):
    mirror_checked(mirror_lacking_hellaswag)
    response = _post(logged_in, tiny_model, partial="on", batch_size="3")
    assert response.status_code == 302, response.content.decode()[-3000:]
    run = EvaluationRun.objects.get()
    assert run.is_partial
    assert run.spec["missing_columns"] == ["hellaswag"]
    assert "hellaswag" not in {task["task"] for task in run.spec["tasks"]}
    assert {"arc_challenge", "mmlu", "gsm8k"} <= {task["task"] for task in run.spec["tasks"]}
    assert [column["key"] for column in run.spec["columns"]][:2] == ["arc", "hellaswag"]  # still shown, as missing
    assert run.spec["batch_size"] == 3


def test_a_fully_served_suite_is_a_full_run_even_with_partial_ticked(
    logged_in, tiny_model, mirror_lacking_hellaswag, mirror_checked
):
    mirror_checked(mirror_lacking_hellaswag)
    assert _post(logged_in, tiny_model, suite="kobest", partial="on").status_code == 302
    run = EvaluationRun.objects.get()
    assert not run.is_partial and "missing_columns" not in run.spec


def test_the_service_refuses_too(tiny_model, mirror_lacking_hellaswag, mirror_checked):
    """The path a JSON API would take: benchmark_submit checks the mirror itself."""
    mirror_checked(mirror_lacking_hellaswag)
    model = model_register(storage_path=str(tiny_model), precision="float32")
    with pytest.raises(SuiteNotServed, match="Rowan/hellaswag"):
        benchmark_submit(model=model, suite_name="openllm_v1", enqueue=False)
    assert not EvaluationRun.objects.exists()
    run = benchmark_submit(model=model, suite_name="openllm_v1", enqueue=False, partial=True).run
    assert run.is_partial and run.spec["missing_columns"] == ["hellaswag"]


def test_a_suite_with_no_data_at_all_is_refused_even_as_partial(
    logged_in, tiny_model, settings, tmp_path, mirror_checked
):
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    settings.DATASET_MIRROR = empty.resolve()
    mirror_checked(empty, "kobest")
    html = _post(logged_in, tiny_model, suite="kobest", partial="on").content.decode()
    assert "has none of the data KoBEST (Korean) needs" in html and "skt/kobest_v1" in html
    assert not EvaluationRun.objects.exists()


def test_a_changed_mirror_is_rechecked_at_once_and_a_full_check_is_asked_for(mirror_lacking_hellaswag, mirror_checked):
    suite = suite_get("openllm_v1")
    mirror_checked(mirror_lacking_hellaswag, "openllm_v1")
    before = suite_availability(suite=suite)
    assert before.state == Served.PARTLY and before.missing_keys == ["hellaswag"]
    assert not before.changed_since_check
    assert mirror_checks_due(suites=[suite]) == []

    write_synthetic_hellaswag(mirror_lacking_hellaswag / "Rowan" / "hellaswag")
    after = suite_availability(suite=suite)
    assert after.state == Served.FULLY and after.changed_since_check
    assert cache.get(f"mirror-refresh:{mirror_key()}:openllm_v1")  # a worker was asked for a full check
    assert mirror_checks_due(suites=[suite]) == [suite]  # and the periodic check redoes it

    mirror_checked(mirror_lacking_hellaswag, "openllm_v1")
    fresh = suite_availability(suite=suite)
    assert fresh.state == Served.FULLY and not fresh.changed_since_check


def test_a_removed_dataset_is_noticed_before_queueing(logged_in, tiny_model, settings, tmp_path, mirror_checked):
    from tests.mirror_fixtures import mirror_without

    mirror = mirror_without(tmp_path / "m", source=settings.DATASET_MIRROR, drop=()).resolve()
    settings.DATASET_MIRROR = mirror
    mirror_checked(mirror, "kobest")
    assert suite_availability(suite=suite_get("kobest")).state == Served.FULLY
    (mirror / "skt" / "kobest_v1").unlink()  # the folder goes away after the check
    html = _post(logged_in, tiny_model, suite="kobest").content.decode()
    assert "skt/kobest_v1" in html and not EvaluationRun.objects.exists()


def test_a_check_of_another_folder_is_not_this_mirrors(logged_in, settings, tmp_path, mirror_lacking_hellaswag):
    other = tmp_path / "other-mirror"
    other.mkdir()
    (other / "skt").mkdir()
    (other / "skt" / "kobest_v1").symlink_to(mirror_lacking_hellaswag / "skt" / "kobest_v1")
    call_command("mirror_verify", "--suite", "kobest", "--mirror", str(other))
    assert MirrorCheck.objects.get().mirror_dir == str(other.resolve())

    assert suite_availability(suite=suite_get("kobest")).state == Served.UNCHECKED
    html = logged_in.get(reverse("leaderboard:about")).content.decode()
    section = html[html.index('id="mirror-kobest"') :]
    assert 'data-served="unchecked"' in section.split("</div>")[0]
    assert "Checks saved for other folders" in html and str(other.resolve()) in html


def test_a_check_made_for_an_edited_suite_is_not_used(mirror_lacking_hellaswag, mirror_checked):
    suite = suite_get("kobest")
    mirror_checked(mirror_lacking_hellaswag, "kobest")
    MirrorCheck.objects.update(suite_digest="0" * 64)
    assert suite_availability(suite=suite).state == Served.UNCHECKED
    assert mirror_checks_due(suites=[suite]) == [suite]


def test_unchecked_mirror_queues_with_a_warning(logged_in, tiny_model, settings, tmp_path):
    settings.DATASET_MIRROR = tmp_path.resolve()
    response = _post(logged_in, tiny_model, suite="kobest")
    assert response.status_code == 302
    page = logged_in.get(response["Location"]).content.decode()
    assert "has not been checked for this suite yet" in page


def test_about_shows_which_suites_are_served(logged_in, mirror_lacking_hellaswag, mirror_checked):
    mirror_checked(mirror_lacking_hellaswag)
    html = logged_in.get(reverse("leaderboard:about")).content.decode()
    assert 'data-suite="openllm_v1" data-served="partial"' in html
    assert 'data-suite="kobest" data-served="served"' in html
    assert "Not checked yet" not in html


@pytest.mark.parametrize(
    ("value", "stored"), [("auto", "auto"), ("", "auto"), ("AUTO", "auto"), ("16", 16), ("1", 1), ("512", 512)]
)
def test_batch_size_accepted(logged_in, tiny_model, mirror_lacking_hellaswag, mirror_checked, value, stored):
    mirror_checked(mirror_lacking_hellaswag, "kobest")
    assert _post(logged_in, tiny_model, suite="kobest", batch_size=value).status_code == 302
    assert EvaluationRun.objects.get().spec["batch_size"] == stored


@pytest.mark.parametrize("value", ["0", "-1", "513", "1e3", "2.5", "auto:4", "eight", "٣", "1000000000"])
def test_batch_size_refused(logged_in, tiny_model, mirror_lacking_hellaswag, mirror_checked, value):
    mirror_checked(mirror_lacking_hellaswag, "kobest")
    html = _post(logged_in, tiny_model, suite="kobest", batch_size=value).content.decode()
    assert "Give “auto” or a whole number from 1 to 512." in html
    assert not EvaluationRun.objects.exists()


def test_batch_size_refused_by_the_service(tiny_model, mirror_lacking_hellaswag, mirror_checked):
    mirror_checked(mirror_lacking_hellaswag, "kobest")
    model = model_register(storage_path=str(tiny_model), precision="float32")
    with pytest.raises(ValueError):
        benchmark_submit(model=model, suite_name="kobest", enqueue=False, batch_size=0)
    with pytest.raises(ValueError):
        benchmark_submit(model=model, suite_name="kobest", enqueue=False, batch_size=True)


def test_the_periodic_task_checks_only_what_is_due(mirror_lacking_hellaswag):
    from leaderboard.tasks import refresh_mirror_reports

    refresh_mirror_reports(suite_names=["kobest"])  # never checked: checked now, with lm-eval's real task index
    check = MirrorCheck.objects.get(suite="kobest")
    assert check.mirror_dir == mirror_key() and check.report["ok"]
    assert check.report["entries"][0]["rows"]  # a full check counts rows
    refresh_mirror_reports(suite_names=["kobest"])  # nothing changed: left alone
    assert MirrorCheck.objects.get(suite="kobest").checked_at == check.checked_at
    refresh_mirror_reports(suite_names=["kobest"], force=True)  # the About page's button
    assert MirrorCheck.objects.get(suite="kobest").checked_at > check.checked_at


def test_spec_of_a_partial_run_refuses_unknown_or_all_columns(tiny_model):
    from leaderboard.harness.executor import benchmark_spec_build
    from leaderboard.models import RegisteredModel

    model = RegisteredModel(storage_path=str(tiny_model), precision="float32")
    spec = benchmark_spec_build(model=model, suite_name="kobest", missing_columns=iter(["wic", "copa"]))
    assert spec["missing_columns"] == ["copa", "wic"]  # in column order
    assert [task["task"] for task in spec["tasks"]] == ["kobest_boolq", "kobest_hellaswag", "kobest_sentineg"]
    with pytest.raises(ValueError, match="no column"):
        benchmark_spec_build(model=model, suite_name="kobest", missing_columns=["nope"])
    with pytest.raises(ValueError, match="at least one column"):
        benchmark_spec_build(
            model=model, suite_name="kobest", missing_columns=[c.key for c in suite_get("kobest").columns]
        )


@pytest.mark.services
def test_staff_button_asks_a_worker_for_a_full_check(client, mirror_lacking_hellaswag):
    from tests.workers import queues_purge

    client.force_login(user_create(is_staff=True))
    page = client.post(reverse("leaderboard:about"), follow=True).content.decode()
    assert "The mirror is being checked on a worker" in page
    queues_purge()
    client.force_login(user_create())
    assert client.post(reverse("leaderboard:about")).status_code == 200  # not staff: only the page
