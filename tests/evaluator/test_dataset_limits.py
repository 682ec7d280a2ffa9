"""Hostile golden-dataset uploads: every one is refused with a message naming the row and field, before rows are
built, and nothing is stored. Through the pages on PostgreSQL (which stores neither NUL nor lone surrogates),
with small limits set through settings so that the files stay small."""

import io
import json
import time
import tracemalloc
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from evaluator.datasets import DatasetFileError, dataset_file_parse
from evaluator.models import DatasetRow, DatasetVersion, GoldenDataset
from tests.factories import user_create

pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture
def user(client):
    user = user_create()
    client.force_login(user)
    return user


def post(client, content: bytes | str, name: str):
    data = content.encode() if isinstance(content, str) else content
    return client.post(reverse("evaluator:dataset_new"), {"name": "Hostile", "file": SimpleUploadedFile(name, data)})


def upload(client, content: bytes | str, name: str) -> str:
    """The page of a refused upload (it re-renders the form; a registered one redirects)."""
    response = post(client, content, name)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def assert_refused(page: str, *expected: str) -> None:
    assert "The file was not registered" in page or "errorlist" in page, page[-3000:]
    for part in expected:
        assert part in page, (part, page[page.find("dataset-problems") :][:2000])
    assert not GoldenDataset.objects.exists()
    assert not DatasetVersion.objects.exists()
    assert not DatasetRow.objects.exists()


def xlsx(rows: list[list], *, sheet_xml=None, extra: dict[str, bytes] | None = None) -> bytes:
    """A workbook written by openpyxl; ``sheet_xml`` rewrites its first sheet's XML, ``extra`` adds parts."""
    from openpyxl import Workbook

    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    if sheet_xml is None and not extra:
        return buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml" and sheet_xml:
                data = sheet_xml(data.decode()).encode()
            target.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            target.writestr(name, data)
    return out.getvalue()


# --- NUL and other characters the database cannot store ---------------------------------------------


def test_nul_in_csv_names_row_and_field(client, user):
    page = upload(client, "question,reference\nQ1,fine\nQ2,A\x00B\n", "golden.csv")
    assert_refused(page, "Row 2 (line 3), field “reference”: contains a NUL character, which cannot be stored.")


def test_nul_and_lone_surrogate_in_jsonl_name_row_and_field(client, user):
    lines = [
        json.dumps({"question": "Q1", "contexts": ["ok", "bad\u0000"]}),
        '{"question": "Q2", "tags": ["\\ud800"]}',
        json.dumps({"question": "Q3\u0000"}),
    ]
    page = upload(client, "\n".join(lines), "golden.jsonl")
    assert_refused(
        page,
        "Row 1 (line 1), field “contexts”: contains a NUL character",
        "Row 2 (line 2), field “tags”: contains a lone surrogate (\\ud800)",
        "Row 3 (line 3), field “question”: contains a NUL character",
    )


def test_nul_in_a_json_array_and_an_excel_cell(client, user):
    page = upload(client, json.dumps([{"question": "Q1"}, {"question": "Q2", "reference": "a\u0000"}]), "golden.json")
    assert_refused(page, "Row 2 (line 1), field “reference”: contains a NUL character")
    # XML cannot carry a NUL: a sheet that tries is not a workbook.
    page = upload(
        client, xlsx([["question"], ["Q1"]], sheet_xml=lambda s: s.replace("<t>Q1</t>", "<t>Q&#0;</t>")), "golden.xlsx"
    )
    assert_refused(page, "The Excel file cannot be read")


# --- Nesting ------------------------------------------------------------------------------------------


def test_deeply_nested_jsonl_json_and_csv_cell_are_refused(client, user):
    deep = "[" * 50_000 + "]" * 50_000
    page = upload(client, '{"question": "Q1"}\n{"question": "Q2", "x": ' + deep + "}\n", "golden.jsonl")
    assert_refused(page, "Row 2 (line 2): is nested more than 32 levels deep.")
    page = upload(client, '[{"question": "Q1"},\n {"question": "Q2", "contexts": ' + deep + "}]", "golden.json")
    assert_refused(page, "Row 2 (line 2): is nested more than 32 levels deep.")
    page = upload(client, f'question,contexts\nQ1,"{deep}"\n', "golden.csv")
    assert_refused(page, "Row 1 (line 2), field “contexts”: cannot be read: is nested more than 32 levels deep.")
    # 32 levels (the object and 31 lists) are read; the unknown key is ignored.
    client.post(
        reverse("evaluator:dataset_new"),
        {
            "name": "Deep enough",
            "file": SimpleUploadedFile(
                "golden.jsonl", ('{"question": "Q1", "x": ' + "[" * 31 + "]" * 31 + "}\n").encode()
            ),
        },
    )
    assert GoldenDataset.objects.get().name == "Deep enough"


