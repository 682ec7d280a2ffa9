"""CSV downloads that open safely in a spreadsheet; the leaderboard and the evaluator both export this way."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.http import HttpResponse

# A cell that starts with one of these is read as a formula by Excel and LibreOffice (CSV injection): a
# question or a model name like "=HYPERLINK(...)" from a shared dataset would run on the reader's machine.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """Text that a spreadsheet would take for a formula gets a leading apostrophe; numbers are left alone."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_response(filename: str, fieldnames: Sequence[str], records: Iterable[Mapping[str, Any]]) -> HttpResponse:
    """An attachment with a BOM, so that Excel, which many of our users open CSVs with, reads Korean correctly."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    writer = csv.DictWriter(response, fieldnames=list(fieldnames))
    writer.writeheader()
    for record in records:
        writer.writerow({key: spreadsheet_safe(value) for key, value in record.items()})
    return response
