"""The evaluator's pages through Django's test client: datasets, endpoints, a run, its results, reviews, exports."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from evaluator.models import GoldenDataset, JudgeReview, LLMEndpoint, MetricScore
from runs.choices import RunStatus
from runs.models import EvaluationRun
from runs.services import run_execute
from tests.evaluator.loopback_judge import LoopbackJudge
from tests.factories import user_create

pytestmark = pytest.mark.django_db

GOOD_CSV = ("question,reference,contexts,response,tags\n"
            "연차 휴가는 며칠인가요?,15일,입사 1년 후 15일의 연차가 주어진다.,15일입니다.,hr\n"
            "What is the VPN address?,vpn.example.internal,The VPN is at vpn.example.internal.,vpn.example.internal,it\n")


@pytest.fixture
def user(client):
    user = user_create()
    client.force_login(user)
    return user


def upload(client, content: str, name="golden.csv", **fields):
    return client.post(reverse("evaluator:dataset_new"), {
        "name": "Company FAQ", "description": "", **fields,
        "file": SimpleUploadedFile(name, content.encode("utf-8"), content_type="text/csv"),
    }, follow=True)


def test_register_a_dataset_and_see_row_problems(client, user):
    bad = upload(client, "question,reference\n,A\nQ2,B\n").content.decode()
    assert "Row 1 (line 2), field “question”: is empty" in bad and not GoldenDataset.objects.exists()
    page = upload(client, GOOD_CSV).content.decode()
    dataset = GoldenDataset.objects.get()
    assert "Registered Company FAQ with 2 rows." in page and "연차 휴가는 며칠인가요?" in page
    assert "hr <span" in page  # tag counts
    found = client.get(reverse("evaluator:dataset", args=[dataset.pk]), {"q": "VPN"}, headers={"HX-Request": "true"})
    assert "VPN address" in found.content.decode() and "연차" not in found.content.decode()

    edited = client.post(reverse("evaluator:dataset", args=[dataset.pk]), {
        "edit-position": "1", "edit-question": "연차는 며칠?", "edit-reference": "15일", "edit-contexts": "a\n|||\nb",
        "edit-response": "15일", "edit-tags": "hr, 휴가"}, follow=True).content.decode()
    assert "Saved as version 2; version 1 is unchanged." in edited and "연차는 며칠?" in edited
    assert list(dataset.versions.order_by("number").values_list("row_count", flat=True)) == [2, 2]


def test_private_dataset_of_another_team_is_hidden(client, user):
    other = user_create()
    from evaluator.datasets import RowData
    from evaluator.services import dataset_create

    secret = dataset_create(name="Secret", rows=[RowData(question="Q")], owner=other, private=True)
    assert client.get(reverse("evaluator:dataset", args=[secret.pk])).status_code == 404
    assert "Secret" not in client.get(reverse("evaluator:index")).content.decode()


def test_endpoint_registration_and_connection_check(client, user):
    with LoopbackJudge() as judge:
        response = client.post(reverse("evaluator:endpoint_new"), {
            "name": "judge", "kind": "openai", "base_url": judge.base_url, "model_name": judge.model, "api_key_secret": "",
            "local_path": "", "temperature": 0, "max_tokens": 256, "timeout_s": 5, "max_concurrency": 4, "max_retries": 0,
            "is_judge": "on"})
        assert response.status_code == 302
        endpoint = LLMEndpoint.objects.get()
        ok = client.post(reverse("evaluator:endpoint_check", args=[endpoint.pk])).content.decode()
        assert 'data-check="ok"' in ok
    failed = client.post(reverse("evaluator:endpoint_check", args=[endpoint.pk])).content.decode()
    assert 'data-check="failed"' in failed
    endpoint.refresh_from_db()
    assert endpoint.last_check_ok is False and endpoint.last_check_message


def test_run_results_review_export_and_compare(client, user):
    upload(client, GOOD_CSV)
    version = GoldenDataset.objects.get().latest_version
    with LoopbackJudge() as judge:
        judge_row = LLMEndpoint.objects.create(name="judge", base_url=judge.base_url, model_name=judge.model, max_retries=0)
        form = {"dataset_version": version.pk, "target_kind": "precomputed", "judge": judge_row.pk, "preset": "custom",
                "metrics": ["exact_match", "answer_accuracy"], "criterion_name": "Polite", "criterion_definition":
                "The answer is polite.", "criterion_kind": "aspect", "prompt_template": ""}
        missing_judge = client.post(reverse("evaluator:run_new"), {**form, "judge": ""}).content.decode()
        assert "need a judge LLM" in missing_judge
        run_ids = []
        for _ in range(2):
            response = client.post(reverse("evaluator:run_new"), form)
            assert response.status_code == 302, response.content.decode()[-3000:]
            run_ids.append(EvaluationRun.objects.latest("pk").pk)
            assert run_execute(run_id=run_ids[-1]) == RunStatus.SUCCEEDED
    page = client.get(reverse("evaluator:run", args=[run_ids[0]])).content.decode()
    assert 'id="headline"' in page and "Answer accuracy" in page and "95% confidence interval" in page
    assert 'id="by-tag"' in page and "연차 휴가는 며칠인가요?" in page and "Polite" in page

    score = MetricScore.objects.filter(sample__run_id=run_ids[0], metric="exact_match").first()
    client.post(reverse("evaluator:score_review", args=[score.pk]), {"agrees": "1"})
    client.post(reverse("evaluator:score_review", args=[score.pk]), {"agrees": "0"})
    assert JudgeReview.objects.get().agrees is False
    assert "agreed with 0%" in client.get(reverse("evaluator:run", args=[run_ids[0]])).content.decode()

    exported = client.get(reverse("evaluator:run_export", args=[run_ids[0], "csv"])).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 2 and rows[1]["exact_match"] == "1.0"
    data = json.loads(client.get(reverse("evaluator:run_export", args=[run_ids[0], "json"])).content)
    assert data["samples"][0]["question"] == "연차 휴가는 며칠인가요?"
    compared = client.get(reverse("evaluator:compare"), {"a": run_ids[0], "b": run_ids[1]}).content.decode()
    assert 'id="deltas"' in compared and "Exact match" in compared
    partial = client.get(reverse("evaluator:run_samples", args=[run_ids[0]]), {"tag": "it"}).content.decode()
    assert "VPN address" in partial and "연차" not in partial
