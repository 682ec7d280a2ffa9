"""The Content-Security-Policy in real Chromium: the main pages load with no violation (script, style, image...),
the behaviours moved out of inline handlers into static/js/site.js still work, and the chart still draws.

A violation is caught twice: the page's 'securitypolicyviolation' events (reported through a Playwright binding)
and Chromium's console messages. The first test proves the catching works: an injected inline script is refused
and reported."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import log_in, screenshot
from tests.browser.plotly_css import VENDOR, maplibre_style_id, plotly_css
from tests.evaluator.factories import dataset_make, evaluator_run_make
from tests.factories import registered_model_create, scored_run_create, user_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

VALUES = {"arc": 0.52, "hellaswag": 0.61, "mmlu": 0.43, "truthfulqa": 0.38, "winogrande": 0.66, "gsm8k": 0.12}
REPRODUCE = "lm_eval --model hf --model_args pretrained=/models/acme/llama --tasks arc_challenge --num_fewshot 25"
WATCH_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolation({directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile,
                         line: e.lineNumber, sample: e.sample, page: location.pathname});
});
"""


class Watch:
    """Everything that went wrong in the pages of one browser context."""

    def __init__(self, page):
        self.violations: list[dict] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        page.context.expose_binding("__cspViolation", lambda _source, violation: self.violations.append(violation))
        page.context.add_init_script(WATCH_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message):
        if message.type in ("error", "warning") and re.search(r"Content.Security.Policy|CSP", message.text, re.I):
            self.console.append(message.text)

    def assert_clean(self, where: str) -> None:
        assert not self.violations, f"{where}: {self.violations}"
        assert not self.console, f"{where}: {self.console}"
        assert not self.errors, f"{where}: {self.errors}"


def visit(page, watch: Watch, url: str, ready: str = "main") -> None:
    page.goto(url)
    expect(page.locator(ready).first).to_be_attached()
    page.wait_for_load_state("load")
    page.wait_for_timeout(250)  # violation events are dispatched asynchronously
    watch.assert_clean(url)


@pytest.fixture
def site(model_root):
    """Everything the main pages show: two model families with full runs (a chart), a model with a reproduce
    command and two runs (copy button, run picker), a folder on the model storage, a dataset and two evaluator runs."""
    user = user_create(username="alice")
    now = timezone.now()
    model = registered_model_create(display_name="acme/llama-ko", storage_path="/models/acme/llama-ko", owner=user)
    older = scored_run_create(model=model, values=VALUES, finished_at=now - timedelta(days=3))
    newer = scored_run_create(
        model=model,
        values={k: v + 0.02 for k, v in VALUES.items()},
        finished_at=now,
        details={"reproduce_commands": {"arc_challenge": REPRODUCE}},
    )
    other = registered_model_create(display_name="acme/mistral-ko", storage_path="/models/acme/mistral-ko")
    scored_run_create(model=other, values={k: v - 0.05 for k, v in VALUES.items()}, finished_at=now - timedelta(days=1))
    folder = model_root / "fake-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    dataset = dataset_make(owner=user, name="Company FAQ")
    version = dataset.latest_version
    evaluations = [evaluator_run_make(version=version, submitted_by=user) for _ in range(2)]
    return {
        "user": user,
        "model": model,
        "older": older,
        "newer": newer,
        "folder": folder,
        "dataset": dataset,
        "evaluations": evaluations,
    }


def test_an_inline_script_is_refused_and_the_refusal_is_seen(page, site):
    watch = Watch(page)
    log_in(page, "alice", "pw")
    page.goto("/")
    ran = page.evaluate("""() => { const s = document.createElement("script"); s.textContent = "window.__ran = 1";
                                   document.body.appendChild(s); return window.__ran === 1; }""")
    page.evaluate("""() => document.body.setAttribute("style", "color: red")""")
    page.wait_for_timeout(250)
    assert not ran
    directives = {v["directive"] for v in watch.violations}
    assert {"script-src-elem", "style-src-attr"} <= directives, watch.violations


