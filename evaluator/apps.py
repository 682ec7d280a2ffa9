from django.apps import AppConfig


class EvaluatorConfig(AppConfig):
    """Golden Q&A datasets, judge LLMs and ragas metric runs."""

    name = "evaluator"
    verbose_name = "Evaluator"
