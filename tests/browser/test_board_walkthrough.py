"""Issue #11 in real Chromium: a chosen sort survives filters and searches; the T column, its legend and the
rows-per-page control; an unknown @prefix is named; the favicon; the model page's card, history chart and
reproduce line with its copy button, without a CSP violation. Screenshots go to var/screenshots/board-*.png."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import log_in, screenshot
from tests.browser.test_csp import Watch
from tests.factories import registered_model_create, scored_run_create, user_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SIX = ("arc", "hellaswag", "mmlu", "truthfulqa", "winogrande", "gsm8k")
CARD = "# Acme chat\n\nTuned for **support** answers.\n\n<script>window.__cardRan = true</script>\n"


def values(average: float, arc: float) -> dict[str, float]:
    return {key: (arc if key == "arc" else average) for key in SIX}


@pytest.fixture
def board(model_root):
    folder = model_root / "acme-chat"
    folder.mkdir()
    (folder / "README.md").write_text(CARD, encoding="utf-8")
    models = {
        # Ranked by Average: chat > base > tuned; by ARC ascending: chat (0.20) < tuned (0.40) < base (0.70).
        "chat": registered_model_create(
            display_name="acme/chat-7b", model_type="chat", precision="bfloat16", storage_path=str(folder)
        ),
        "base": registered_model_create(display_name="acme/base-7b", model_type="pretrained", precision="bfloat16"),
        "tuned": registered_model_create(display_name="acme/tuned-7b", model_type="fine_tuned", precision="float16"),
    }
    now = timezone.now()
    scored_run_create(model=models["chat"], values=values(0.55, 0.30), finished_at=now - timedelta(days=3))
    run = scored_run_create(model=models["chat"], values=values(0.75, 0.20), finished_at=now, stderr=0.02)
    run.details = {
        "reproduce_commands": {
            "arc_challenge": "HF_HUB_OFFLINE=1 lm_eval --model hf --model_args "
            "pretrained=/models/acme-chat,dtype=bfloat16 --tasks arc_challenge "
            "--include_path /srv/artifacts/runs/1/tasks --device cuda --batch_size auto "
            "--seed 0,1234,1234,1234"
        }
    }
    run.save(update_fields=["details"])
    scored_run_create(model=models["base"], values=values(0.60, 0.70))
    scored_run_create(model=models["tuned"], values=values(0.50, 0.40))
    user_create(username="dana")
    return models


def table_names(page) -> list[str]:
    return page.locator("#leaderboard a.model-link").all_inner_texts()


def test_sort_is_kept_after_filtering_and_searching(page, board):
    log_in(page, "dana", "pw")
    page.goto("/")
    assert table_names(page) == ["acme/chat-7b", "acme/base-7b", "acme/tuned-7b"]

    # Sort by ARC (first click: descending, second: ascending).
    page.locator("#leaderboard th[data-column=arc] a").click()
    expect(page.locator("#leaderboard th[data-column=arc]")).to_have_attribute("aria-sort", "descending")
    page.locator("#leaderboard th[data-column=arc] a").click()
    expect(page.locator("#leaderboard th[data-column=arc]")).to_have_attribute("aria-sort", "ascending")
    assert table_names(page) == ["acme/chat-7b", "acme/tuned-7b", "acme/base-7b"]

    # A filter: the sort stays (before the fix the form sent its stale "-average").
    page.locator("label.chip", has_text="bfloat16").click()
    expect(page).to_have_url(re.compile(r"precision=bfloat16"))
    expect(page).to_have_url(re.compile(r"sort=arc(&|$)"))
    expect(page.locator("#leaderboard th[data-column=arc]")).to_have_attribute("aria-sort", "ascending")
    assert table_names(page) == ["acme/chat-7b", "acme/base-7b"]

    # A search, then the rows-per-page control: the sort still stays.
    page.fill("#lb-search", "acme")
    expect(page).to_have_url(re.compile(r"q=acme"))
    page.select_option("#lb-per-page", "50")
    expect(page).to_have_url(re.compile(r"per_page=50"))
    expect(page).to_have_url(re.compile(r"sort=arc(&|$)"))
    expect(page.locator("#leaderboard th[data-column=arc]")).to_have_attribute("aria-sort", "ascending")
    assert table_names(page) == ["acme/chat-7b", "acme/base-7b"]
    # The exports follow the view as it is now.
    expect(page.locator("#export-csv")).to_have_attribute(
        "href", re.compile(r"sort=arc.*per_page=50|per_page=50.*sort=arc")
    )

    # The T column and its legend.
    expect(page.locator("#leaderboard tr", has_text="acme/chat-7b").locator("td.type-symbol")).to_have_text("💬")
    expect(page.locator("#lb-type-legend")).to_contain_text("🟢 pretrained")
    expect(page.locator("#leaderboard th[data-column=revision]")).to_contain_text("Model sha")
    screenshot(page, "board-01-sort-kept-after-filter")

    # An unknown @prefix is named, the known ones listed.
    page.fill("#lb-search", "acme @arch:llama")
    expect(page.locator("#lb-search-problem")).to_contain_text("Unknown search prefix @arch:")
    expect(page.locator("#lb-search-problem")).to_contain_text("@architecture:")
    expect(page).to_have_url(re.compile(r"sort=arc(&|$)"))
    screenshot(page, "board-02-unknown-prefix")

    # Saving the columns comes back to the view as it is now, sort included.
    page.click("#column-picker summary")
    page.locator("#lb-columns-form button[type=submit]").click()
    page.wait_for_load_state("load")
    expect(page).to_have_url(re.compile(r"sort=arc(&|$)"))
    expect(page).to_have_url(re.compile(r"precision=bfloat16"))

    # The favicon answers (through the redirect to the static file).
    response = page.request.get("/favicon.ico")
    assert response.ok and response.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")


def test_model_page_card_chart_and_reproduce_line(page, board):
    watch = Watch(page)
    log_in(page, "dana", "pw")
    page.goto(f"/models/{board['chat'].pk}/")
    page.wait_for_load_state("load")

    # The card: rendered markdown, its script shown as text and never run.
    expect(page.locator("#model-card h1")).to_have_text("Acme chat")
    expect(page.locator("#model-card")).to_contain_text("<script>")
    assert page.evaluate("window.__cardRan") is None

    # The history chart: plotly drew the two full runs.
    expect(page.locator("#model-history-plot .main-svg").first).to_be_attached()
    expect(page.locator("#model-history-plot .scatterlayer .trace").first).to_be_attached()

    # The reproduce line beside ARC: one line (it scrolls sideways), a copy button, the full value.
    arc = page.locator("#model-scores table.suite-columns tr[data-column=arc]")
    command = arc.locator("code.command")
    expect(command).to_contain_text("--tasks arc_challenge --include_path")
    box = command.bounding_box()
    assert box["height"] < 40, box  # one line of code and a scrollbar, not ten lines
    expect(arc.locator(".reproduce-value")).to_contain_text("0.2")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    arc.locator("button[data-copy]").click()
    expect(arc.locator("button[data-copy]")).to_have_text("Copied")
    # The page is no wider than the window, on a laptop and on a small screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "board-03-model-page")
    page.set_viewport_size({"width": 1024, "height": 768})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), page.evaluate(
        "document.documentElement.scrollWidth"
    )
    screenshot(page, "board-04-model-page-1024")
    page.wait_for_timeout(250)
    watch.assert_clean("model page")