# --- Long cells -----------------------------------------------------------------------------------------


def test_a_csv_field_over_131072_characters_is_read_and_one_over_the_limit_named(client, user):
    accepted = client.post(
        reverse("evaluator:dataset_new"),
        {
            "name": "Long",
            "file": SimpleUploadedFile("golden.csv", ("question,reference\nQ1," + "가" * 150_000 + "\n").encode()),
        },
        follow=True,
    )
    assert "Registered Long with 1 rows." in accepted.content.decode()
    assert len(DatasetRow.objects.get().reference) == 150_000
    GoldenDataset.objects.all().delete()
    page = upload(client, "question,notes,reference\nQ1,x," + "가" * 250_000 + "\n", "golden.csv")
    assert_refused(page, "Row 1 (line 2), field “reference”: is longer than 200000 characters.")


def test_an_over_long_jsonl_line_is_refused_without_being_parsed(client, user, settings):
    settings.DATASET_MAX_FIELD_CHARS = 10  # a line may hold 60 characters
    page = upload(client, '{"question": "Q1"}\n{"question": "' + "x" * 100 + '"}\n{"question": "Q3"}\n', "golden.jsonl")
    assert_refused(page, "Row 2 (line 2): is longer than 60 characters.")
    assert "Row 3" not in page and "Row 1" not in page


# --- Rows and columns ----------------------------------------------------------------------------------


def test_too_many_columns(client, user, settings):
    settings.DATASET_MAX_COLUMNS = 4
    assert_refused(
        upload(client, "question,a,b,c,d\nQ1,1,2,3,4\n", "golden.csv"), "The header has 5 columns; the limit is 4."
    )
    page = upload(client, "question,reference\nQ1,A\nQ2,A,,,,x\nQ3,A,,,,,,,\n", "golden.csv")
    assert_refused(page, "Row 2 (line 3): has 6 columns; the limit is 4.")
    assert "Row 3" not in page  # empty trailing cells do not count
    assert_refused(
        upload(client, xlsx([["question", "a", "b", "c", "d"], ["Q1"]]), "golden.xlsx"),
        "The sheet declares 5 columns (A1:E2); the limit is 4.",
    )
    # A sheet whose declared dimension understates its cells is caught row by row.
    lying = xlsx(
        [["question"], ["Q1"]],
        sheet_xml=lambda s: s.replace(
            "</is></c></row></sheetData>", '</is></c><c r="Z2"><v>7</v></c></row></sheetData>'
        ),
    )
    assert_refused(upload(client, lying, "golden.xlsx"), "Sheet row 2 has a cell in column 26; the limit is 4 columns.")
    separators = upload(client, "question\n" + "," * 1_000_000 + "\n", "golden.csv")
    assert_refused(
        separators,
        "Row 1 (line 2): has far more separators (commas or tabs) than a row of the largest allowed cells could have",
    )


def test_too_many_rows(client, user, settings):
    settings.DATASET_MAX_ROWS = 3
    four = ["Q1", "Q2", "Q3", "Q4"]
    assert_refused(
        upload(client, "question\n" + "\n".join(four) + "\n", "golden.csv"),
        "The file has more than 3 rows (the limit).",
    )
    assert_refused(
        upload(client, "\n".join(json.dumps({"question": q}) for q in four), "golden.jsonl"),
        "The file has more than 3 rows (the limit).",
    )
    assert_refused(
        upload(client, json.dumps([{"question": q} for q in four]), "golden.json"),
        "The file has more than 3 rows (the limit).",
    )
    assert_refused(
        upload(client, xlsx([["question"]] + [[q] for q in four]), "golden.xlsx"),
        "The sheet declares 5 rows (A1:A5); the limit is a header and 3 rows of data.",
    )
    no_dimension = xlsx(
        [["question"]] + [[q] for q in four], sheet_xml=lambda s: s.replace('<dimension ref="A1:A5"/>', "")
    )
    assert_refused(
        upload(client, no_dimension, "golden.xlsx"),
        "The sheet has more than 4 rows: a header and at most 3 rows of data.",
    )
    assert post(client, "question\n" + "\n".join(four[:3]) + "\n\n\n", "golden.csv").status_code == 302
    assert DatasetRow.objects.count() == 3


