"""The evaluator in real Chromium: register a judge and test its connection, register a golden dataset from a
file, run an evaluation on a real worker (ragas against the loopback judge), and read the results page."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in, screenshot
from tests.evaluator.loopback_judge import LoopbackJudge
from tests.factories import user_create
from tests.workers import WorkerProcess, queues_purge

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GOLDEN_CSV = """question,reference,contexts,response,tags
연차 휴가는 며칠인가요?,입사 1년 후 15일입니다.,"[""입사 1년 후 15일의 연차가 주어진다."", ""사용하지 않은 연차는 다음 해로 이월된다.""]",15일입니다.,"hr, 휴가"
What is the VPN address?,vpn.example.internal,The VPN is at vpn.example.internal. Log in with SSO.,vpn.example.internal,it
Who approves expenses?,The team lead approves expenses under 1M KRW.,Team leads approve expenses under 1M KRW; directors above.,Your team lead.,"finance, hr"
"""  # noqa: E501 (rows of a CSV file)


FIELD_KEY = "yF3m9sQ1Xq6bq0c1Jc0s6m8m0cV1Yw2t3H5rj8m1n0A="  # a Fernet key for this test's web process and worker
TYPED_KEY = "sk-walkthrough-typed-key-7d1e"


@pytest.fixture
def worker(settings):
    # The loopback judge listens on 127.0.0.1: allowed here as an administrator would list a host, in the web
    # process (Test connection) and on the worker; typed keys are encrypted with one key both know.
    settings.ENDPOINT_ALLOWED_HOSTS = ["127.0.0.0/8"]
    settings.FIELD_ENCRYPTION_KEYS = [FIELD_KEY]
    queues_purge()
    process = WorkerProcess(
        "evaluator-browser", extra_env={"ENDPOINT_ALLOWED_HOSTS": "127.0.0.0/8", "FIELD_ENCRYPTION_KEY": FIELD_KEY}
    )
    yield process
    process.kill()


def test_evaluator_walkthrough(page, worker, tmp_path):
    user_create(username="erin")  # password "pw"
    log_in(page, "erin", "pw")
    with LoopbackJudge(delay=0.01) as judge:
        page.click("nav.tabs a[href='/evaluator/']")
        page.click("text=Register an LLM endpoint")
        page.fill("#id_name", "on-prem judge")
        page.select_option("#id_kind", "openai")
        page.fill("#id_base_url", judge.base_url)
        page.fill("#id_model_name", judge.model)
        page.fill("#id_api_key", TYPED_KEY)
        page.fill("#id_timeout_s", "10")
        page.fill("#id_max_retries", "0")
        screenshot(page, "20-evaluator-endpoint")
        # By keyboard: right after a full-page screenshot of a page taller than the window, headless Chromium
        # lands a mouse click on the stale scroll position (the form, not its button).
        page.locator("#endpoint-form button[type=submit]").press("Enter")
        page.locator("#endpoints button", has_text="Test connection").click()
        expect(page.locator("#endpoints [data-check]")).to_have_attribute("data-check", "ok")
        page.locator("#endpoints a", has_text="Edit").click()
        expect(page.locator("#key-stored")).to_be_visible()
        assert TYPED_KEY not in page.content()
        page.click("nav.tabs a[href='/evaluator/']")

        golden = tmp_path / "company-faq.csv"
        golden.write_text(GOLDEN_CSV, encoding="utf-8")
        page.click("text=Register a dataset")
        page.fill("#id_name", "Company FAQ")
        page.set_input_files("#id_file", str(golden))
        page.click("#dataset-form button[type=submit]")
        expect(page.locator("#rows-table")).to_contain_text("연차 휴가는 며칠인가요?")
        expect(page.locator("body")).to_contain_text("Registered Company FAQ with 3 rows.")
        screenshot(page, "21-evaluator-dataset")

        page.click("text=Evaluate this version")
        page.check("input[name=target_kind][value=precomputed]")
        page.select_option("#id_judge", label="on-prem judge")
        page.select_option("#id_preset", "qa")
        expect(page.locator("input[name=metrics][value=answer_accuracy]")).to_be_checked()
        page.check("input[name=metrics][value=exact_match]")
        screenshot(page, "22-evaluator-new-run")
        page.click("#run-form button[type=submit]")
        page.wait_for_url(re.compile(r"/evaluator/runs/\d+/$"))
        expect(page.locator("#headline")).to_be_visible(timeout=300_000)
        assert judge.calls > 0
    expect(page.locator("#headline")).to_contain_text("Answer accuracy")
    expect(page.locator("#metric-summary")).to_contain_text("Exact match")
    expect(page.locator("#by-tag")).to_contain_text("finance")
    expect(page.locator("#sample-table")).to_contain_text("vpn.example.internal")
    assert TYPED_KEY not in page.content()
    screenshot(page, "23-evaluator-results")
    page.select_option("#language-switch select", "ko")
    page.wait_for_load_state()
    screenshot(page, "24-evaluator-results-ko")
