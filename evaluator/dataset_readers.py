"""Reading golden dataset files as streams, every limit enforced before rows are built.

Nothing here builds the whole file: CSV goes record by record, JSONL line by line, a JSON array item by item,
and an Excel workbook is first checked with a cheap pass of its own (see ``xlsx_rows``). The readers yield raw
records; ``evaluator.datasets`` numbers them and turns them into rows.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext as _

_CHUNK = 1 << 20
# A row needs two levels (an object holding a list of contexts); anything much deeper is hostile.
JSON_MAX_DEPTH = 32


@dataclass(frozen=True)
class DatasetLimits:
    max_bytes: int
    max_rows: int
    max_columns: int
    max_field_chars: int
    max_depth: int = JSON_MAX_DEPTH

    @classmethod
    def from_settings(cls) -> DatasetLimits:
        return cls(
            max_bytes=settings.DATASET_MAX_BYTES,
            max_rows=settings.DATASET_MAX_ROWS,
            max_columns=settings.DATASET_MAX_COLUMNS,
            max_field_chars=settings.DATASET_MAX_FIELD_CHARS,
        )

    @property
    def max_record_chars(self) -> int:
        # A JSON line or array item: five fields, or one at the limit written with \uXXXX escapes (json.dumps'
        # default turns each Korean character into six).
        return 6 * self.max_field_chars


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
        super().__init__(
            "\n".join(str(p) for p in problems[:50])
            + ("\n" + _("…and %(n)s more problems.") % {"n": len(problems) - 50} if len(problems) > 50 else "")
        )


class RecordError(Exception):
    """One record that cannot be read. Raised, it stops the reading (the rest of the file cannot be trusted);
    yielded by the JSON readers, it is a problem of that row only. The caller adds the row number."""

    def __init__(self, message: str, *, line: int | None = None, field: str = "", column: int | None = None):
        super().__init__(message)
        self.message, self.line, self.field = message, line, field
        self.column = column  # of a table, from 0; the caller names the field from the header


def file_problem(message: str) -> DatasetFileError:
    return DatasetFileError([RowProblem(None, "", message)])


def too_large_message(limits: DatasetLimits) -> str:
    from django.template.defaultfilters import filesizeformat

    return _("The file is larger than %(size)s.") % {"size": filesizeformat(limits.max_bytes)}


def stream_size(stream: IO[bytes]) -> int:
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def text_encoding(stream: IO[bytes]) -> str:
    """UTF-8 (with or without BOM), else CP949 ("ANSI" in Korean Windows), checked over the whole file
    without keeping the decoded text."""
    for encoding in ("utf-8-sig", "cp949"):
        decoder = codecs.getincrementaldecoder(encoding)()
        stream.seek(0)
        try:
            while chunk := stream.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        stream.seek(0)
        return encoding
    raise file_problem(_("The file is neither UTF-8 nor CP949 text."))


@contextmanager
def _decoded(stream: IO[bytes], encoding: str, newline: str | None):
    text = io.TextIOWrapper(stream, encoding=encoding, newline=newline)
    try:
        yield text
    finally:
        text.detach()  # the caller owns the file: leave it open


# --- CSV ------------------------------------------------------------------------------------


class _TooManySeparators(Exception):
    pass


class _RecordFeed:
    """The lines csv.reader pulls, with the separators of the current record counted: a line of commas
    would otherwise become one list of millions of empty fields."""

    def __init__(self, text: IO[str], delimiter: str, max_separators: int):
        self.text, self.delimiter, self.max_separators = text, delimiter, max_separators
        self.lines = self.separators = 0
        self.record_line = 1
        self.record_lines: list[str] = []

    def next_record(self) -> None:
        self.separators, self.record_line, self.record_lines = 0, self.lines + 1, []

    def __iter__(self):
        for line in self.text:
            self.lines += 1
            self.separators += line.count(self.delimiter)
            if self.separators > self.max_separators:
                raise _TooManySeparators
            self.record_lines.append(line)
            yield line

    def long_cell(self, max_chars: int) -> int | None:
        """Which cell of the current record is longer than ``max_chars``: the reader stopped inside it. Read
        again with the limit lifted, unless the record is so long that reading it is the harm."""
        if sum(map(len, self.record_lines)) > 10 * max_chars:
            return None
        previous = csv.field_size_limit(10 * max_chars + 1)
        try:
            cells = next(csv.reader(self.record_lines, delimiter=self.delimiter), [])
        except csv.Error:
            return None
        finally:
            csv.field_size_limit(previous)
        return next((index for index, cell in enumerate(cells) if len(cell) > max_chars), None)


def csv_rows(stream: IO[bytes], limits: DatasetLimits) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, cells) per record; the header is line 1."""
    encoding = text_encoding(stream)
    sample = stream.read(4096).decode(encoding, errors="ignore")
    stream.seek(0)
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    # The module-wide limit (131,072 by default) is set per parse: one character over the cell limit still
    # parses, so that the row check names the row and field; anything longer stops the reader there.
    csv.field_size_limit(limits.max_field_chars + 1)
    with _decoded(stream, encoding, newline="") as text:
        # Quoted text may hold commas; past this many the row list itself is the blow-up.
        feed = _RecordFeed(text, delimiter, max_separators=limits.max_columns + 2 * limits.max_field_chars)
        reader = csv.reader(feed, delimiter=delimiter)
        while True:
            feed.next_record()
            try:
                cells = next(reader, None)
            except _TooManySeparators:
                raise RecordError(
                    _(
                        "has far more separators (commas or tabs) than a row of the largest allowed cells "
                        "could have: is a closing quote missing?"
                    ),
                    line=feed.record_line,
                ) from None
            except csv.Error as exc:
                if "field larger than field limit" not in str(exc):
                    raise RecordError(
                        _("cannot be read as CSV: %(error)s") % {"error": exc}, line=feed.record_line
                    ) from None
                raise RecordError(
                    _("is longer than %(n)s characters.") % {"n": limits.max_field_chars},
                    line=feed.record_line,
                    column=feed.long_cell(limits.max_field_chars),
                ) from None
            if cells is None:
                return
            yield feed.record_line, cells


