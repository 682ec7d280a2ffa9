"""Metrics that compare an answer with its reference as text: exact match, ROUGE-L, BLEU, chrF.

Korean is first-class here. rouge_score's default tokenizer keeps only [a-z0-9] and so scores any
Korean pair 0; sacrebleu's "13a" tokenizer leaves a Korean sentence as a few long words with particles
attached (서울은 / 서울이), so near-identical answers share no n-gram. Both are replaced:
- words of alphabetic scripts are Unicode ``\\w+`` runs, lower-cased;
- Hangul, CJK ideographs and kana are split into single characters (character n-grams are the usual
  unit for Korean without a morphological analyser such as mecab, which we do not require).
chrF is character-based already and is used as sacrebleu computes it.
All values are 0..1.
"""

from __future__ import annotations

import re
import unicodedata

# Hangul syllables and jamo, CJK ideographs, hiragana/katakana: one token per character.
_CHAR_SCRIPT = (
    "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7a3\ud7b0-\ud7ff"  # Hangul
    "\u3040-\u30ff\u31f0-\u31ff"  # kana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
)
_TOKEN = re.compile(rf"[{_CHAR_SCRIPT}]|[^\W{_CHAR_SCRIPT}]+", re.UNICODE)


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text or "").split())


def tokenize(text: str) -> list[str]:
    """Unicode-aware tokens: lower-cased words, and single characters for Korean/CJK."""
    return _TOKEN.findall(normalise(text).lower())


class _Tokenizer:
    """The object rouge_score's RougeScorer wants (a ``tokenize`` method)."""

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text)


def exact_match(response: str, reference: str) -> float:
    return 1.0 if normalise(response) == normalise(reference) else 0.0


def rouge_l(response: str, reference: str) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Tokenizer())
    return float(scorer.score(reference, response)["rougeL"].fmeasure)


def bleu(response: str, reference: str) -> float:
    from sacrebleu.metrics import BLEU

    # Our tokens joined by spaces, sacrebleu then splits on spaces only ("none"): the same tokenisation
    # as ROUGE-L, so Korean is compared character by character and other scripts word by word.
    metric = BLEU(tokenize="none", effective_order=True, lowercase=False)
    hypothesis = " ".join(tokenize(response))
    references = [" ".join(tokenize(reference))]
    if not hypothesis.strip() or not references[0].strip():
        return 0.0
    return float(metric.sentence_score(hypothesis, references).score) / 100.0


def chrf(response: str, reference: str) -> float:
    from sacrebleu.metrics import CHRF

    if not normalise(response) or not normalise(reference):
        return 0.0
    return float(CHRF().sentence_score(normalise(response), [normalise(reference)]).score) / 100.0


TEXT_METRICS = {
    "exact_match": exact_match,
    "rouge_l": rouge_l,
    "bleu": bleu,
    "chrf": chrf,
}


def text_metric_score(key: str, response: str, reference: str) -> float:
    value = TEXT_METRICS[key](response, reference)
    return min(1.0, max(0.0, value))
