"""Write side of the evaluator: golden datasets and their immutable versions."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Max

from evaluator.datasets import RowData
from evaluator.models import DatasetRow, DatasetVersion, EvaluatorRun, GoldenDataset


def dataset_version_is_locked(*, version: DatasetVersion) -> bool:
    """Used by a run. (No service ever updates a version's rows; this tells the pages to say so.)"""
    return EvaluatorRun.objects.filter(dataset_version=version).exists()


@transaction.atomic
def dataset_version_create(*, dataset: GoldenDataset, rows: Sequence[RowData], source: str = "", note: str = "",
                           created_by=None) -> DatasetVersion:
    """A new version holding ``rows``. Versions are never edited: editing a dataset makes a new one."""
    # Lock the dataset row so two uploads at once cannot take the same version number.
    GoldenDataset.objects.select_for_update().filter(pk=dataset.pk).first()
    number = (dataset.versions.aggregate(highest=Max("number"))["highest"] or 0) + 1
    version = DatasetVersion.objects.create(dataset=dataset, number=number, source=source[:300], note=note[:300],
                                            created_by=created_by, row_count=len(rows))
    DatasetRow.objects.bulk_create([
        DatasetRow(version=version, position=position, question=row.question, reference=row.reference,
                   contexts=list(row.contexts), response=row.response, tags=list(row.tags))
        for position, row in enumerate(rows, start=1)
    ], batch_size=1000)
    return version


@transaction.atomic
def dataset_create(*, name: str, rows: Sequence[RowData], owner=None, group=None, private: bool = False,
                   description: str = "", source: str = "") -> GoldenDataset:
    dataset = GoldenDataset.objects.create(name=name, description=description, owner=owner, group=group, private=private)
    dataset_version_create(dataset=dataset, rows=rows, source=source, created_by=owner)
    return dataset


def dataset_version_rows(*, version: DatasetVersion) -> list[RowData]:
    return [RowData(question=r.question, reference=r.reference, contexts=tuple(r.contexts), response=r.response,
                    tags=tuple(r.tags))
            for r in version.rows.order_by("position")]


def dataset_version_edit(*, version: DatasetVersion, edits: dict[int, RowData | None], additions: Sequence[RowData] = (),
                         note: str = "", edited_by=None) -> DatasetVersion:
    """A new version: ``version``'s rows with ``edits`` applied (position -> new row, or None to delete) and
    ``additions`` appended. The old version is left exactly as it was."""
    rows = []
    for position, row in enumerate(dataset_version_rows(version=version), start=1):
        if position in edits:
            if edits[position] is not None:
                rows.append(edits[position])
        else:
            rows.append(row)
    rows.extend(additions)
    return dataset_version_create(dataset=version.dataset, rows=rows, source=f"edited from v{version.number}",
                                  note=note, created_by=edited_by)
