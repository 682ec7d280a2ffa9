"""What each benchmark of the default suite measures, in words people read on the About page (translated).

Other suites describe their columns with ``description:`` in their YAML; these texts win for the
well-known columns because they are translated.
"""

from django.utils.translation import gettext_lazy as _

BENCHMARK_DESCRIPTIONS = {
    "arc": _(
        "AI2 Reasoning Challenge: grade-school science questions (the Challenge set, which simple retrieval "
        "and word co-occurrence methods get wrong). Multiple choice, scored by length-normalised log-likelihood."
    ),
    "hellaswag": _(
        "Commonsense inference: pick the most plausible ending of an everyday scene. Easy for people "
        "(about 95%), hard for models. Multiple choice, length-normalised."
    ),
    "mmlu": _(
        "Massive Multitask Language Understanding: 57 subjects from elementary mathematics to law and "
        "medicine, four options each; measures world knowledge and problem solving."
    ),
    "truthfulqa": _(
        "TruthfulQA (MC2): whether a model avoids false answers that mimic common human misconceptions; "
        "the normalised probability mass the model gives to the true answers."
    ),
    "winogrande": _(
        "Winogrande: pronoun resolution that needs commonsense reasoning, adversarially filtered; "
        "two options, so chance level is 50%."
    ),
    "gsm8k": _(
        "GSM8K: grade-school maths word problems needing several steps; the model writes its solution and "
        "the final number must match exactly (strict match)."
    ),
}


def benchmark_description(column) -> str:
    return BENCHMARK_DESCRIPTIONS.get(column.key) or column.description
