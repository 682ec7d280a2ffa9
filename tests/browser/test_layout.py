"""No page is wider than its window: long text (model names, failure reasons, paths, connection errors, tags,
model outputs) wraps instead of widening the page. Every page, filled with such text, at 1366 and 1024 px
wide, in English and Korean, in real Chromium; a screenshot of each lands in var/screenshots/layout-*.png.

The measures: ``document.documentElement.scrollWidth <= window.innerWidth`` (the page never scrolls sideways),
and no card or table box is wider inside than outside (text is not hidden behind a sideways scroll), the
leaderboard's own wide table excepted. Every <details> is opened first, so folded text is measured too."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from evaluator.datasets import RowData
from evaluator.models import LLMEndpoint
from leaderboard.models import MirrorCheck
from runs.choices import RunStatus
from runs.models import RunEvent
from tests.browser.conftest import log_in, screenshot
from tests.evaluator.factories import dataset_make, endpoint_make, evaluator_run_make
from tests.factories import registered_model_create, run_create_row, scored_run_create, user_create
from tests.leaderboard.sample_runs import real_runs, store_run  # noqa: F401 (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WIDTHS = (1366, 1024)
LANGUAGES = ("en-US", "ko-KR")
# LAYOUT_PAGES=queue,evaluator checks only those pages (the names of crowded_site's keys), to retry a fix quickly.
ONLY = {name.strip() for name in os.getenv("LAYOUT_PAGES", "").split(",") if name.strip()}
# Unbroken runs of characters are the worst case: nothing to wrap at but the cell's edge.
LONG_NAME = "acme-research-lab/llama-3-70b-instruct-korean-legal-finetune-" + "v2-" * 12 + "final"
LONG_PATH = "/srv/models/" + "very-deep-folder/" * 8 + "checkpoint-000123456789"
LONG_REASON = (
    f"Dataset allenai/ai2_arc is missing from the mirror at {LONG_PATH}/mirror/"
    + "x" * 180
    + " and the run cannot go on: "
    + "the mirror was checked " * 8
)
LONG_TAG = "customer-support-escalation-procedures-" * 3 + "태그"
LONG_CHECK = (
    "HTTPConnectionPool(host='vllm-judge-qwen2-72b-instruct.ml-platform.internal.example.com', port=8000): "
    "Max_retries_exceeded_with_url:/v1/models(Caused_by_NewConnectionError('<urllib3.connection."
    "HTTPConnection_object_at_0x7f3a9c2d1e50>:_Failed_to_establish_a_new_connection:_[Errno_111]"
    "_Connection_refused'))"
)
VALUES = {"arc": 0.52, "hellaswag": 0.61, "mmlu": 0.43, "truthfulqa": 0.38, "winogrande": 0.66, "gsm8k": 0.12}


@pytest.fixture
def crowded_site(settings, tmp_path, real_runs, mirror_checked, mirror_lacking_hellaswag):  # noqa: F811 (fixture)
    """Every page with data, and the longest text each shows."""
    user = user_create(username="alice", is_staff=True)
    now = timezone.now()
    model = registered_model_create(display_name=LONG_NAME, storage_path=LONG_PATH, owner=user)
    scored = scored_run_create(
        model=model,
        values=VALUES,
        finished_at=now - timedelta(days=2),
        submitted_by=user,
        started_at=now - timedelta(days=2, minutes=3),
    )
    for n in range(4):
        other = registered_model_create(display_name=f"{LONG_NAME}-{n}", storage_path=f"{LONG_PATH}-{n}")
        scored_run_create(
            model=other, values={k: v - 0.03 * n for k, v in VALUES.items()}, finished_at=now - timedelta(days=n)
        )
    failed = run_create_row(
        model=model,
        status=RunStatus.FAILED,
        submitted_by=user,
        error_message=LONG_REASON,
        started_at=now - timedelta(minutes=2),
        finished_at=now,
    )
    running = run_create_row(
        model=model,
        status=RunStatus.RUNNING,
        submitted_by=user,
        progress_done=3,
        progress_total=10,
        progress_note=LONG_REASON[:200],
    )
    for run in (failed, running):
        RunEvent.objects.create(
            run=run,
            from_status="queued",
            to_status="running",
            at=now,
            message=f"claimed by worker {LONG_PATH}-gpu-node-01.ml-platform.internal.example.com",
        )
    RunEvent.objects.create(run=failed, from_status="running", to_status="failed", at=now, message=LONG_REASON)

    samples_a = store_run(real_runs["a"], model=model, artifacts_dir=settings.ARTIFACTS_DIR)
    samples_b = store_run(
        real_runs["b"],
        model=registered_model_create(display_name=LONG_NAME + "-b"),
        artifacts_dir=settings.ARTIFACTS_DIR,
    )

    rows = [
        RowData(
            question=f"{LONG_NAME} 질문 {i}: " + "왜" * 120,
            reference="answer " + "y" * 150,
            contexts=(LONG_REASON,),
            response=LONG_REASON,
            tags=(LONG_TAG, f"tag-{i}"),
        )
        for i in range(1, 6)
    ]
    dataset = dataset_make(owner=user, name="Company FAQ " + "z" * 90, rows=rows)
    endpoint = endpoint_make(name="judge-" + "q" * 80, owner=user)
    LLMEndpoint.objects.filter(pk=endpoint.pk).update(
        last_checked_at=now, last_check_ok=False, last_check_message=LONG_CHECK
    )
    first, second = (evaluator_run_make(version=dataset.latest_version, submitted_by=user) for _ in range(2))
    # The About page's mirror check (as mirror_verify saves it) of a mirror without HellaSwag, its problem
    # text made long, and a check saved for another, long-named folder.
    mirror_checked(mirror_lacking_hellaswag, "openllm_v1")
    check = MirrorCheck.objects.get(suite="openllm_v1")
    for entry in check.report["entries"]:
        if not entry["found"]:
            entry["problem"] = LONG_REASON
    check.save(update_fields=["report"])
    MirrorCheck.objects.create(
        mirror_dir=LONG_PATH,
        suite="openllm_v1",
        suite_version=1,
        suite_digest="0" * 64,
        fingerprint="0" * 32,
        report={"entries": []},
        checked_at=now,
    )
    return {
        "about": "/about/",
        "leaderboard": "/",
        "metrics-through-time": "/metrics-through-time/",
        "submit": "/submit/",
        "queue": "/runs/",
        "run-failed": f"/runs/{failed.pk}/",
        "run-running": f"/runs/{running.pk}/",
        "run-succeeded": f"/runs/{scored.pk}/",
        "model": f"/models/{model.pk}/",
        "samples-arc": f"/models/runs/{samples_a.pk}/samples/?task=arc_challenge",
        "samples-gsm8k": f"/models/runs/{samples_a.pk}/samples/?task=gsm8k",
        "compare": f"/models/compare/?a={samples_a.pk}&b={samples_b.pk}",
        "evaluator": "/evaluator/",
        "dataset": f"/evaluator/datasets/{dataset.pk}/",
        "evaluation": f"/evaluator/runs/{first.pk}/",
        "evaluator-compare": f"/evaluator/compare/?a={first.pk}&b={second.pk}",
        "evaluation-new": "/evaluator/runs/new/",
        "dataset-new": "/evaluator/datasets/new/",
        "endpoint-new": "/evaluator/endpoints/new/",
    }


def page_overflow(page) -> dict | None:
    """None when the page fits its window, else how wide it is and the elements that stick out."""
    return page.evaluate("""() => {
        const width = window.innerWidth, scroll = document.documentElement.scrollWidth;
        if (scroll <= width) return null;
        const out = [];
        for (const el of document.querySelectorAll("body *")) {
            const box = el.getBoundingClientRect();
            if (box.right > width + 1)
                out.push({tag: el.tagName, id: el.id, cls: String(el.className), right: Math.round(box.right)});
        }
        out.sort((a, b) => a.right - b.right);
        return {scrollWidth: scroll, width: width, innermost: out.slice(0, 5)};
    }""")


def boxes_scrolling_sideways(page) -> list[dict]:
    """Cards and table boxes whose content is wider than they are (the page fits, but text is cut off
    behind a sideways scroll). Only the leaderboard's own wide table may scroll so."""
    return page.evaluate("""() => Array.from(document.querySelectorAll(".card, .table-scroll"))
        .filter((el) => !el.querySelector("table.leaderboard") && el.scrollWidth > el.clientWidth + 1)
        .map((el) => ({id: el.id, cls: String(el.className), scrollWidth: el.scrollWidth, width: el.clientWidth,
                       table: (el.querySelector("table[id]") || {}).id || ""}))""")


