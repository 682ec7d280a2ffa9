"""Korean in real Chromium: the chart's toolbar speaks Korean (plotly's own Korean locale, served from our static
files under the Content-Security-Policy), and a run's page shows its stored history and failure reason in Korean.

The text checks of every page are in tests/test_korean_everywhere.py; this covers what only a browser shows
(plotly draws its toolbar in JavaScript) and leaves screenshots of the Korean pages in var/screenshots/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from runs.choices import RunKind
from runs.execution import run_execute
from runs.services import run_create
from tests.browser.conftest import log_in, screenshot
from tests.browser.test_csp import Watch, visit
from tests.factories import registered_model_create, scored_run_create, user_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

VALUES = {"arc": 0.52, "hellaswag": 0.61, "mmlu": 0.43, "truthfulqa": 0.38, "winogrande": 0.66, "gsm8k": 0.12}
# Plotly's English button titles (its locale's keys).
TOOLBAR_ENGLISH = ["Download plot as a PNG", "Zoom", "Pan", "Zoom in", "Zoom out", "Autoscale", "Reset axes"]


@pytest.fixture
def korean_site():
    user = user_create(username="minji")
    now = timezone.now()
    model = registered_model_create(display_name="acme/llama-ko", storage_path="/models/acme/llama-ko", owner=user)
    scored_run_create(model=model, values=VALUES, finished_at=now - timedelta(days=3))
    scored_run_create(model=model, values={k: v + 0.02 for k, v in VALUES.items()}, finished_at=now)
    failed = run_create(
        kind=RunKind.BENCHMARK, spec={"suite": "openllm_v1"}, model=model, submitted_by=user, enqueue=False
    )
    run_execute(run_id=failed.pk)  # the executor refuses the spec: a stored failure reason
    return {"user": user, "failed": failed}


def _toolbar_titles(page) -> list[str]:
    return page.eval_on_selector_all("#mtt-plot .modebar-btn", "buttons => buttons.map(b => b.dataset.title)")


def test_chart_toolbar_and_run_history_in_korean(page, korean_site):
    watch = Watch(page)
    log_in(page, "minji", "pw")
    page.context.add_cookies([{"name": "django_language", "value": "ko", "url": page.url}])

    visit(page, watch, "/metrics-through-time/", "#mtt-chart")
    expect(page.locator("#mtt-plot .modebar-btn").first).to_be_attached()
    titles = _toolbar_titles(page)
    assert titles and "PNG 이미지 파일로 차트를 다운로드 합니다" in titles, titles
    assert not set(titles) & set(TOOLBAR_ENGLISH), titles
    assert all(re.search(r"[가-힣]", title) for title in titles), titles  # every button, whatever plotly adds
    page.locator(".mtt-models input[type=checkbox]").first.uncheck()  # redrawn after an htmx swap: still Korean
    expect(page.locator("#mtt-plot .main-svg").first).to_be_attached()
    page.wait_for_timeout(300)
    assert not set(_toolbar_titles(page)) & set(TOOLBAR_ENGLISH)
    watch.assert_clean("metrics through time in Korean")
    screenshot(page, "ko-metrics-through-time")

    visit(page, watch, f"/runs/{korean_site['failed'].pk}/", "#run-error")
    expect(page.locator("#run-error")).to_contain_text("실행 명세가 올바른 벤치마크 명세가 아닙니다")
    history = page.locator("table.data").last
    expect(history).to_contain_text("제출됨")
    expect(history).to_contain_text("대기 중 → 실행 중")
    expect(history).not_to_contain_text("claimed by")
    screenshot(page, "ko-run-failed")


def test_chart_toolbar_stays_english_in_english(page, korean_site):
    """The same page in English keeps plotly's English toolbar: the locale follows the page's language."""
    log_in(page, "minji", "pw")
    page.goto("/metrics-through-time/")
    expect(page.locator("#mtt-plot .modebar-btn").first).to_be_attached()
    titles = _toolbar_titles(page)
    assert "Download plot as a PNG" in titles
    assert not [title for title in titles if title.startswith("Share chart")], titles  # no upload to Plotly Cloud
