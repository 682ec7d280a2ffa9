"""Reading golden datasets from CSV, JSONL (or a JSON array) and Excel files, with row-level validation.

Every problem names the row (1-based, as people count data rows; for CSV and Excel also the line or
sheet row, the header being line 1) and the field. All problems are collected before anything is
saved: a file with one bad row is refused whole, with the full list. The file is read as a stream
(``evaluator.dataset_readers``, ``evaluator.dataset_xlsx``): the limits in settings (DATASET_MAX_BYTES,
_ROWS, _COLUMNS, _FIELD_CHARS) hold before rows are built.

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

import io
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import IO, Any

from django.utils.translation import gettext as _

from evaluator.dataset_readers import (
    JSON_MAX_DEPTH,
    DatasetFileError,
    DatasetLimits,
    RecordError,
    RowProblem,
    csv_rows,
    file_problem,
    json_nesting_check,
    json_values,
    stream_size,
    too_large_message,
)
from evaluator.dataset_xlsx import xlsx_rows

__all__ = [
    "DatasetFileError",
    "DatasetLimits",
    "ParsedDataset",
    "RowData",
    "RowProblem",
    "dataset_file_parse",
    "split_text_list",
    "tags_parse",
    "text_unstorable",
]

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
# PostgreSQL stores neither a NUL nor a lone UTF-16 surrogate (which a JSON "\ud800" escape gives).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class RowData:
    question: str
    reference: str = ""
    contexts: tuple[str, ...] = ()
    response: str = ""
    tags: tuple[str, ...] = ()


@dataclass
class ParsedDataset:
    rows: list[RowData]
    warnings: list[str] = field(default_factory=list)

    @property
    def has_responses(self) -> bool:
        return bool(self.rows) and all(row.response for row in self.rows)


def text_unstorable(value: str) -> str | None:
    """Why the database cannot store ``value``, or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return _("contains a NUL character, which cannot be stored.")
    return _("contains a lone surrogate (\\u%(code)04x), which cannot be stored.") % {"code": ord(found.group())}


def _json_load(text: str) -> Any:
    """json.loads for one cell or form field, refusing deep nesting before the parser recurses into it."""
    try:
        json_nesting_check(text, JSON_MAX_DEPTH)
    except RecordError as exc:
        raise ValueError(exc.message) from None
    return json.loads(text)


def split_text_list(value: str) -> list[str]:
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        parsed = _json_load(text)  # the caller turns a ValueError into a row problem
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
        return tags_parse(_json_load(text))
    return [part.strip() for part in text.split(",") if part.strip()]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel gives 42.0 for a cell that reads 42
    return str(value).strip()


def _row_from_record(
    record: dict[str, Any],
    *,
    row: int,
    line: int | None,
    tabular: bool,
    limits: DatasetLimits,
    problems: list[RowProblem],
) -> RowData | None:
    start = len(problems)

    def problem(field_name: str, message: str) -> None:
        problems.append(RowProblem(row, field_name, message, line))

    def check(field_name: str, values: Sequence[str]) -> None:
        if sum(len(value) for value in values) > limits.max_field_chars:
            message = (
                _("is longer than %(n)s characters.")
                if field_name in texts
                else _("are longer than %(n)s characters in all.")
            )
            problem(field_name, message % {"n": limits.max_field_chars})
        if any(map(_UNSTORABLE.search, values)):
            problem(field_name, next(filter(None, map(text_unstorable, values))))

    if not _text(record.get("question")):
        problem("question", _("is empty; every row needs a question."))
    texts: dict[str, str] = {}
    for name in ("question", "reference", "response"):
        value = record.get(name)
        if value is not None and not isinstance(value, (str, int, float)):
            problem(name, _("must be text, not %(type)s.") % {"type": type(value).__name__})
        texts[name] = _text(value)
        check(name, [texts[name]])

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
    check("contexts", contexts)

    tags: list[str] = []
    try:
        tags = tags_parse(record.get("tags"))
    except ValueError as exc:
        problem("tags", _("cannot be read: %(error)s") % {"error": exc})
    check("tags", tags)
    if len(problems) > start:
        return None
    return RowData(
        question=texts["question"],
        reference=texts["reference"],
        contexts=tuple(contexts),
        response=texts["response"],
        tags=tuple(tags),
    )


def _map_header(
    header: list[str], problems: list[RowProblem], warnings: list[str]
) -> list[tuple[str, str | int] | None]:
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
                warnings.append(_("Column “%(column)s” is not used.") % {"column": raw[:100]})
            continue
        if target in seen:
            problems.append(
                RowProblem(
                    None,
                    target,
                    _("Columns “%(a)s” and “%(b)s” both give the %(field)s.")
                    % {"a": seen[target][:100], "b": raw[:100], "field": target},
                )
            )
        seen[target] = raw
        mapping.append(("field", target))
    if "question" not in seen:
        problems.append(
            RowProblem(
                None,
                "question",
                _("No question column: name one of %(names)s.") % {"names": ", ".join(FIELD_ALIASES["question"])},
            )
        )
    return mapping


