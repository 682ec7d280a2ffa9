"""Reading golden datasets from CSV, JSONL (or a JSON array) and Excel files, with row-level validation.

Every problem names the row (1-based, as people count data rows; for CSV and Excel also the line or
sheet row, the header being line 1) and the field. All problems are collected before anything is
saved: a file with one bad row is refused whole, with the full list.

Columns (header names are case-insensitive; common aliases accepted):

- ``question`` (required): question, query, user_input, prompt, 질문
- ``reference``: reference, ground_truth, reference_answer, expected_answer, answer, 정답
- ``contexts``: contexts, retrieved_contexts, context, documents, 문맥 — in CSV and Excel a JSON list
  (``["first passage", "second passage"]``), or passages separated by a line with ``|||``; or
  several columns ``context_1``, ``context_2``... In JSONL a list of strings.
- ``response``: response, answer_generated, generated_answer, model_answer, 응답 — an answer computed elsewhere.
- ``tags``: tags, tag, category, 태그 — comma-separated, or a JSON list.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from django.utils.translation import gettext as _

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 20_000
MAX_FIELD_CHARS = 200_000
CONTEXT_SEPARATOR = "|||"

FIELD_ALIASES = {
    "question": ("question", "query", "user_input", "prompt", "질문"),
    "reference": ("reference", "ground_truth", "reference_answer", "expected_answer", "answer", "정답"),
    "contexts": ("contexts", "retrieved_contexts", "context", "documents", "문맥"),
    "response": ("response", "answer_generated", "generated_answer", "model_answer", "응답"),
    "tags": ("tags", "tag", "category", "태그"),
}
_ALIAS_TO_FIELD = {alias: name for name, aliases in FIELD_ALIASES.items() for alias in aliases}
_CONTEXT_COLUMN = re.compile(r"^(?:context|retrieved_context)_(\d+)$")


@dataclass(frozen=True)
class RowData:
    question: str
    reference: str = ""
    contexts: tuple[str, ...] = ()
    response: str = ""
    tags: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"question": self.question, "reference": self.reference, "contexts": list(self.contexts),
                "response": self.response, "tags": list(self.tags)}


@dataclass(frozen=True)
class RowProblem:
    row: int | None  # None: the file as a whole
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        if self.row is None:
            return self.message
        where = _("Row %(row)s") % {"row": self.row}
        if self.line is not None:
            where += " " + _("(line %(line)s)") % {"line": self.line}
        if self.field:
            where += ", " + _("field “%(field)s”") % {"field": self.field}
        return f"{where}: {self.message}"


class DatasetFileError(ValueError):
    """The file cannot be registered; ``problems`` lists every reason, row by row."""

    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems[:50]) + (
            "\n" + _("…and %(n)s more problems.") % {"n": len(problems) - 50} if len(problems) > 50 else ""))


@dataclass
class ParsedDataset:
    rows: list[RowData]
    warnings: list[str] = field(default_factory=list)

    @property
    def has_responses(self) -> bool:
        return bool(self.rows) and all(row.response for row in self.rows)


def _decode(content: bytes) -> str:
    # Korean spreadsheets are often saved as CP949 ("ANSI" in Korean Windows); UTF-8 (with or without BOM) first.
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DatasetFileError([RowProblem(None, "", _("The file is neither UTF-8 nor CP949 text."))])


def split_text_list(value: str) -> list[str]:
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        parsed = json.loads(text)  # the caller turns a ValueError into a row problem
        if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
            raise ValueError(_("a JSON list of strings was expected"))
        return [item.strip() for item in parsed if item.strip()]
    return [part.strip() for part in re.split(r"\n?\s*\|\|\|\s*\n?", text) if part.strip()]


def tags_parse(value: Any) -> list[str]:
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ValueError(_("tags must be strings"))
        return [item.strip() for item in value if item.strip()]
    text = str(value or "").strip()
    if text.startswith("["):
        return tags_parse(json.loads(text))
    return [part.strip() for part in text.split(",") if part.strip()]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel gives 42.0 for a cell that reads 42
    return str(value).strip()


def _row_from_record(record: dict[str, Any], *, row: int, line: int | None, tabular: bool,
                     problems: list[RowProblem]) -> RowData | None:
    start = len(problems)

    def problem(field_name: str, message: str) -> None:
        problems.append(RowProblem(row, field_name, message, line))

    question = _text(record.get("question"))
    if not question:
        problem("question", _("is empty; every row needs a question."))
    texts = {}
    for name in ("question", "reference", "response"):
        value = record.get(name)
        if value is not None and not isinstance(value, (str, int, float)):
            problem(name, _("must be text, not %(type)s.") % {"type": type(value).__name__})
        texts[name] = _text(value)
        if len(texts[name]) > MAX_FIELD_CHARS:
            problem(name, _("is longer than %(n)s characters.") % {"n": MAX_FIELD_CHARS})

    contexts: list[str] = []
    raw_contexts = record.get("contexts")
    try:
        if isinstance(raw_contexts, list):
            if not all(isinstance(item, str) for item in raw_contexts):
                raise ValueError(_("a list of strings was expected"))
            contexts = [item.strip() for item in raw_contexts if item.strip()]
        elif raw_contexts is not None and not tabular and not isinstance(raw_contexts, str):
            raise ValueError(_("a list of strings was expected"))
        elif raw_contexts is not None:
            contexts = split_text_list(_text(raw_contexts))
    except ValueError as exc:
        problem("contexts", _("cannot be read: %(error)s") % {"error": exc})
    contexts += [_text(v) for _k, v in sorted(record.get("_context_columns", {}).items()) if _text(v)]
    if sum(len(c) for c in contexts) > MAX_FIELD_CHARS:
        problem("contexts", _("are longer than %(n)s characters in all.") % {"n": MAX_FIELD_CHARS})

    tags: list[str] = []
    try:
        tags = tags_parse(record.get("tags"))
    except ValueError as exc:
        problem("tags", _("cannot be read: %(error)s") % {"error": exc})
    if len(problems) > start:
        return None
    return RowData(question=texts["question"], reference=texts["reference"], contexts=tuple(contexts),
                   response=texts["response"], tags=tuple(tags))


def _map_header(header: list[str], problems: list[RowProblem], warnings: list[str]) -> list[tuple[str, str | int] | None]:
    """Per column: ("field", name), ("context", n) or None (ignored)."""
    mapping: list[tuple[str, str | int] | None] = []
    seen: dict[str, str] = {}
    for raw in header:
        name = (raw or "").strip().lower().replace(" ", "_")
        context = _CONTEXT_COLUMN.match(name)
        if context:
            mapping.append(("context", int(context.group(1))))
            continue
        target = _ALIAS_TO_FIELD.get(name)
        if target is None:
            mapping.append(None)
            if name:
                warnings.append(_("Column “%(column)s” is not used.") % {"column": raw})
            continue
        if target in seen:
            problems.append(RowProblem(None, target, _("Columns “%(a)s” and “%(b)s” both give the %(field)s.")
                                       % {"a": seen[target], "b": raw, "field": target}))
        seen[target] = raw
        mapping.append(("field", target))
    if "question" not in seen:
        problems.append(RowProblem(None, "question", _("No question column: name one of %(names)s.")
                                   % {"names": ", ".join(FIELD_ALIASES["question"])}))
    return mapping


def _records_from_table(rows: list[list[Any]], problems: list[RowProblem], warnings: list[str]):
    """(row number, line, record) per non-empty data row of a table whose first row is the header."""
    if not rows:
        problems.append(RowProblem(None, "", _("The file is empty.")))
        return
    mapping = _map_header([_text(cell) for cell in rows[0]], problems, warnings)
    number = 0
    for index, cells in enumerate(rows[1:], start=2):
        if not any(_text(cell) for cell in cells):
            continue  # blank lines between rows are common in hand-edited files
        number += 1
        record: dict[str, Any] = {"_context_columns": {}}
        for column, cell in zip(mapping, cells, strict=False):
            if column is None:
                continue
            kind, key = column
            if kind == "context":
                record["_context_columns"][key] = cell
            else:
                record[key] = cell
        yield number, index, record


def _table_rows_csv(text: str) -> list[list[str]]:
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def _table_rows_xlsx(content: bytes, problems: list[RowProblem]) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        problems.append(RowProblem(None, "", _("The Excel file cannot be read: %(error)s") % {"error": exc}))
        return []
    sheet = workbook.worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    workbook.close()
    return rows


def dataset_file_parse(*, filename: str, content: bytes) -> ParsedDataset:
    """Rows of a golden dataset file; raises DatasetFileError listing every problem."""
    problems: list[RowProblem] = []
    warnings: list[str] = []
    if len(content) > MAX_BYTES:
        raise DatasetFileError([RowProblem(None, "", _("The file is larger than %(mb)s MB.") % {"mb": MAX_BYTES // 2**20})])
    suffix = PurePath(filename).suffix.lower()
    records: list[tuple[int, int | None, dict[str, Any]]] = []
    tabular = suffix in (".csv", ".tsv", ".xlsx", ".xlsm")
    if suffix in (".csv", ".tsv"):
        records = list(_records_from_table(_table_rows_csv(_decode(content)), problems, warnings))
    elif suffix in (".xlsx", ".xlsm"):
        table = _table_rows_xlsx(content, problems)
        if not problems:
            records = list(_records_from_table(table, problems, warnings))
    elif suffix in (".jsonl", ".json", ".ndjson"):
        records = _records_from_json(_decode(content), problems)
    else:
        raise DatasetFileError([RowProblem(None, "", _("Unsupported file type “%(suffix)s”: use .csv, .jsonl or .xlsx.")
                                           % {"suffix": suffix or filename})])
    if not records and not problems:
        problems.append(RowProblem(None, "", _("The file has no rows.")))
    if len(records) > MAX_ROWS:
        problems.append(RowProblem(None, "", _("The file has %(n)s rows; the limit is %(max)s.") % {"n": len(records), "max": MAX_ROWS}))
    rows = []
    if not problems:
        for number, line, record in records:
            parsed = _row_from_record(record, row=number, line=line, tabular=tabular, problems=problems)
            if parsed is not None:
                rows.append(parsed)
    if problems:
        raise DatasetFileError(problems)
    return ParsedDataset(rows=rows, warnings=warnings)


def _records_from_json(text: str, problems: list[RowProblem]) -> list[tuple[int, int | None, dict[str, Any]]]:
    stripped = text.lstrip()
    items: list[tuple[int, int | None, Any]] = []
    if stripped.startswith("["):
        try:
            items = [(i, None, item) for i, item in enumerate(json.loads(stripped), start=1)]
        except ValueError as exc:
            problems.append(RowProblem(None, "", _("The file is not valid JSON: %(error)s") % {"error": exc}))
            return []
    else:
        number = 0
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            number += 1
            try:
                items.append((number, line_number, json.loads(line)))
            except ValueError as exc:
                problems.append(RowProblem(number, "", _("is not valid JSON: %(error)s") % {"error": exc}, line_number))
    records = []
    for number, line, value in items:
        if not isinstance(value, dict):
            problems.append(RowProblem(number, "", _("must be a JSON object with a “question”."), line))
            continue
        record: dict[str, Any] = {"_context_columns": {}}
        for key, cell in value.items():
            target = _ALIAS_TO_FIELD.get(str(key).strip().lower())
            if target is not None:
                record[target] = cell
        records.append((number, line, record))
    return records