def test_repeated_sheet_rows_are_refused_before_openpyxl_parses_them(client, user):
    # openpyxl parses and drops each repeated row while keeping an element for it: 1M took it over a minute.
    repeated = xlsx(
        [["question"], ["Q1"]],
        sheet_xml=lambda s: s.replace("</sheetData>", '<row r="2"/>' * 1_000_000 + "</sheetData>"),
    )
    assert len(repeated) < 50_000
    started = time.perf_counter()
    assert_refused(
        upload(client, repeated, "golden.xlsx"),
        "Sheet row 2 comes after row 2: rows repeated or out of order are refused.",
    )
    assert time.perf_counter() - started < 20


def test_xml_elements_within_a_row_are_counted(client, user, settings):
    settings.DATASET_MAX_COLUMNS = 4  # at most 4 cells and 256 XML elements a row
    repeated_cells = xlsx(
        [["question"], ["Q1"]],
        sheet_xml=lambda s: s.replace('<c r="A2" t="inlineStr"><is><t>Q1</t></is></c>', '<c r="A2"><v>1</v></c>' * 5),
    )
    assert_refused(
        upload(client, repeated_cells, "golden.xlsx"), "Sheet row 2 has a cell in column 5; the limit is 4 columns."
    )
    runs = xlsx(
        [["question"], ["Q1"]],
        sheet_xml=lambda s: s.replace("<is><t>Q1</t></is>", "<is>" + "<r><t>a</t></r>" * 200 + "</is>"),
    )
    assert_refused(upload(client, runs, "golden.xlsx"), "Sheet row 2 holds more than 256 XML elements.")


# --- Size, zip bombs -----------------------------------------------------------------------------------


def test_an_oversize_upload_is_refused_before_it_is_read(client, user, settings):
    settings.DATASET_MAX_BYTES = 1000
    page = upload(client, "question\n" + "Q\n" * 500, "golden.csv")
    # A form error: the view never handed the file to the parser (which would refuse it too).
    assert_refused(page, 'id="id_file_error"><li>The file is larger than 1000\xa0bytes.</li>')
    assert "At most 1000\xa0bytes, 20000 rows and 64 columns, and 200000 characters in a cell" in page
    from tests.evaluator.factories import dataset_make

    dataset = dataset_make(owner=user)  # a new version of a dataset takes the same path
    versions = DatasetVersion.objects.count()
    page = client.post(
        reverse("evaluator:dataset", args=[dataset.pk]),
        {"upload-file": SimpleUploadedFile("v2.csv", b"question\n" + b"Q\n" * 500)},
    ).content.decode()
    assert 'id="id_upload-file_error"><li>The file is larger than 1000\xa0bytes.' in page
    assert DatasetVersion.objects.count() == versions


def test_a_file_spooled_to_disk_is_read_as_a_stream(client, user, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # Django writes every upload to a temporary file
    page = client.post(
        reverse("evaluator:dataset_new"),
        {"name": "Disk", "file": SimpleUploadedFile("golden.csv", "질문,정답\n연차는?,15일\n".encode("cp949"))},
        follow=True,
    ).content.decode()
    assert "Registered Disk with 1 rows." in page and DatasetRow.objects.get().reference == "15일"


def test_zip_bomb_and_shared_strings_caps(client, user, settings):
    settings.DATASET_MAX_BYTES = 100_000  # a workbook may unpack to 400 KB
    bomb = xlsx([["question"], ["Q1"]], extra={"xl/media/image1.png": b"\0" * 1_000_000})
    assert len(bomb) < 20_000
    assert_refused(upload(client, bomb, "golden.xlsx"), "The workbook unpacks to more than 390.6\xa0KB.")
    settings.DATASET_MAX_BYTES = 10 * 2**20
    # Parts openpyxl parses whole (styles, workbook...): a few hundred KB is fine, over 4 MB is not.
    small = xlsx([["question"], ["Q1"]], extra={"xl/extra.xml": b"<a>" + b"<b/>" * 80_000 + b"</a>"})
    assert post(client, small, "golden.xlsx").status_code == 302
    GoldenDataset.objects.all().delete()
    big = xlsx([["question"], ["Q1"]], extra={"xl/extra.xml": b"<a>" + b"<b/>" * 1_100_000 + b"</a>"})
    assert_refused(upload(client, big, "golden.xlsx"), "The workbook part xl/extra.xml unpacks to more than 4.0\xa0MB.")
    settings.DATASET_MAX_ROWS = 3  # at most 32 distinct texts
    strings = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + "".join(f"<si><t>text {i}</t></si>" for i in range(40))
        + "</sst>"
    ).encode()
    many = xlsx([["question"], ["Q1"]], extra={"xl/sharedStrings.xml": strings})
    assert_refused(upload(client, many, "golden.xlsx"), "The workbook holds more than 32 distinct texts.")
    runs = strings.replace(b"<si><t>text 0</t></si>", b"<si>" + b"<r><t>a</t></r>" * 1100 + b"</si>")
    runs = runs.replace(b"".join(b"<si><t>text %d</t></si>" % i for i in range(20, 40)), b"")
    assert_refused(
        upload(client, xlsx([["question"], ["Q1"]], extra={"xl/sharedStrings.xml": runs}), "golden.xlsx"),
        "The workbook holds more than 32 distinct texts.",
    )


