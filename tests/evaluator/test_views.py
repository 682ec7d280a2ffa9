"""The evaluator's pages through Django's test client: datasets, endpoints, a run, its results, reviews, exports."""

import csv
import io
import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from evaluator.datasets import RowData
from evaluator.models import GoldenDataset, JudgeReview, LLMEndpoint, MetricScore
from runs.choices import RunStatus
from runs.execution import run_execute
from runs.models import EvaluationRun
from tests.evaluator.loopback_judge import LoopbackJudge
from tests.factories import user_create

pytestmark = pytest.mark.django_db

GOOD_CSV = (
    "question,reference,contexts,response,tags\n"
    "연차 휴가는 며칠인가요?,15일,입사 1년 후 15일의 연차가 주어진다.,15일입니다.,hr\n"
    "What is the VPN address?,vpn.example.internal,The VPN is at vpn.example.internal.,vpn.example.internal,it\n"
)


@pytest.fixture
def user(client):
    user = user_create()
    client.force_login(user)
    return user


def upload(client, content: str, name="golden.csv", **fields):
    return client.post(
        reverse("evaluator:dataset_new"),
        {
            "name": "Company FAQ",
            "description": "",
            **fields,
            "file": SimpleUploadedFile(name, content.encode("utf-8"), content_type="text/csv"),
        },
        follow=True,
    )


def test_register_a_dataset_and_see_row_problems(client, user):
    bad = upload(client, "question,reference\n,A\nQ2,B\n").content.decode()
    assert "Row 1 (line 2), field “question”: is empty" in bad and not GoldenDataset.objects.exists()
    page = upload(client, GOOD_CSV).content.decode()
    dataset = GoldenDataset.objects.get()
    assert "Registered Company FAQ with 2 rows." in page and "연차 휴가는 며칠인가요?" in page
    assert "hr <span" in page  # tag counts
    found = client.get(reverse("evaluator:dataset", args=[dataset.pk]), {"q": "VPN"}, headers={"HX-Request": "true"})
    assert "VPN address" in found.content.decode() and "연차" not in found.content.decode()

    edited = client.post(
        reverse("evaluator:dataset", args=[dataset.pk]),
        {
            "edit-position": "1",
            "edit-question": "연차는 며칠?",
            "edit-reference": "15일",
            "edit-contexts": "a\n|||\nb",
            "edit-response": "15일",
            "edit-tags": "hr, 휴가",
        },
        follow=True,
    ).content.decode()
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
        response = client.post(
            reverse("evaluator:endpoint_new"),
            {
                "name": "judge",
                "kind": "openai",
                "base_url": judge.base_url,
                "model_name": judge.model,
                "secret_kind": "",
                "local_path": "",
                "temperature": 0,
                "max_tokens": 256,
                "timeout_s": 5,
                "max_concurrency": 4,
                "max_retries": 0,
                "is_judge": "on",
            },
        )
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
        judge_row = LLMEndpoint.objects.create(
            name="judge", base_url=judge.base_url, model_name=judge.model, max_retries=0
        )
        form = {
            "dataset_version": version.pk,
            "target_kind": "precomputed",
            "judge": judge_row.pk,
            "preset": "custom",
            "metrics": ["exact_match", "answer_accuracy"],
            "criterion_1_name": "Polite",
            "criterion_1_definition": "The answer is polite.",
            "criterion_1_kind": "aspect",
            "prompt_template": "",
        }
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
    assert 'id="unscored-notice"' not in page  # every score was given

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


def test_row_editor_htmx_form_and_permissions(client, user):
    from tests.evaluator.factories import dataset_make

    mine = dataset_make(owner=user)
    form = client.get(
        reverse("evaluator:row_edit", args=[mine.pk, 1, 1]), headers={"HX-Request": "true"}
    ).content.decode()
    assert 'id="row-edit-form"' in form and "연차 휴가는 며칠인가요?" in form and "hr, 휴가" in form
    assert 'name="edit-question"' in client.get(reverse("evaluator:row_new", args=[mine.pk, 1])).content.decode()
    deleted = client.post(
        reverse("evaluator:dataset", args=[mine.pk]) + "?v=1",
        {"edit-position": "2", "edit-question": "x", "edit-delete": "on"},
        follow=True,
    ).content.decode()
    assert "Saved as version 2" in deleted and mine.latest_version.row_count == 2
    empty = client.post(reverse("evaluator:dataset", args=[mine.pk]) + "?v=2", {"edit-question": ""}).content.decode()
    assert "This field is required" in empty and mine.versions.count() == 2

    theirs = dataset_make(owner=user_create())  # public: visible, but not mine to edit
    page = client.get(reverse("evaluator:dataset", args=[theirs.pk])).content.decode()
    assert "연차 휴가는 며칠인가요?" in page and "row-editor" not in page
    assert client.post(reverse("evaluator:dataset", args=[theirs.pk]), {"edit-question": "x"}).status_code == 403
    assert client.get(reverse("evaluator:row_edit", args=[theirs.pk, 1, 1])).status_code == 403


