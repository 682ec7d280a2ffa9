"""Korean text judged with the English-only default embedder is warned about, on the form and on the results."""

import pytest
from django.urls import reverse

from evaluator.datasets import RowData
from evaluator.models import EmbeddingModel, EvaluatorRun
from evaluator.selectors import hangul_version_ids
from tests.evaluator.factories import dataset_make, evaluator_run_make
from tests.factories import user_create

pytestmark = pytest.mark.django_db

ENGLISH = [
    RowData(question="What is the VPN address?", reference="vpn.example.internal", response="vpn.example.internal")
]
KOREAN = [
    RowData(question="What is the VPN address?", reference="vpn.example.internal", response="vpn"),
    RowData(question="Leave?", reference="15일", response="15 days"),
]  # Korean in a reference only


@pytest.fixture
def user(client):
    user = user_create()
    client.force_login(user)
    return user


def test_hangul_is_found_in_questions_references_and_responses(user):
    english, korean = dataset_make(rows=ENGLISH, owner=user), dataset_make(rows=KOREAN, owner=user)
    jamo = dataset_make(rows=[RowData(question="ㅋㅋ what?", reference="x", response="y")], owner=user)
    ids = [d.latest_version.pk for d in (english, korean, jamo)]
    assert hangul_version_ids(version_ids=ids) == {korean.latest_version.pk, jamo.latest_version.pk}


def test_the_form_warns_for_a_korean_version_only(client, user):
    english, korean = dataset_make(rows=ENGLISH, owner=user), dataset_make(rows=KOREAN, owner=user)
    url = reverse("evaluator:run_new")
    page = client.get(url, {"dataset_version": korean.latest_version.pk}).content.decode()
    note = page[page.index('id="korean-embedder-note"') :]
    assert not note.split(">", 1)[0].rstrip().endswith("hidden") and "English only" in note
    assert f"[{korean.latest_version.pk}]" in page  # the versions with Korean text, for the script
    page = client.get(url, {"dataset_version": english.latest_version.pk}).content.decode()
    assert page[page.index('id="korean-embedder-note"') :].split(">", 1)[0].rstrip().endswith("hidden")


def _run(version, *, embedding=None):
    run = evaluator_run_make(version=version, metrics=("semantic_similarity", "exact_match"))
    EvaluatorRun.objects.filter(run=run).update(embedding=embedding)
    return run


def test_the_results_warn_when_korean_was_embedded_by_the_default(client, user):
    korean, english = dataset_make(rows=KOREAN, owner=user), dataset_make(rows=ENGLISH, owner=user)
    warned = _run(korean.latest_version)
    assert 'id="korean-embedder-warning"' in client.get(reverse("evaluator:run", args=[warned.pk])).content.decode()
    multilingual = EmbeddingModel.objects.create(name="multilingual", path="/models/multilingual-minilm")
    for quiet in (
        _run(korean.latest_version, embedding=multilingual),
        _run(english.latest_version),
        evaluator_run_make(version=korean.latest_version, metrics=("exact_match",)),
    ):
        assert (
            'id="korean-embedder-warning"' not in client.get(reverse("evaluator:run", args=[quiet.pk])).content.decode()
        )


def test_queueing_korean_with_the_default_embedder_warns(client, user):
    korean = dataset_make(rows=KOREAN, owner=user)
    response = client.post(
        reverse("evaluator:run_new"),
        {
            "dataset_version": korean.latest_version.pk,
            "target_kind": "precomputed",
            "preset": "custom",
            "metrics": ["semantic_similarity"],
            "prompt_template": "",
        },
        follow=True,
    )
    assert response.redirect_chain, response.content.decode()[-2000:]
    assert "English only" in response.content.decode()