def test_a_real_16384_column_workbook_is_refused_in_little_memory(client, user):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.cell(row=1, column=1, value="question")
    sheet.cell(row=1, column=16_384, value="notes")
    for row in range(2, 8_002):
        sheet.cell(row=row, column=1, value=f"q{row}")
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert len(buffer.getvalue()) < 100_000
    tracemalloc.start()
    try:
        page = upload(client, buffer.getvalue(), "golden.xlsx")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_refused(page, "The sheet declares 16384 columns (A1:XFD8001); the limit is 64.")
    assert peak < 50 * 2**20, peak  # the parser before the limits took 1.09 GB on this file


# --- The in-page row editor -------------------------------------------------------------------------------


def test_row_editor_refuses_nul_long_fields_and_bad_json(client, user, settings):
    from tests.evaluator.factories import dataset_make

    dataset = dataset_make(owner=user)
    url = reverse("evaluator:dataset", args=[dataset.pk])
    base = {
        "edit-position": "",
        "edit-question": "Q",
        "edit-reference": "",
        "edit-contexts": "",
        "edit-response": "",
        "edit-tags": "",
    }
    versions = DatasetVersion.objects.count()

    def refused(**fields) -> str:
        response = client.post(url + "?v=1", {**base, **{f"edit-{k}": v for k, v in fields.items()}})
        assert response.status_code == 200 and DatasetVersion.objects.count() == versions
        return response.content.decode()

    # A raw NUL never reaches the form: the site answers 400 to any request carrying one (config.middleware).
    assert client.post(url + "?v=1", {**base, "edit-question": "a\x00b"}).status_code == 400
    assert DatasetVersion.objects.count() == versions
    assert "cannot be read: is nested more than 32 levels deep." in refused(tags="[" * 40_000 + "]" * 40_000)
    assert "cannot be read: is nested more than 32 levels deep." in refused(contexts="[" * 40_000 + "]" * 40_000)
    assert "cannot be read:" in refused(tags="[oops")
    assert "contains a NUL character, which cannot be stored." in refused(contexts='["a\\u0000"]')
    assert "contains a lone surrogate" in refused(tags='["\\udfff"]')
    settings.DATASET_MAX_FIELD_CHARS = 10
    assert "Ensure this value has at most 10 characters (it has 11)." in refused(reference="x" * 11)
    assert 'maxlength="10"' in refused(question="")
    settings.DATASET_MAX_FIELD_CHARS = 200_000
    settings.DATASET_MAX_ROWS = DatasetVersion.objects.get(dataset=dataset, number=1).row_count
    assert "as many as a version may have: delete a row before adding one." in refused(question="one more")


def test_the_parser_stops_early_on_a_huge_json_array(settings):
    settings.DATASET_MAX_ROWS = 3
    content = ("[" + ",".join(["{}"] * 2_000_000) + "]").encode()
    tracemalloc.start()
    try:
        with pytest.raises(DatasetFileError, match="more than 3 rows"):
            dataset_file_parse(filename="a.json", content=content)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(content), peak  # the text itself (4 MB); json.loads built two million dicts