def test_main_pages_have_no_csp_violation_and_moved_behaviours_work(page, site):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    watch = Watch(page)
    visit(page, watch, "/accounts/login/", "#id_username")
    log_in(page, "alice", "pw")
    watch.assert_clean("log in")

    visit(page, watch, "/", "#leaderboard")
    # Language switch (base.html's select, data-autosubmit): Korean, then back.
    page.select_option("#language-switch select", "ko")
    expect(page.locator("nav.tabs")).to_contain_text("제출")
    page.select_option("#language-switch select", "en")
    expect(page.locator("nav.tabs")).to_contain_text("Submit")
    watch.assert_clean("language switch")

    visit(page, watch, "/metrics-through-time/", "#mtt-chart")
    expect(page.locator("#mtt-plot .main-svg").first).to_be_attached()
    expect(page.locator("#mtt-plot .scatterlayer .trace").first).to_be_attached()
    # plotly's own rules come from static/vendor/plotly.css, not an injected <style>.
    assert (
        page.evaluate("""() => getComputedStyle(document.querySelector("#mtt-plot .main-svg")).position""")
        == "absolute"
    )
    assert page.locator("style").count() == 0
    with page.expect_download() as download:  # plotly's toolbar draws the PNG through a blob: image
        page.locator("#mtt-plot .modebar-btn[data-title='Download plot as a PNG']").click()
    assert download.value.suggested_filename.endswith(".png")
    page.locator(".mtt-models input[type=checkbox]").first.uncheck()  # an htmx swap redraws the chart
    expect(page).to_have_url(re.compile(r"models="))
    expect(page.locator("#mtt-plot .main-svg").first).to_be_attached()
    watch.assert_clean("metrics through time")
    screenshot(page, "csp-metrics-through-time")

    model = site["model"]
    visit(page, watch, f"/models/{model.pk}/", "#model-scores")
    copy = page.locator("button[data-copy]").first
    copy.click()
    expect(copy).to_have_text("Copied")
    # The copy beside a column score: the run's command, then the line that prints the value in full.
    assert page.evaluate("navigator.clipboard.readText()").startswith(
        REPRODUCE + " --output_path lm-eval-reproduce && "
    )
    page.select_option("#pick-run", str(site["older"].pk))  # the run picker submits itself
    expect(page).to_have_url(re.compile(rf"\?run={site['older'].pk}$"))
    expect(page.locator(f"a[href='/runs/{site['older'].pk}/']").first).to_be_attached()
    watch.assert_clean("model page")

    visit(page, watch, "/submit/", "#submit-form")
    page.click("#browse-roots summary")
    page.locator(".model-browser a.folder").first.click()
    page.locator(".folder-list li", has_text="fake-llama").locator("button.use-folder").click()
    expect(page.locator("#id_storage_path")).to_have_value(str(site["folder"]))
    expect(page.locator("#model-inspection")).not_to_be_empty()  # the change event ran the folder check
    watch.assert_clean("submit")

    visit(page, watch, "/runs/", "#queue-table")
    visit(page, watch, f"/runs/{site['newer'].pk}/", "#run-status")
    visit(page, watch, "/evaluator/", "main")

    dataset = site["dataset"]
    visit(page, watch, f"/evaluator/datasets/{dataset.pk}/", "#dataset-rows")
    page.locator("#row-editor button", has_text="Add a row").click()
    expect(page.locator("#row-edit-form")).to_be_visible()
    page.locator("#row-edit-form button[data-remove-closest]").click()
    expect(page.locator("#row-edit-form")).to_have_count(0)
    watch.assert_clean("dataset page")

    first, second = site["evaluations"]
    visit(page, watch, f"/evaluator/runs/{first.pk}/", "#headline")
    visit(page, watch, f"/evaluator/compare/?a={first.pk}&b={second.pk}", "main")

    visit(page, watch, "/evaluator/runs/new/", "#run-form")
    page.select_option("#id_preset", "chatbot")  # a preset ticks its metrics
    expect(page.locator("input[name=metrics][value=coherence]")).to_be_checked()
    expect(page.locator("input[name=metrics][value=answer_accuracy]")).not_to_be_checked()
    watch.assert_clean("new evaluation")


def test_admin_and_lockout_pages_have_no_csp_violation(page, site):
    user_create(username="root", is_staff=True, is_superuser=True)
    watch = Watch(page)
    log_in(page, "root", "pw")
    for url in (
        "/admin/",
        "/admin/audit/auditevent/",
        "/admin/leaderboard/registeredmodel/",
        f"/admin/leaderboard/registeredmodel/{site['model'].pk}/change/",
    ):
        visit(page, watch, url, "#content")
    page.context.clear_cookies()
    for _ in range(5):
        page.goto("/accounts/login/")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "wrong")
        page.click("button[type=submit]")
    expect(page.locator("#locked-out")).to_contain_text("Too many failed logins")
    watch.assert_clean("lockout page")


# --- Without a browser --------------------------------------------------------------------------------------


def test_the_policy_header():
    response = Client().get("/accounts/login/")
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data: blob:",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


def test_templates_hold_no_inline_script_or_handler():
    from django.conf import settings

    offenders = []
    for template in sorted((settings.BASE_DIR / "templates").rglob("*.html")):
        text = template.read_text(encoding="utf-8")
        for pattern in (r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", r"\son[a-z]+\s*=", r"\sstyle\s*="):
            offenders += [f"{template.name}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert not offenders


def test_plotly_css_matches_plotly_min_js():
    """static/vendor/plotly.css holds exactly the rules this plotly.min.js would inject (regenerate it after an
    upgrade), and the chart page carries the id that stops maplibre's <style>."""
    from django.conf import settings

    js = (VENDOR / "plotly.min.js").read_text(encoding="utf-8")
    assert (VENDOR / "plotly.css").read_text(encoding="utf-8") == plotly_css(js)
    template = settings.BASE_DIR / "templates" / "leaderboard" / "metrics_through_time.html"
    assert f'id="{maplibre_style_id(js)}"' in template.read_text(encoding="utf-8")