# --- JSON and JSONL -------------------------------------------------------------------------

# A string (to its closing quote, or to the end of an unterminated one, never backtracking) or a bracket.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]++|\\.?)*+(?:"|\Z)|[\[\]{}]', re.DOTALL)
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def json_extent(text: str, start: int, *, max_depth: int, max_chars: int) -> int:
    """Where the JSON array or object opening at ``text[start]`` ends, found without parsing it (brackets inside
    strings don't count). RecordError when it is nested deeper than ``max_depth`` or longer than ``max_chars``;
    ``len(text)`` when it never closes (the parser then says what is wrong)."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text, start, start + max_chars):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            if depth > max_depth:
                raise RecordError(_("is nested more than %(n)s levels deep.") % {"n": max_depth})
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return token.end()
    if len(text) > start + max_chars:
        raise RecordError(_("is longer than %(n)s characters.") % {"n": max_chars})
    return len(text)


def json_nesting_check(text: str, max_depth: int) -> None:
    """RecordError when ``text`` (a line or cell, already bounded in length) nests deeper than ``max_depth``."""
    # Fewer brackets than the limit cannot nest past it: most rows are settled without a scan.
    if text[:1] in ("[", "{") and text.count("[") + text.count("{") > max_depth:
        json_extent(text, 0, max_depth=max_depth, max_chars=len(text))


def _json_value(text: str, limits: DatasetLimits) -> Any:
    json_nesting_check(text, limits.max_depth)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RecordError(_("is not valid JSON: %(error)s") % {"error": exc}) from None


def _starts_with_bracket(stream: IO[bytes], encoding: str) -> bool:
    stream.seek(0)
    try:
        while chunk := stream.read(_CHUNK):
            head = chunk.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
            if head:
                return head.startswith("[")
        return False
    finally:
        stream.seek(0)


def json_values(stream: IO[bytes], limits: DatasetLimits) -> Iterator[tuple[int, Any]]:
    """(line, value) per JSONL line or JSON array item; a value that cannot be read comes as a RecordError."""
    encoding = text_encoding(stream)
    array = _starts_with_bracket(stream, encoding)
    with _decoded(stream, encoding, newline=None) as text:
        yield from (_array_values(text.read(), limits) if array else _line_values(text, limits))


def _line_values(text: IO[str], limits: DatasetLimits) -> Iterator[tuple[int, Any]]:
    limit = limits.max_record_chars
    number = 0
    while line := text.readline(limit + 1):
        number += 1
        if len(line) > limit and not line.endswith("\n"):
            while line and not line.endswith("\n"):  # skip the rest of it, a bounded piece at a time
                line = text.readline(limit + 1)
            yield number, RecordError(_("is longer than %(n)s characters.") % {"n": limit})
            continue
        if line.strip():
            try:
                yield number, _json_value(line.strip(), limits)
            except RecordError as exc:
                yield number, exc


def _array_values(content: str, limits: DatasetLimits) -> Iterator[tuple[int, Any]]:
    """The items of a JSON array one at a time: json.loads would build every item (a few bytes each) at once."""
    decoder = json.JSONDecoder()
    pos = _JSON_SPACE.match(content, content.index("[") + 1).end()
    line, counted = 1, 0
    closed = content.startswith("]", pos)
    while not closed:
        line, counted = line + content.count("\n", counted, pos), pos
        try:
            if content[pos : pos + 1] in ("[", "{"):
                json_extent(content, pos, max_depth=limits.max_depth, max_chars=limits.max_record_chars)
            value, pos = decoder.raw_decode(content, pos)
        except RecordError as exc:
            exc.line = line
            raise
        except ValueError as exc:
            raise file_problem(_("The file is not valid JSON: %(error)s") % {"error": exc}) from None
        yield line, value
        pos = _JSON_SPACE.match(content, pos).end()
        closed = content.startswith("]", pos)
        if not closed:
            if not content.startswith(",", pos):
                error = json.JSONDecodeError("Expecting ',' delimiter", content, pos)
                raise file_problem(_("The file is not valid JSON: %(error)s") % {"error": error})
            pos = _JSON_SPACE.match(content, pos + 1).end()
    pos = _JSON_SPACE.match(content, pos + 1).end()
    if pos != len(content):
        error = json.JSONDecodeError("Extra data", content, pos)
        raise file_problem(_("The file is not valid JSON: %(error)s") % {"error": error})
