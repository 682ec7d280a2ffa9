"""The leaderboard as plain records, for the CSV and JSON exports. Scores in percent, as shown on the page."""

from __future__ import annotations

from typing import Any

from leaderboard.selectors import LeaderboardRow, ScoreColumn


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 4)


def export_fieldnames(columns: list[ScoreColumn]) -> list[str]:
    return list(export_record(None, columns))


def export_record(row: LeaderboardRow | None, columns: list[ScoreColumn]) -> dict[str, Any]:
    """One row; with ``row=None`` the same keys with empty values (the header of an empty export)."""
    model = row.model if row else None
    record: dict[str, Any] = {
        "rank": row.rank if row else None,
        "model": model.display_name if model else None,
        "model_id": model.pk if model else None,
        "average": _percent(row.average) if row else None,
        "average_stderr": _percent(row.average_stderr) if row else None,
    }
    for column in columns:
        record[column.key] = _percent(row.values.get(column.key)) if row else None
        record[f"{column.key}_stderr"] = _percent(row.stderrs.get(column.key)) if row else None
    record.update(
        {
            "type": model.model_type if model else None,
            "architecture": model.architecture if model else None,
            "precision": model.precision if model else None,
            "weight_type": model.weight_type if model else None,
            "merged": model.merged if model else None,
            "moe": model.moe if model else None,
            "license": model.license if model else None,
            "params_billions": model.params_billions if model else None,
            "revision": model.revision if model else None,
            "owner": (model.owner.get_username() if model.owner else None) if model else None,
            "group": (model.group.name if model.group else None) if model else None,
            "submitted_at": model.submitted_at.isoformat() if model else None,
            "evaluated_at": row.evaluated_at.isoformat() if row and row.evaluated_at else None,
            "run_id": row.run_id if row else None,
        }
    )
    return record
