"""Store an evaluator run's per-sample results: ``settings.RUN_SAMPLE_INGESTERS["evaluator"]``.

Called by ``runs.services.run_finish`` inside the transaction that moves the run to its final status, so
the rows exist exactly when the run ended with them (a run cancelled meanwhile gets none). Idempotent: an
outcome stored again (a retried finish, ``store_run_outcome``) replaces what was there.
"""

from __future__ import annotations

from typing import Any

from evaluator.models import MetricScore, SampleResult


def sample_results_ingest(*, run_id: int, samples: list[dict[str, Any]]) -> None:
    """One SampleResult per record and one MetricScore per (record, metric), replacing earlier ones."""
    SampleResult.objects.filter(run_id=run_id).delete()
    results = SampleResult.objects.bulk_create(
        [
            SampleResult(
                run_id=run_id,
                row_id=int(record["row_id"]),
                response=record.get("response", ""),
                generation_error=record.get("generation_error", ""),
            )
            for record in samples
        ],
        batch_size=1000,
    )
    MetricScore.objects.bulk_create(
        [
            MetricScore(
                sample=result,
                metric=score["metric"],
                value=score.get("value"),
                reason=score.get("reason", ""),
                raw_output=score.get("raw_output", ""),
                unscored_reason=score.get("unscored_reason", ""),
            )
            for result, record in zip(results, samples, strict=True)
            for score in record.get("scores", [])
        ],
        batch_size=1000,
    )
