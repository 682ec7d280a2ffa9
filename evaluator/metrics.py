"""The catalogue of evaluator metrics, presets and the headline order (no ragas import).

Every value is normalised to 0..1, higher is better; the description says how, so pages can explain it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

LLM = "llm"
EMBEDDING = "embedding"
TEXT = "text"

REFERENCE = "reference"
CONTEXTS = "contexts"


@dataclass(frozen=True)
class MetricInfo:
    key: str
    label: object  # a lazy translation string
    kind: str  # "llm" | "embedding" | "text"
    needs: frozenset[str]
    description: object


def _info(key, label, kind, needs, description) -> tuple[str, MetricInfo]:
    return key, MetricInfo(key=key, label=label, kind=kind, needs=frozenset(needs), description=description)


METRICS: dict[str, MetricInfo] = dict(
    [
        _info(
            "faithfulness",
            _("Faithfulness"),
            LLM,
            {CONTEXTS},
            _(
                "Share of the answer's claims that the retrieved contexts support (ragas faithfulness; "
                "the judge splits the answer into statements, then checks each). 0..1."
            ),
        ),
        _info(
            "response_groundedness",
            _("Groundedness"),
            LLM,
            {CONTEXTS},
            _(
                "How well the answer is grounded in the retrieved contexts (ragas response groundedness: "
                "two judge ratings 0/1/2 averaged and divided by 2). 0..1."
            ),
        ),
        _info(
            "answer_relevancy",
            _("Answer relevance"),
            EMBEDDING,
            set(),
            _(
                "Whether the answer addresses the question: the judge writes questions the answer would "
                "fit, and their embedding similarity to the real question is averaged (ragas answer "
                "relevancy; needs the judge and the embedding model). Non-committal answers score 0. 0..1."
            ),
        ),
        _info(
            "coherence",
            _("Coherence"),
            LLM,
            set(),
            _(
                "Yes/no judgement whether the answer is well organised, logically consistent and easy to "
                "follow (an aspect critic with a coherence definition): 1 = coherent, 0 = not."
            ),
        ),
        _info(
            "context_precision",
            _("Context precision"),
            LLM,
            {REFERENCE, CONTEXTS},
            _(
                "Whether the useful contexts are ranked first: the judge marks each context as useful for "
                "the reference answer, then average precision over the ranks (ragas context precision). 0..1."
            ),
        ),
        _info(
            "context_recall",
            _("Context recall"),
            LLM,
            {REFERENCE, CONTEXTS},
            _(
                "Share of the reference answer's statements that the retrieved contexts support (ragas "
                "context recall). 0..1."
            ),
        ),
        _info(
            "answer_correctness",
            _("Answer correctness"),
            LLM,
            {REFERENCE},
            _(
                "Agreement with the reference: a factual F1 over the statements of answer and reference "
                "(judge), weighted 3:1 with their embedding similarity (ragas answer correctness; needs the "
                "judge and the embedding model). 0..1."
            ),
        ),
        _info(
            "answer_accuracy",
            _("Answer accuracy"),
            LLM,
            {REFERENCE},
            _(
                "Whether the answer matches the reference: two judge ratings 0/2/4 averaged and divided by 4 "
                "(ragas answer accuracy). 0..1."
            ),
        ),
        _info(
            "exact_match",
            _("Exact match"),
            TEXT,
            {REFERENCE},
            _("1 when the answer equals the reference (whitespace trimmed and collapsed, case kept), else 0."),
        ),
        _info(
            "rouge_l",
            _("ROUGE-L"),
            TEXT,
            {REFERENCE},
            _(
                "ROUGE-L F1 (longest common subsequence) over Unicode tokens: lower-cased words, and single "
                "characters for Korean/CJK text, so Korean answers are compared too. 0..1."
            ),
        ),
        _info(
            "bleu",
            _("BLEU"),
            TEXT,
            {REFERENCE},
            _(
                "Sentence BLEU (sacrebleu, smoothed, over the same tokens as ROUGE-L: words, or characters for "
                "Korean/CJK) divided by 100. 0..1."
            ),
        ),
        _info(
            "chrf",
            _("chrF"),
            TEXT,
            {REFERENCE},
            _("Character n-gram F-score (sacrebleu chrF) divided by 100; robust for Korean. 0..1."),
        ),
        _info(
            "semantic_similarity",
            _("Semantic similarity"),
            EMBEDDING,
            {REFERENCE},
            _(
                "Cosine similarity of the answer's and the reference's embeddings (the embedding model; "
                "negative values count as 0). 0..1."
            ),
        ),
    ]
)

# Custom criteria are added per run (key "custom:<slug>"); their descriptions are built here so both the
# pages and the scorer say the same thing.
CUSTOM_PREFIX = "custom:"
CUSTOM_ASPECT_DESCRIPTION = _("A yes/no judgement against the definition you wrote: 1 = yes, 0 = no.")
CUSTOM_RUBRIC_DESCRIPTION = _("A 1..5 judge score against the rubric you wrote, normalised as (score - 1) / 4. 0..1.")

PRESETS: dict[str, list[str]] = {
    "chatbot": ["answer_relevancy", "coherence", "faithfulness"],
    "qa": ["answer_accuracy", "answer_correctness", "faithfulness", "context_precision", "context_recall"],
    "summarization": ["faithfulness", "coherence", "rouge_l", "semantic_similarity"],
    "custom": [],
}

PRESET_LABELS = {
    "chatbot": _("Chatbot (relevance, coherence, faithfulness)"),
    "qa": _("Q&A with references (accuracy, correctness, RAG metrics)"),
    "summarization": _("Summarisation (faithfulness, coherence, overlap)"),
    "custom": _("Custom: pick metrics and criteria"),
}

# The first of these that a run has is its headline number on the results pages.
HEADLINE_METRIC_ORDER = [
    "answer_accuracy",
    "answer_correctness",
    "faithfulness",
    "response_groundedness",
    "answer_relevancy",
    "context_recall",
    "context_precision",
    "coherence",
    "semantic_similarity",
    "rouge_l",
    "chrf",
    "bleu",
    "exact_match",
]


def metric_needs_judge(key: str) -> bool:
    """Whether the metric calls the judge LLM (custom criteria always do)."""
    if key.startswith(CUSTOM_PREFIX):
        return True
    info = METRICS[key]
    return info.kind == LLM or key == "answer_relevancy"


def metric_needs_embeddings(key: str) -> bool:
    return key in {"answer_relevancy", "answer_correctness", "semantic_similarity"}