def test_dataset_search_and_korean_tags(client, user):
    from tests.evaluator.factories import dataset_make

    dataset = dataset_make(owner=user)
    page = client.get(reverse("evaluator:dataset", args=[dataset.pk]), {"tag": "휴가"}).content.decode()
    assert "연차 휴가는 며칠인가요?" in page and "VPN address" not in page
    found = client.get(
        reverse("evaluator:dataset", args=[dataset.pk]), {"q": "finance"}, headers={"HX-Request": "true"}
    )
    assert "Who approves expenses?" in found.content.decode() and "VPN" not in found.content.decode()


def test_runs_of_a_private_dataset_stay_with_its_team(client, user):
    from tests.evaluator.factories import dataset_make, evaluator_run_make

    other = user_create()
    secret = dataset_make(owner=other, private=True, name="Secret set")
    run = evaluator_run_make(version=secret.latest_version, submitted_by=other)
    score = MetricScore.objects.filter(sample__run=run, value__isnull=False).first()
    assert client.get(reverse("evaluator:run", args=[run.pk])).status_code == 404
    assert client.get(reverse("evaluator:run_export", args=[run.pk, "json"])).status_code == 404
    assert client.post(reverse("evaluator:score_review", args=[score.pk]), {"agrees": "1"}).status_code == 404
    assert "Secret set" not in client.get(reverse("evaluator:index")).content.decode()
    public = dataset_make(owner=other)
    visible = evaluator_run_make(version=public.latest_version, submitted_by=other)
    assert client.get(reverse("evaluator:run", args=[visible.pk])).status_code == 200


def test_results_page_queries_stay_bounded(client, user, django_assert_max_num_queries):
    from tests.evaluator.factories import dataset_make, evaluator_run_make, rows_make

    small = evaluator_run_make(version=dataset_make(rows=rows_make(5)).latest_version, submitted_by=user)
    big = evaluator_run_make(version=dataset_make(rows=rows_make(400)).latest_version, submitted_by=user)
    with django_assert_max_num_queries(20):
        page = client.get(reverse("evaluator:run", args=[big.pk]))
    assert page.status_code == 200 and "Scored on 267 of 400 samples (133 unscored)." in page.content.decode()
    assert "Wilson score interval" in page.content.decode()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for run in (small, big):
        with CaptureQueriesContext(connection) as captured:
            client.get(reverse("evaluator:run", args=[run.pk]))
        counts.append(len(captured))
    assert 0 < counts[0] == counts[1] <= 20, counts  # 14 here: the same for 5 samples as for 400
    partial = client.get(
        reverse("evaluator:run_samples", args=[big.pk]), {"metric": "answer_accuracy", "unscored": "1", "page": 2}
    ).content.decode()
    assert "2 / 6" in partial and "judge's raw output" in partial and "{not json" in partial


def test_new_run_form_offers_precomputed_only_with_responses(client, user):
    from tests.evaluator.factories import dataset_make

    bare = dataset_make(rows=[RowData(question="Q")], owner=user)
    page = client.get(reverse("evaluator:run_new"), {"dataset_version": bare.latest_version.pk}).content.decode()
    assert f"[{bare.latest_version.pk}]" in page  # the versions without responses, for the script
    assert re.search(r'<input[^>]*value="endpoint"[^>]*checked', page)  # not "precomputed", which has nothing to judge
    assert "Custom criteria" in page and "criterion_3_rubric" in page


def test_embedding_registration_is_checked(client, user, settings, tmp_path):
    root = settings.MODEL_ROOTS[0]
    folder = root / "multilingual-e5"
    folder.mkdir(parents=True)
    outside = client.post(reverse("evaluator:embedding_new"), {"name": "e5", "path": str(tmp_path)}).content.decode()
    assert "outside the allowed model roots" in outside
    empty = client.post(reverse("evaluator:embedding_new"), {"name": "e5", "path": str(folder)}).content.decode()
    assert "neither modules.json nor config.json" in empty
    (folder / "modules.json").write_text("[]")
    assert client.post(reverse("evaluator:embedding_new"), {"name": "e5", "path": str(folder)}).status_code == 302
    assert "multilingual-e5" in client.get(reverse("evaluator:index")).content.decode()
    assert "all-MiniLM-L6-v2" in client.get(reverse("evaluator:embedding_new")).content.decode()


