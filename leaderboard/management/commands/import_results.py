from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from leaderboard.harness.suites import DEFAULT_SUITE
from leaderboard.imports import (
    PRECISIONS,
    ResultsImportError,
    imported_model_get_or_register,
    results_import,
    results_precision,
)
from leaderboard.model_inspection import ModelFolderError


class Command(BaseCommand):
    help = (
        "Store an lm-eval results JSON (lm_eval --output_path, or ours) and its samples files, produced "
        "elsewhere, as a succeeded benchmark run of a model folder inside MODEL_ROOTS."
    )

    def add_arguments(self, parser):
        parser.add_argument("results_json", help="lm-eval's results_<date>.json")
        parser.add_argument("samples", nargs="*", help="lm-eval's samples_<task>_<date>.jsonl files, or our jsonl.gz")
        parser.add_argument("--model-path", required=True, help="the evaluated model's folder (inside MODEL_ROOTS)")
        parser.add_argument("--display-name", default="")
        parser.add_argument("--suite", default=DEFAULT_SUITE)
        parser.add_argument(
            "--precision",
            choices=PRECISIONS,
            default=None,
            help="default: the dtype the results file records, else bfloat16",
        )
        parser.add_argument("--owner", default="", help="username: owns a newly registered model and the run")

    def handle(self, *args, **options):
        owner = None
        if options["owner"]:
            owner = get_user_model().objects.filter(username=options["owner"]).first()
            if owner is None:
                raise CommandError(f"No user is called {options['owner']!r}.")
        try:
            precision = options["precision"] or results_precision(results_path=options["results_json"]) or "bfloat16"
            # One transaction: a file that cannot be imported leaves no model row behind either.
            with transaction.atomic():
                model = imported_model_get_or_register(
                    storage_path=options["model_path"],
                    precision=precision,
                    display_name=options["display_name"],
                    owner=owner,
                )
                run = results_import(
                    results_path=options["results_json"],
                    samples_paths=options["samples"],
                    model=model,
                    suite_name=options["suite"],
                    imported_by=owner,
                )
        except (ModelFolderError, ResultsImportError) as exc:
            raise CommandError(str(exc)) from exc
        for score in run.scores.order_by("task", "metric", "filter"):
            value = "—" if score.value is None else f"{score.value:.4f}"
            self.stdout.write(f"  {score.task:40} {score.metric},{score.filter:18} {value}")
        kind = "partial (never ranked)" if run.is_partial else "full"
        self.stdout.write(self.style.SUCCESS(f"Imported as run #{run.pk} of {model} ({kind})."))
