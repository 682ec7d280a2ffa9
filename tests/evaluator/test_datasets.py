"""Golden datasets: CSV / JSONL / Excel parsing with row-level messages, and immutable versions."""

import io
import json

import pytest

from evaluator.datasets import DatasetFileError, dataset_file_parse
from evaluator.models import DatasetRow
from evaluator.services import dataset_create, dataset_version_edit, dataset_version_rows
from tests.factories import user_create

KOREAN_CSV = (
    "질문,정답,contexts,tags\n"
    '연차 휴가는 며칠인가요?,15일입니다.,"[""입사 1년 후 15일의 연차가 주어진다."", ""사용하지 않은 연차는 이월된다.""]","hr, 휴가"\n'  # noqa: E501
    "\n"
    'What is the VPN address?,vpn.example.internal,"The VPN is at vpn.example.internal\n|||\nUse your SSO login",it\n'
)


def test_csv_with_bom_korean_contexts_and_tags():
    parsed = dataset_file_parse(filename="golden.csv", content=("\ufeff" + KOREAN_CSV).encode("utf-8"))
    first, second = parsed.rows
    assert first.question == "연차 휴가는 며칠인가요?" and first.reference == "15일입니다."
    assert first.contexts == ("입사 1년 후 15일의 연차가 주어진다.", "사용하지 않은 연차는 이월된다.")
    assert first.tags == ("hr", "휴가")
    assert second.contexts == ("The VPN is at vpn.example.internal", "Use your SSO login")
    assert not parsed.has_responses


def test_cp949_csv_from_korean_excel_is_read():
    parsed = dataset_file_parse(filename="golden.csv", content="질문,정답\n안녕하세요?,네\n".encode("cp949"))
    assert parsed.rows[0].question == "안녕하세요?"


def test_jsonl_and_json_array_with_aliases():
    lines = [
        {"user_input": "Q1", "ground_truth": "A1", "retrieved_contexts": ["c1", "c2"], "response": "R1", "tags": ["x"]},
        {"question": "Q2", "reference": "A2", "response": "R2"},
    ]
    jsonl = "\n".join(json.dumps(line) for line in lines).encode()
    parsed = dataset_file_parse(filename="golden.jsonl", content=jsonl)
    assert [r.question for r in parsed.rows] == ["Q1", "Q2"] and parsed.rows[0].contexts == ("c1", "c2")
    assert parsed.has_responses
    assert dataset_file_parse(filename="golden.json", content=json.dumps(lines).encode()).rows == parsed.rows


def test_xlsx_with_context_columns():
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Question", "Answer", "context_1", "context_2", "notes"])
    sheet.append(["2+2?", 4, "arithmetic", None, "ignored"])
    sheet.append(["수도는?", "서울", "대한민국의 수도는 서울이다.", "부산은 항구 도시다.", None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    parsed = dataset_file_parse(filename="golden.xlsx", content=buffer.getvalue())
    assert parsed.rows[0].reference == "4" and parsed.rows[0].contexts == ("arithmetic",)
    assert parsed.rows[1].contexts == ("대한민국의 수도는 서울이다.", "부산은 항구 도시다.")
    assert any("notes" in warning for warning in parsed.warnings)


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        (
            "a.csv",
            b"question,reference\nQ1,A1\n,A2\nQ3,A3\n,A4\n",
            ["Row 2 (line 3), field “question”: is empty", "Row 4 (line 5), field “question”: is empty"],
        ),
        ("a.csv", b"query,reference\nQ1,A1\n", []),
        ("a.csv", b"reference,answer\nA,B\n", ["No question column"]),
        ("a.csv", b"question,query\nQ,Q\n", ["both give the question"]),
        ("a.csv", b'question,contexts\nQ1,"[not json"\n', ["Row 1 (line 2), field “contexts”: cannot be read"]),
        (
            "a.jsonl",
            b'{"question": "Q1"}\n{"question": \n["Q3"]\n',
            ["Row 2 (line 2): is not valid JSON", "Row 3 (line 3): must be a JSON object"],
        ),
        (
            "a.jsonl",
            b'{"question": "Q1", "contexts": "one string"}\n{"question": "Q2", "contexts": [1, 2]}\n',
            ["Row 2 (line 2), field “contexts”: cannot be read"],
        ),
        ("a.jsonl", b'{"question": {"nested": true}}\n', ["Row 1 (line 1), field “question”: must be text"]),
        ("a.txt", b"question\nQ\n", ["Unsupported file type"]),
        ("a.csv", b"", ["The file is empty"]),
        ("a.xlsx", b"not a workbook", ["The Excel file cannot be read"]),
        ("a.csv", b"question\n" + "\x80\xff".encode("latin-1") * 3, ["neither UTF-8 nor CP949"]),
    ],
)
def test_problems_name_the_row_and_field(filename, content, expected):
    if not expected:
        assert dataset_file_parse(filename=filename, content=content).rows
        return
    with pytest.raises(DatasetFileError) as caught:
        dataset_file_parse(filename=filename, content=content)
    message = str(caught.value)
    for part in expected:
        assert part in message, message
    assert len(caught.value.problems) >= len(expected)


@pytest.mark.django_db
def test_versions_are_immutable_and_editing_makes_a_new_one():
    owner = user_create()
    parsed = dataset_file_parse(filename="golden.csv", content=KOREAN_CSV.encode())
    dataset = dataset_create(name="HR FAQ", rows=parsed.rows, owner=owner, source="golden.csv")
    v1 = dataset.latest_version
    assert v1.number == 1 and v1.row_count == 2 and v1.source == "golden.csv"
    edited = parsed.rows[0].__class__(question="연차는 며칠?", reference="15일", tags=("hr",))
    v2 = dataset_version_edit(version=v1, edits={1: edited, 2: None}, additions=[parsed.rows[1]], edited_by=owner)
    assert v2.number == 2 and [r.question for r in dataset_version_rows(version=v2)] == [
        "연차는 며칠?",
        "What is the VPN address?",
    ]
    assert [r.question for r in dataset_version_rows(version=v1)] == [
        "연차 휴가는 며칠인가요?",
        "What is the VPN address?",
    ]
    assert DatasetRow.objects.filter(version=v1).count() == 2 and dataset.latest_version == v2


def test_size_and_row_limits_are_explained(settings):
    settings.DATASET_MAX_ROWS = 2
    with pytest.raises(DatasetFileError, match=r"The file has more than 2 rows \(the limit\)\."):
        dataset_file_parse(filename="a.csv", content=b"question\nQ1\nQ2\nQ3\n")
    settings.DATASET_MAX_BYTES = 2 * 2**20
    with pytest.raises(DatasetFileError, match="larger than 2.0\\xa0MB"):
        dataset_file_parse(filename="a.csv", content=b"question\n" + b"Q" * (2 * 2**20))


def test_a_long_korean_field_is_refused_naming_it(settings):
    settings.DATASET_MAX_FIELD_CHARS = 10
    with pytest.raises(DatasetFileError, match="Row 1 \\(line 2\\), field “reference”: is longer than 10"):
        dataset_file_parse(filename="a.csv", content="question,reference\n질문,아주 아주 아주 긴 정답입니다\n".encode())
