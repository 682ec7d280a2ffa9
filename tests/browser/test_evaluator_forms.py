"""The evaluator's forms in real Chromium: the endpoint form shows only the chosen kind's fields (and the chosen
key source's), the run form's Korean-text note follows the picked version and embedding model; no CSP violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from evaluator.datasets import RowData
from evaluator.models import EmbeddingModel
from tests.browser.conftest import log_in, screenshot
from tests.browser.test_csp import Watch
from tests.evaluator.factories import dataset_make
from tests.factories import user_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def field(page, name):
    """The field's wrapper (a direct child of the form)."""
    return page.locator(f"#endpoint-form > div:has([name='{name}'])")


def test_the_endpoint_form_shows_only_the_chosen_kinds_fields(page):
    user_create(username="alice")
    watch = Watch(page)
    log_in(page, "alice", "pw")
    page.goto("/evaluator/endpoints/new/")
    for name in ("base_url", "model_name", "api_key"):
        expect(field(page, name)).to_be_visible()
    for name in ("local_path", "secret_name"):
        expect(field(page, name)).to_be_hidden()
    page.select_option("select[name=kind]", "local")
    expect(field(page, "local_path")).to_be_visible()
    for name in ("base_url", "model_name", "secret_kind", "api_key", "secret_name"):
        expect(field(page, name)).to_be_hidden()
    for name in ("name", "temperature", "max_tokens", "is_judge"):
        expect(field(page, name)).to_be_visible()
    expect(page.locator("[data-for-kind=openai]")).to_be_hidden()
    screenshot(page, "25-evaluator-endpoint-local")
    page.select_option("select[name=kind]", "openai")
    expect(field(page, "base_url")).to_be_visible()
    expect(field(page, "local_path")).to_be_hidden()
    watch.assert_clean("endpoint form")


def test_the_korean_note_follows_the_version_and_the_embedding_model(page):
    user = user_create(username="alice")
    english = dataset_make(owner=user, name="English FAQ", rows=[RowData(question="Q?", reference="A", response="A")])
    korean = dataset_make(
        owner=user, name="Korean FAQ", rows=[RowData(question="연차는?", reference="15일", response="15일")]
    )
    multilingual = EmbeddingModel.objects.create(name="multilingual", path="/models/multilingual")
    watch = Watch(page)
    log_in(page, "alice", "pw")
    page.goto(f"/evaluator/runs/new/?dataset_version={english.latest_version.pk}")
    note = page.locator("#korean-embedder-note")
    expect(note).to_be_hidden()
    page.select_option("#id_dataset_version", str(korean.latest_version.pk))
    expect(note).to_be_visible()
    screenshot(page, "26-evaluator-korean-note")
    page.select_option("#id_embedding", str(multilingual.pk))
    expect(note).to_be_hidden()
    page.select_option("#id_embedding", "")
    expect(note).to_be_visible()
    watch.assert_clean("run form")
