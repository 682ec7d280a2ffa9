"""A user's walk through the leaderboard in real Chromium: log in, submit a tiny model by browsing the model
storage, watch its run (a real worker, real lm-eval on the cut-down mirror), find it with search and filters,
open its page and a sample, compare two runs, open the chart, switch to Korean. Screenshots of each page go
to var/screenshots/."""

import re

import pytest
from playwright.sync_api import expect

from runs.choices import RunStatus
from runs.models import EvaluationRun
from tests.browser.conftest import log_in, screenshot
from tests.factories import user_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RUN_TIMEOUT_MS = 900_000


def submit_tiny_model(page, *, display_name: str, limit: int | None = None, shot: str | None = None) -> int:
    page.goto("/submit/")
    page.click("#browse-roots summary")
    page.locator(".model-browser a.folder").first.click()  # into the model root
    page.locator(".folder-list li", has_text="tiny-llama").locator("button.use-folder").click()
    expect(page.locator("#model-inspection")).to_contain_text("The folder can be evaluated")
    expect(page.locator("#model-inspection")).to_contain_text("LlamaForCausalLM")
    page.fill("#id_display_name", display_name)
    page.select_option("#id_precision", "float32")
    page.select_option("#id_model_type", "fine_tuned")
    if limit:
        page.fill("#id_limit", str(limit))
        page.check("#id_force")
    if shot:
        screenshot(page, shot)
    page.click("#submit-form button[type=submit]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    return int(re.search(r"/runs/(\d+)/", page.url).group(1))


def watch_run_finish(page, run_id: int, worker) -> None:
    status = page.locator("#run-status .status")
    try:
        expect(status).to_have_attribute("data-status", RunStatus.SUCCEEDED, timeout=RUN_TIMEOUT_MS)
    except AssertionError:
        run = EvaluationRun.objects.get(pk=run_id)
        raise AssertionError(f"run {run_id} {run.status}: {run.error_message}\n{worker.output()[-3000:]}") from None


def test_walkthrough(page, suite_worker, tiny_model):
    user_create(username="alice")  # password "pw"
    page.goto("/")
    screenshot(page, "01-login")
    log_in(page, "alice", "pw")

    run_id = submit_tiny_model(page, display_name="acme/tiny-llama-walkthrough", shot="02-submit")
    expect(page.locator("#run-status .status")).to_have_attribute("data-status", re.compile("queued|running|succeeded"))
    screenshot(page, "03-run-queued")
    watch_run_finish(page, run_id, suite_worker)
    expect(page.locator("#run-scores")).to_contain_text("arc_challenge")
    screenshot(page, "04-run-succeeded")

    # A second, smoke run of the same model: partial, so it is never ranked, but it can be compared.
    smoke_id = submit_tiny_model(page, display_name="acme/tiny-llama-walkthrough", limit=2)
    watch_run_finish(page, smoke_id, suite_worker)
    page.goto("/runs/")
    expect(page.locator("body")).to_contain_text("acme/tiny-llama-walkthrough")
    screenshot(page, "05-queue")

    # Find it on the leaderboard: the table updates in place (htmx), and the URL keeps the view.
    page.goto("/")
    table = page.locator("#leaderboard")
    page.fill("#lb-search", "nothing-matches-this; @architecture:nope")
    expect(table).to_contain_text("No model matches these filters")
    page.fill("#lb-search", "walkthrough; @architecture:llama")
    expect(table).to_contain_text("acme/tiny-llama-walkthrough")
    page.locator("label.chip", has_text="float32").click()
    page.locator("label.chip", has_text="~1.5").click()
    expect(page).to_have_url(re.compile(r"precision=float32.*size=1\.5|size=1\.5.*precision=float32"))
    expect(table).to_contain_text("acme/tiny-llama-walkthrough")
    page.check("#toggle-stderr")
    expect(table.locator(".stderr").first).to_be_visible()
    screenshot(page, "06-leaderboard")
    shared_url = page.url
    page.goto(shared_url)
    expect(page.locator("#lb-search")).to_have_value("walkthrough; @architecture:llama")

    # The model page, one of its samples, and the comparison of its two runs.
    table.locator("a.model-link", has_text="acme/tiny-llama-walkthrough").click()
    page.wait_for_url(re.compile(r"/models/\d+/$"))
    expect(page.locator("body")).to_contain_text("arc_challenge")
    screenshot(page, "07-model")
    page.locator("a", has_text="Browse samples").first.click()
    page.wait_for_url(re.compile(r"/samples/"))
    page.select_option("#samples-task", "arc_challenge")
    expect(page).to_have_url(re.compile(r"task=arc_challenge"))
    expect(page.locator("#samples-table .sample").first).to_be_visible()
    page.locator("#samples-filters label.chip", has_text="Incorrect").click()
    expect(page).to_have_url(re.compile(r"correct=no"))
    expect(page.locator("#samples-table .sample.is-correct")).to_have_count(0)
    screenshot(page, "08-samples")
    page.goto(f"/models/compare/?a={run_id}&b={smoke_id}")
    expect(page.locator("body")).to_contain_text("arc_challenge")
    screenshot(page, "09-compare")

    # The chart: plotly draws an SVG from our own static files.
    page.click("nav.tabs a[href='/metrics-through-time/']")
    expect(page.locator(".main-svg").first).to_be_attached()
    screenshot(page, "10-metrics-through-time")

    page.click("nav.tabs a[href='/about/']")
    screenshot(page, "11-about")

    # Korean.
    page.goto("/")
    page.select_option("#language-switch select", "ko")
    page.wait_for_load_state()
    expect(page.locator("nav.tabs")).to_contain_text("제출")
    expect(page.locator("#leaderboard")).to_contain_text("acme/tiny-llama-walkthrough")
    screenshot(page, "12-leaderboard-ko")
    page.goto(f"/models/{EvaluationRun.objects.get(pk=run_id).model_id}/")
    screenshot(page, "13-model-ko")


def test_partial_suite_submission(page, tiny_model, mirror_lacking_hellaswag, mirror_checked):
    """The mirror lacks HellaSwag: the submit page says so before anything is queued, refuses the full suite
    naming the dataset, and queues a knowingly partial run (never ranked) when asked to."""
    from tests.workers import queues_purge

    mirror_checked(mirror_lacking_hellaswag)
    user_create(username="bob")
    log_in(page, "bob", "pw")
    page.goto("/submit/")
    listing = page.locator("#suite-availability")
    expect(listing.locator("[data-suite=openllm_v1]")).to_contain_text("HellaSwag: missing from the mirror")
    expect(listing.locator("[data-suite=kobest]")).to_contain_text("served fully")
    expect(page.locator("#id_suite")).to_have_value("kobest")  # the default suite is not served fully
    page.fill("#id_storage_path", str(tiny_model))
    page.dispatch_event("#id_storage_path", "change")  # as leaving the field does
    expect(page.locator("#model-inspection")).to_contain_text("The folder can be evaluated")
    page.fill("#id_display_name", "acme/tiny-partial")
    page.select_option("#id_precision", "float32")
    page.select_option("#id_suite", "openllm_v1")
    screenshot(page, "13-submit-suite-list")

    page.click("#submit-form button[type=submit]")
    expect(page.locator(".field-suite .errorlist")).to_contain_text("Rowan/hellaswag")
    expect(page.locator(".field-suite .errorlist")).to_contain_text("Tick “Partial run”")
    assert not EvaluationRun.objects.exists()
    screenshot(page, "14-submit-refused-missing-hellaswag")

    page.check("#id_partial")
    page.fill("#id_batch_size", "2")
    page.click("#submit-form button[type=submit]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    expect(page.locator(".badge.partial-run")).to_contain_text("partial run (missing: hellaswag): never ranked")
    expect(page.locator("body")).to_contain_text("HellaSwag (Rowan/hellaswag) will not be run")
    screenshot(page, "15-partial-run-queued")
    run = EvaluationRun.objects.get()
    assert run.is_partial and run.spec["missing_columns"] == ["hellaswag"] and run.spec["batch_size"] == 2
    page.goto("/about/")
    expect(page.locator("#mirror-openllm_v1")).to_contain_text("partial runs only")
    screenshot(page, "16-about-mirror")
    queues_purge()  # no worker here: leave no message behind
