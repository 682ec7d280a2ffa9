"""The first sheet of an Excel workbook, read without letting a small file take gigabytes or minutes.

openpyxl's read-only mode streams cells, but (3.1) it pads every row to the sheet's declared width (a 68 KB file
declaring 16,384 columns took 1.09 GB), parses and silently drops repeated or out-of-order rows while keeping an
element for each (a 28 KB file of a million ``<row r="2"/>`` took two minutes), scans to the end any sheet that
declares no dimension when the workbook is opened, and loads every shared string with a slow parser. So before
openpyxl reads a part, a pass of our own with the C XML parser (building no tree) checks the zip (unpacked sizes),
the shared strings (size and count) and the worksheets (declared dimension; every row and cell of the first
sheet, and of any sheet that declares no dimension). openpyxl is then asked for those rows only.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any
from xml.etree import ElementTree

from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from evaluator.dataset_readers import DatasetFileError, DatasetLimits, file_problem

# An xlsx is compressed XML: a legitimate one rarely unpacks to more than a few times its size.
_UNPACKED_FACTOR = 4
# Parts openpyxl parses whole into a tree (workbook, styles, theme, relationships); real ones are far smaller.
_MAX_OTHER_PART = 4 * 2**20
# Distinct texts in the shared-strings table, per row allowed: question, reference, response, tags, contexts.
_STRINGS_PER_ROW = 8
# Elements of a sheet before its rows (column widths, views, ...), which openpyxl keeps until the rows start.
_MAX_PRELUDE = 10_000
# XML elements per cell: a value, or an inline or shared text in formatted runs.
_ELEMENTS_PER_CELL = 64


def xlsx_rows(stream: IO[bytes], limits: DatasetLimits) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(sheet row, values) per row of the first sheet, at most ``limits.max_columns`` values each."""
    with _readable(), zipfile.ZipFile(stream) as archive:
        _archive_check(archive, limits)
        workbook = _workbook_open(stream)
        try:
            sheet = workbook.worksheets[0]
            # openpyxl has no public name for a sheet's part; the tests cover this pinned version.
            with archive.open(sheet._worksheet_path) as source:
                last_row = _sheet_scan(source, limits, whole=True)
            if last_row:
                rows = sheet.iter_rows(max_row=last_row, max_col=limits.max_columns, values_only=True)
                for number, values in enumerate(rows, start=1):
                    yield number, values
                    if number == last_row:
                        break  # openpyxl would parse on to the end of the part, looking for more rows
        finally:
            workbook.close()


@contextmanager
def _readable():
    from openpyxl.utils.exceptions import CellCoordinatesException

    try:
        yield
    except DatasetFileError:
        raise
    except (
        CellCoordinatesException,
        zipfile.BadZipFile,
        ElementTree.ParseError,
        zlib.error,
        OSError,
        EOFError,
        KeyError,
        IndexError,
        ValueError,
        RuntimeError,
        NotImplementedError,
    ) as exc:  # RuntimeError: an encrypted member
        raise _unreadable(exc) from None


def _unreadable(error: object) -> DatasetFileError:
    return file_problem(_("The Excel file cannot be read: %(error)s") % {"error": error})