def _table_records(
    rows: Iterator[tuple[int, Sequence[Any]]], limits: DatasetLimits, problems: list[RowProblem], warnings: list[str]
) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    """(line, record) per non-empty data row of a table whose first row is the header."""
    header: list[str] = []
    mapping: list[tuple[str, str | int] | None] = []
    try:
        for line, cells in rows:
            width = _width(cells)
            if not header and not mapping:
                if width > limits.max_columns:
                    raise file_problem(
                        _("The header has %(n)s columns; the limit is %(max)s.")
                        % {"n": width, "max": limits.max_columns}
                    )
                header = [_text(cell) for cell in cells[:width]] or [""]
                mapping = _map_header(header, problems, warnings)
                if problems:
                    return
            elif width > limits.max_columns:
                yield (
                    line,
                    RecordError(
                        _("has %(n)s columns; the limit is %(max)s.") % {"n": width, "max": limits.max_columns}
                    ),
                )
            elif width:  # blank lines between rows are common in hand-edited files
                yield line, _table_record(mapping, cells)
    except RecordError as exc:
        if exc.column is not None:
            exc.field = _column_field(header, mapping, exc.column)
        raise
    if not header:
        problems.append(RowProblem(None, "", _("The file is empty.")))


def _table_record(mapping: list[tuple[str, str | int] | None], cells: Sequence[Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"_context_columns": {}}
    for column, cell in zip(mapping, cells, strict=False):
        if column is None:
            continue
        kind, key = column
        if kind == "context":
            record["_context_columns"][key] = cell
        else:
            record[key] = cell
    return record


def _column_field(header: list[str], mapping: list[tuple[str, str | int] | None], column: int) -> str:
    if column < len(mapping) and mapping[column] is not None:
        kind, key = mapping[column]
        return "contexts" if kind == "context" else str(key)
    return header[column][:100] if column < len(header) else _("column %(n)s") % {"n": column + 1}


def _width(cells: Sequence[Any]) -> int:
    """The number of cells up to the last one that is not empty."""
    for index in range(len(cells), 0, -1):
        if _text(cells[index - 1]):
            return index
    return 0


def _json_records(values: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    for line, value in values:
        if isinstance(value, RecordError):
            yield line, value
        elif not isinstance(value, dict):
            yield line, RecordError(_("must be a JSON object with a “question”."))
        else:
            record: dict[str, Any] = {"_context_columns": {}}
            for key, cell in value.items():
                target = _ALIAS_TO_FIELD.get(str(key).strip().lower())
                if target is not None:
                    record[target] = cell
            yield line, record


def dataset_file_parse(
    *, filename: str, content: bytes | IO[bytes], limits: DatasetLimits | None = None
) -> ParsedDataset:
    """Rows of a golden dataset file (its bytes, or a binary file open for reading); raises DatasetFileError
    listing every problem. Read as a stream: the limits hold before rows are built."""
    limits = limits or DatasetLimits.from_settings()
    stream = io.BytesIO(content) if isinstance(content, (bytes, bytearray)) else content
    if stream_size(stream) > limits.max_bytes:
        raise file_problem(too_large_message(limits))
    suffix = PurePath(filename).suffix.lower()
    problems: list[RowProblem] = []
    warnings: list[str] = []
    tabular = suffix in (".csv", ".tsv", ".xlsx", ".xlsm")
    if suffix in (".csv", ".tsv", ".xlsx", ".xlsm"):
        source = (csv_rows if suffix in (".csv", ".tsv") else xlsx_rows)(stream, limits)
        records = _table_records(source, limits, problems, warnings)
    elif suffix in (".jsonl", ".json", ".ndjson"):
        source = json_values(stream, limits)
        records = _json_records(source)
    else:
        raise file_problem(
            _("Unsupported file type “%(suffix)s”: use .csv, .jsonl or .xlsx.") % {"suffix": suffix or filename[:100]}
        )
    rows: list[RowData] = []
    number = 0
    try:
        with closing(source), closing(records):
            for line, record in records:
                number += 1
                if number > limits.max_rows:
                    problems.append(
                        RowProblem(
                            None, "", _("The file has more than %(max)s rows (the limit).") % {"max": limits.max_rows}
                        )
                    )
                    break
                if isinstance(record, RecordError):
                    problems.append(RowProblem(number, record.field, record.message, line))
                    continue
                row = _row_from_record(record, row=number, line=line, tabular=tabular, limits=limits, problems=problems)
                if row is not None and not problems:  # once the file is refused, its rows are not kept
                    rows.append(row)
    except RecordError as exc:
        problems.append(RowProblem(number + 1, exc.field, exc.message, exc.line))
    except DatasetFileError as exc:
        problems.extend(exc.problems)
    if not number and not problems:
        problems.append(RowProblem(None, "", _("The file has no rows.")))
    if problems:
        raise DatasetFileError(problems)
    return ParsedDataset(rows=rows, warnings=warnings)
