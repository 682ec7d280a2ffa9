from django.apps import AppConfig


class RunsConfig(AppConfig):
    """The run lifecycle that benchmark and evaluator runs share: status, claim, reaper, queues."""

    name = "runs"
    verbose_name = "Evaluation runs"
