from django.core.management.base import BaseCommand, CommandError

from leaderboard.harness.suites import DEFAULT_SUITE, SuiteError
from leaderboard.mirror_reports import SuiteNotServed
from leaderboard.model_inspection import ModelFolderError
from leaderboard.models import Precision, WeightType
from leaderboard.services import benchmark_submit, model_get_or_register
from runs.execution import run_execute


class Command(BaseCommand):
    help = "Run a benchmark suite on a model folder synchronously, in this process (for debugging)."

    def add_arguments(self, parser):
        parser.add_argument("model_path")
        parser.add_argument("--suite", default=DEFAULT_SUITE)
        parser.add_argument("--limit", type=int, default=None, help="samples per task (a smoke run, never ranked)")
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
        parser.add_argument("--precision", default="bfloat16", choices=[c.value for c in Precision])
        parser.add_argument("--base-model", default="", help="base model folder, for a PEFT adapter or delta weights")
        parser.add_argument(
            "--weight-type",
            default="original",
            choices=[c.value for c in WeightType],
            help="delta: the folder holds weights to add to --base-model",
        )
        parser.add_argument("--display-name", default="")
        parser.add_argument("--chat-template", action="store_true")
        parser.add_argument("--force", action="store_true", help="run even if an identical run succeeded")
        parser.add_argument("--batch-size", default="auto", help="auto, or an integer (1..512)")
        parser.add_argument(
            "--partial",
            action="store_true",
            help="run the columns the dataset mirror serves when it lacks some (never ranked)",
        )

    def handle(self, *args, **options):
        try:
            # An existing row of this revision is used as it is (owner, visibility and name unchanged).
            model, created = model_get_or_register(
                storage_path=options["model_path"],
                display_name=options["display_name"],
                precision=options["precision"],
                weight_type=options["weight_type"],
                base_model_path=options["base_model"],
                use_chat_template=options["chat_template"],
            )
        except ModelFolderError as exc:
            raise CommandError(str(exc)) from exc
        if not created:
            self.stdout.write(f"Using the registered model {model} (#{model.pk}), left as it is.")
        try:
            submission = benchmark_submit(
                model=model,
                suite_name=options["suite"],
                limit=options["limit"],
                device=options["device"],
                force=options["force"],
                enqueue=False,
                batch_size=options["batch_size"],
                partial=options["partial"],
            )
        except (SuiteNotServed, SuiteError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        run = submission.run
        if not submission.created:
            self.stdout.write(f"An identical run exists: #{run.pk} ({run.status}); use --force to run again.")
            return
        self.stdout.write(f"Run #{run.pk}: evaluating {model} on {options['suite']} ...")
        status = run_execute(run_id=run.pk)
        run.refresh_from_db()
        for score in run.scores.order_by("task", "metric", "filter"):
            stderr = f" ± {score.stderr:.4f}" if score.stderr is not None else ""
            self.stdout.write(f"  {score.task:40} {score.metric},{score.filter:18} {score.value:.4f}{stderr}")
        if status != "succeeded":
            raise CommandError(f"Run #{run.pk} {status}: {run.error_message}")
        self.stdout.write(self.style.SUCCESS(f"Run #{run.pk} succeeded."))