def test_no_page_is_wider_than_its_window(browser, live_server, crowded_site):
    problems = []
    for language in LANGUAGES:
        for width in WIDTHS:
            context = browser.new_context(
                viewport={"width": width, "height": 800}, base_url=live_server.url, locale=language
            )
            context.set_default_timeout(20_000)
            page = context.new_page()
            log_in(page, "alice", "pw")
            for name, url in crowded_site.items():
                if ONLY and name not in ONLY:
                    continue
                page.goto(url)
                page.wait_for_load_state("load")
                if name == "metrics-through-time":
                    page.locator("#mtt-plot .main-svg").first.wait_for(state="attached")
                page.locator("details").evaluate_all("(all) => all.forEach((d) => { d.open = true; })")
                overflow = page_overflow(page)
                if overflow:
                    problems.append(f"{name} ({language}, {width}px): {overflow}")
                for box in boxes_scrolling_sideways(page):
                    problems.append(f"{name} ({language}, {width}px) scrolls sideways inside: {box}")
                if name == "queue":  # the Cancel button of the running run is on screen
                    box = page.locator("#queue button.danger").first.bounding_box()
                    if box is None or box["x"] + box["width"] > width:
                        problems.append(f"queue ({language}, {width}px): Cancel at {box}")
                screenshot(page, f"layout-{name}-{language[:2]}-{width}")
            context.close()
    assert not problems, "\n".join(problems)