def test_a_queued_run_page_polls_its_status_then_reloads(client, user):
    from runs.choices import RunStatus as Status
    from tests.evaluator.factories import dataset_make, evaluator_run_make

    run = evaluator_run_make(version=dataset_make(owner=user).latest_version, submitted_by=user, status=Status.QUEUED)
    page = client.get(reverse("evaluator:run", args=[run.pk])).content.decode()
    assert reverse("evaluator:run_status", args=[run.pk]) in page and 'hx-trigger="every 3s"' in page
    assert 'id="metric-summary"' not in page  # results wait for the end of the run
    polled = client.get(reverse("evaluator:run_status", args=[run.pk]), headers={"HX-Request": "true"})
    assert "HX-Refresh" not in polled and 'data-status="queued"' in polled.content.decode()
    EvaluationRun.objects.filter(pk=run.pk).update(status=Status.SUCCEEDED)
    done = client.get(reverse("evaluator:run_status", args=[run.pk]), headers={"HX-Request": "true"})
    assert done["HX-Refresh"] == "true" and "every 3s" not in done.content.decode()


def test_every_form_page_renders(client, user):
    for name in ("index", "dataset_new", "endpoint_new", "embedding_new", "run_new"):
        page = client.get(reverse(f"evaluator:{name}"))
        assert page.status_code == 200, name
    endpoint_page = client.get(reverse("evaluator:endpoint_new")).content.decode()
    assert (
        "stored encrypted and never shown again" in endpoint_page
        and "Nothing is ever sent outside your network" in endpoint_page
    )
    upload_page = client.get(reverse("evaluator:dataset_new")).content.decode()
    assert "|||" in upload_page and "context_1" in upload_page and "20000 rows" in upload_page
    nav = client.get(reverse("evaluator:index")).content.decode()
    assert f'href="{reverse("evaluator:index")}" aria-current="page">Evaluator</a>' in nav


def test_local_endpoint_must_be_inside_the_model_roots(client, user, tmp_path, tiny_model):
    fields = {
        "kind": "local",
        "base_url": "",
        "model_name": "",
        "secret_kind": "",
        "temperature": 0,
        "max_tokens": 64,
        "timeout_s": 30,
        "max_concurrency": 1,
        "max_retries": 0,
    }
    outside = client.post(reverse("evaluator:endpoint_new"), {**fields, "name": "far", "local_path": str(tmp_path)})
    assert "outside the allowed model roots" in outside.content.decode()
    assert (
        client.post(
            reverse("evaluator:endpoint_new"), {**fields, "name": "tiny", "local_path": str(tiny_model)}
        ).status_code
        == 302
    )
    endpoint = LLMEndpoint.objects.get(name="tiny")
    checked = client.post(reverse("evaluator:endpoint_check", args=[endpoint.pk])).content.decode()
    assert 'data-check="ok"' in checked and "weights load on a worker" in checked


def test_csv_export_keeps_spreadsheet_formulas_inert(client, user):
    """A shared golden set can carry "=HYPERLINK(...)"; the export must not hand it to Excel as a formula."""
    upload(client, 'question,reference,response\n"=HYPERLINK(""http://x"",""y"")",-15,-15\n@SUM(A1),+1,plain\n')
    version = GoldenDataset.objects.get().latest_version
    response = client.post(
        reverse("evaluator:run_new"),
        {
            "dataset_version": version.pk,
            "target_kind": "precomputed",
            "preset": "custom",
            "metrics": ["exact_match"],
            "prompt_template": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    run_id = EvaluationRun.objects.latest("pk").pk
    assert run_execute(run_id=run_id) == RunStatus.SUCCEEDED
    exported = client.get(reverse("evaluator:run_export", args=[run_id, "csv"])).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["question"] for r in rows] == ['\'=HYPERLINK("http://x","y")', "'@SUM(A1)"]
    assert [r["reference"] for r in rows] == ["'-15", "'+1"] and rows[0]["exact_match"] == "1.0"
    # JSON is for programs: values stay as they were entered.
    data = json.loads(client.get(reverse("evaluator:run_export", args=[run_id, "json"])).content)
    assert data["samples"][1]["question"] == "@SUM(A1)"