def _workbook_open(stream: IO[bytes]):
    from openpyxl import load_workbook

    stream.seek(0)
    try:
        return load_workbook(stream, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise _unreadable(exc) from None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _archive_check(archive: zipfile.ZipFile, limits: DatasetLimits) -> None:
    infos = archive.infolist()
    unpacked = _UNPACKED_FACTOR * limits.max_bytes
    if sum(info.file_size for info in infos) > unpacked:
        raise file_problem(_("The workbook unpacks to more than %(size)s.") % {"size": filesizeformat(unpacked)})
    for info in infos:
        # By what the part is, not by its name: openpyxl finds parts through the package's own references.
        kind = _root_element(archive, info)
        # A worksheet is streamed (and checked below); the shared strings are loaded whole.
        cap = {"worksheet": unpacked, "sst": limits.max_bytes}.get(kind, _MAX_OTHER_PART)
        if info.file_size > cap:
            raise file_problem(
                _("The workbook part %(part)s unpacks to more than %(size)s.")
                % {"part": info.filename[:100], "size": filesizeformat(cap)}
            )
        with archive.open(info) as source:
            if kind == "worksheet":
                _sheet_scan(source, limits, whole=False)
            elif kind == "sst":
                _strings_scan(source, limits)


def _root_element(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    with archive.open(info) as source:
        try:
            for _event, element in ElementTree.iterparse(source, events=("start",)):
                return _local(element.tag)
        except ElementTree.ParseError:
            return ""  # not XML (an image...): openpyxl does not read it in read-only mode
    return ""


class _Stop(Exception):
    pass


def _feed(source: IO[bytes], target) -> None:
    """Runs the C XML parser over a part with ``target`` seeing each element's start and end: no tree is
    built, so memory stays flat whatever the part holds. The target raises _Stop to end early."""
    parser = ElementTree.XMLParser(target=target)
    try:
        while chunk := source.read(1 << 16):
            parser.feed(chunk)
        parser.close()
    except _Stop:
        pass


class _StringsScan:
    def __init__(self, limits: DatasetLimits):
        self.cap = (limits.max_rows + 1) * _STRINGS_PER_ROW
        self.count = self.elements = 0

    def start(self, tag: str, _attrib: dict) -> None:
        self.elements += 1
        self.count += tag.endswith("}si") or tag == "si"
        if self.count > self.cap or self.elements > self.cap * _ELEMENTS_PER_CELL:
            raise file_problem(_("The workbook holds more than %(n)s distinct texts.") % {"n": self.cap})

    def end(self, _tag: str) -> None:
        pass


def _strings_scan(source: IO[bytes], limits: DatasetLimits) -> None:
    _feed(source, _StringsScan(limits))


class _SheetScan:
    """Refuses a worksheet part with too many rows or columns, rows repeated or out of order, or too much
    before its rows; ``last_row`` is the last row number. Unless ``whole``, a declared dimension ends the scan:
    openpyxl reads no further in a sheet other than the first."""

    def __init__(self, limits: DatasetLimits, *, whole: bool):
        from openpyxl.utils.cell import get_column_letter

        self.limits, self.whole = limits, whole
        self.last_letters = get_column_letter(limits.max_columns)
        self.max_elements = limits.max_columns * _ELEMENTS_PER_CELL
        self.depth = self.data_depth = 0  # data_depth: of the open sheetData element
        self.last_row = self.cells = self.elements = self.prelude = 0

    def start(self, tag: str, attrib: dict) -> None:
        # Called for every element of the sheet: the common cases (a cell, its value) come first.
        self.depth += 1
        name = tag[tag.rfind("}") + 1 :]
        if self.data_depth:
            self.elements += 1
            if name == "c":
                self.cells += 1
                letters = (attrib.get("r") or "").rstrip("0123456789")
                if (
                    self.cells > self.limits.max_columns
                    or len(letters) >= len(self.last_letters)
                    and (len(letters) > len(self.last_letters) or letters > self.last_letters)
                ):
                    _too_many_columns(self.last_row, letters, self.cells, self.limits)
            elif name == "row":
                self.last_row, self.cells, self.elements = (
                    _row_number(attrib.get("r"), self.last_row, self.limits),
                    0,
                    0,
                )
            if self.elements > self.max_elements:
                raise file_problem(
                    _("Sheet row %(row)s holds more than %(n)s XML elements.")
                    % {"row": self.last_row, "n": self.max_elements}
                )
        elif name == "sheetData":
            self.data_depth = self.depth
        elif name == "dimension":
            if not self.whole:
                raise _Stop
            _dimension_check(attrib.get("ref", ""), self.limits)
        else:
            self.prelude += 1
            if self.prelude > _MAX_PRELUDE:
                raise file_problem(
                    _("The sheet holds more than %(n)s elements of formatting before its rows.") % {"n": _MAX_PRELUDE}
                )

    def end(self, _tag: str) -> None:
        if self.depth == self.data_depth:
            raise _Stop  # openpyxl reads on past the rows, but we stop giving it rows there
        self.depth -= 1


def _sheet_scan(source: IO[bytes], limits: DatasetLimits, *, whole: bool) -> int:
    scan = _SheetScan(limits, whole=whole)
    _feed(source, scan)
    return scan.last_row


def _row_number(reference: str | None, last_row: int, limits: DatasetLimits) -> int:
    number = int(reference or last_row + 1)
    if number <= last_row:
        raise file_problem(
            _("Sheet row %(row)s comes after row %(last)s: rows repeated or out of order are refused.")
            % {"row": number, "last": last_row}
        )
    if number > limits.max_rows + 1:
        raise file_problem(
            _("The sheet has more than %(n)s rows: a header and at most %(max)s rows of data.")
            % {"n": limits.max_rows + 1, "max": limits.max_rows}
        )
    return number


def _too_many_columns(row: int, letters: str, cells: int, limits: DatasetLimits) -> None:
    from openpyxl.utils.cell import column_index_from_string

    column = max(column_index_from_string(letters) if letters else 0, cells)
    raise file_problem(
        _("Sheet row %(row)s has a cell in column %(column)s; the limit is %(max)s columns.")
        % {"row": row, "column": column, "max": limits.max_columns}
    )


def _dimension_check(reference: str, limits: DatasetLimits) -> None:
    from openpyxl.utils.cell import range_boundaries

    _min_col, _min_row, max_col, max_row = range_boundaries(reference)
    if max_col and max_col > limits.max_columns:
        raise file_problem(
            _("The sheet declares %(n)s columns (%(ref)s); the limit is %(max)s.")
            % {"n": max_col, "ref": reference[:40], "max": limits.max_columns}
        )
    if max_row and max_row > limits.max_rows + 1:
        raise file_problem(
            _("The sheet declares %(n)s rows (%(ref)s); the limit is a header and %(max)s rows of data.")
            % {"n": max_row, "ref": reference[:40], "max": limits.max_rows}
        )
