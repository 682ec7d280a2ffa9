"""Reading a run's per-sample log: pages, filters, what is shown of a sample, and the "correct" rule."""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import pytest

from leaderboard.samples import (
    SamplesUnavailable,
    correctness_metrics,
    prompt_split,
    sample_correctness_metric,
    sample_is_correct,
    samples_iter,
    samples_page,
)
from tests.factories import registered_model_create
from tests.leaderboard.sample_runs import LIMIT, TASKS, raw_samples, real_runs, store_run  # noqa: F401 (fixture)

# --- the rule, on plain dicts --------------------------------------------------------------------------


def test_correctness_rule():
    # The suite column's metric wins; else acc, acc_norm, exact_match, mc2 in that order.
    sample = {"acc": 1.0, "acc_norm": 0.0}
    assert sample_correctness_metric(sample) == "acc"
    assert sample_correctness_metric(sample, "acc_norm") == "acc_norm"
    assert sample_is_correct(sample, "acc") is True
    assert sample_is_correct(sample, "acc_norm") is False
    # A preferred metric the sample lacks falls back to the order.
    assert sample_correctness_metric({"exact_match": 1.0}, "acc_norm") == "exact_match"
    # A probability mass (TruthfulQA MC2): correct when most of it is on true answers.
    assert sample_is_correct({"mc2": 0.51}, "mc2") is True
    assert sample_is_correct({"mc2": 0.5}, "mc2") is False
    # Nothing known: not judged.
    assert sample_correctness_metric({"bleu": 3.2}) is None
    assert sample_is_correct({"bleu": 3.2}, None) is None
    assert sample_is_correct({"acc": True}, "acc") is None  # a bool is not a metric value


def test_correctness_metrics_follow_the_suite_columns():
    run = SimpleNamespace(
        spec={
            "columns": [
                {"key": "arc", "task": "arc_challenge", "metric": "acc_norm"},
                {"key": "mmlu", "group_of": "mmlu", "metric": "acc"},
                {"key": "two", "tasks": ["x", "y"], "metric": "exact_match"},
            ]
        },
        details={"leaf_tasks": {"mmlu": ["mmlu_anatomy", "mmlu_virology"]}},
    )
    assert correctness_metrics(run) == {
        "arc_challenge": "acc_norm",
        "mmlu": "acc",
        "mmlu_anatomy": "acc",
        "mmlu_virology": "acc",
        "x": "exact_match",
        "y": "exact_match",
    }


def test_missing_or_broken_log(settings, tmp_path):
    with pytest.raises(SamplesUnavailable, match="no per-sample log"):
        samples_page(run=SimpleNamespace(pk=1, samples_path="", spec={}, details={}))
    with pytest.raises(SamplesUnavailable, match="missing"):
        samples_page(run=SimpleNamespace(pk=1, samples_path="runs/1/samples.jsonl.gz", spec={}, details={}))
    broken = Path(settings.ARTIFACTS_DIR) / "broken.jsonl.gz"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(SamplesUnavailable, match="could not be read"):
        samples_page(run=SimpleNamespace(pk=1, samples_path="broken.jsonl.gz", spec={}, details={}))


def test_prompt_split_puts_the_question_first():
    config = {"num_fewshot": 2, "fewshot_delimiter": "\n\n", "description": "About cats.\n\n"}
    examples = "About cats.\n\nQ: one?\nA: 1\n\nQ: two?\nA: 2\n\n"
    question = "Q: three?\n\nThink twice.\nA:"  # a question may hold the delimiter itself
    assert prompt_split(examples + question, config) == (question, examples, 2)
    assert prompt_split(examples + question, {**config, "description": ""})[1].startswith("About cats.")
    assert prompt_split("Q: alone?\nA:", {"num_fewshot": 0}) == ("Q: alone?\nA:", "", 0)
    assert prompt_split("Q: x?\nA:", {"num_fewshot": 5}) == ("Q: x?\nA:", "", 0)  # fewer parts than shots
    assert prompt_split("a\n\nb", {})[2] == 0  # an imported run's config without num_fewshot


# --- real samples ------------------------------------------------------------------------------------


@pytest.fixture
def run_a(real_runs, settings, db):  # noqa: F811 (fixture)
    return store_run(real_runs["a"], model=registered_model_create(), artifacts_dir=settings.ARTIFACTS_DIR)


def _expected_correct(sample, metric):
    return sample[metric] > 0.5


@pytest.mark.slow
def test_every_task_of_the_run_is_listed_with_its_counts(run_a, real_runs):  # noqa: F811
    raw = raw_samples(real_runs["a"]["samples"])
    assert {s["task"] for s in raw} == set(TASKS)
    metrics = {"arc_challenge": "acc_norm", "truthfulqa_mc2": "acc", "winogrande": "acc", "gsm8k": "exact_match"}
    for task in TASKS:
        page = samples_page(run=run_a, task=task, per_page=100)
        assert page.tasks == list(TASKS)
        lines = [s for s in raw if s["task"] == task]
        correct = sum(_expected_correct(s, metrics[task]) for s in lines)
        assert page.counts == {"correct": correct, "incorrect": len(lines) - correct, "unknown": 0}, task
        assert page.total == len(lines) and page.correctness_metric == metrics[task]
        assert [item.doc_id for item in page.items] == [s["doc_id"] for s in lines]


@pytest.mark.slow
def test_multiple_choice_sample_shows_prompt_choices_gold_and_the_models_pick(run_a, real_runs):  # noqa: F811
    raw = raw_samples(real_runs["a"]["samples"], "arc_challenge")
    page = samples_page(run=run_a, task="arc_challenge")
    assert len(page.items) == len(raw) == 3  # ARC's test split is cut to 3 rows in the mini mirror
    for item, sample in zip(page.items, raw, strict=True):
        assert item.prompt == sample["arguments"][0][0]
        assert item.prompt.endswith(sample["doc"]["question"] + "\nAnswer:")
        assert item.prompt.count("Question:") == 3  # 2-shot
        # The browser shows the question first and folds the two examples under it.
        assert item.question == "Question: " + sample["doc"]["question"] + "\nAnswer:"
        assert item.fewshot_count == 2 and item.fewshot + item.question == item.prompt
        assert [c.text for c in item.choices] == [" " + text for text in sample["doc"]["choices"]["text"]]
        assert [c.is_gold for c in item.choices] == [i == sample["target"] for i in range(len(item.choices))]
        lls = [resp[0] for resp in sample["filtered_resps"]]
        assert [c.loglikelihood for c in item.choices] == lls
        assert item.pred_choice.text == item.choices[lls.index(max(lls))].text
        # acc_norm picks by loglikelihood per character of the choice text.
        norm = [ll / len(text) for ll, text in zip(lls, sample["doc"]["choices"]["text"], strict=True)]
        assert item.pred_norm_choice.text == item.choices[norm.index(max(norm))].text
        assert (sample["acc_norm"] == 1.0) == (item.pred_norm_choice.is_gold) == item.correct
        assert item.metrics == {"acc": sample["acc"], "acc_norm": sample["acc_norm"]}


@pytest.mark.slow
def test_correct_filter_and_pages(run_a, real_runs):  # noqa: F811
    raw = raw_samples(real_runs["a"]["samples"], "truthfulqa_mc2")
    assert len(raw) == LIMIT
    wanted = {"yes": [s["doc_id"] for s in raw if s["acc"] > 0.5], "no": [s["doc_id"] for s in raw if s["acc"] <= 0.5]}
    for correct, doc_ids in wanted.items():
        page = samples_page(run=run_a, task="truthfulqa_mc2", correct=correct, per_page=100)
        assert [item.doc_id for item in page.items] == doc_ids
        assert all(item.correct is (correct == "yes") for item in page.items)
    pages = [samples_page(run=run_a, task="truthfulqa_mc2", per_page=4, page=n) for n in (1, 2)]
    assert [p.num_pages for p in pages] == [2, 2] and (pages[0].has_next, pages[1].has_next) == (True, False)
    assert [i.doc_id for p in pages for i in p.items] == [s["doc_id"] for s in raw]
    assert (pages[1].first_index, pages[1].last_index, pages[1].total) == (5, 6, 6)
    past_end = samples_page(run=run_a, task="truthfulqa_mc2", per_page=4, page=9)
    assert past_end.page == 2 and [i.doc_id for i in past_end.items] == [i.doc_id for i in pages[1].items]
    # TruthfulQA MC2: every true answer of mc2_targets is gold.
    item = pages[0].items[0]
    assert [c.is_gold for c in item.choices] == [bool(x) for x in raw[0]["doc"]["mc2_targets"]["labels"]]
    only = samples_page(run=run_a, task="truthfulqa_mc2", doc_id=raw[2]["doc_id"])
    assert [i.doc_id for i in only.items] == [raw[2]["doc_id"]]


@pytest.mark.slow
def test_partial_context_task_shows_the_options_as_choices(run_a, real_runs):  # noqa: F811
    raw = raw_samples(real_runs["a"]["samples"], "winogrande")
    item = samples_page(run=run_a, task="winogrande").items[0]
    doc = raw[0]["doc"]
    assert [c.text for c in item.choices] == [doc["option1"], doc["option2"]]
    assert item.prompt == doc["sentence"][: doc["sentence"].index("_")]
    assert item.continuation == raw[0]["arguments"][0][1]


@pytest.mark.slow
def test_generation_task_shows_target_output_and_filters(run_a, real_runs):  # noqa: F811
    raw = raw_samples(real_runs["a"]["samples"], "gsm8k")
    page = samples_page(run=run_a, task="gsm8k", per_page=100)
    assert page.filters == ["flexible-extract", "strict-match"]
    assert page.total == len(raw) == 2 * 3  # one line per document and filter
    # Counted per filter: 3 documents judged once under each filter, not "6 incorrect".
    assert page.documents == 3 and page.counts_by_filter
    assert set(page.filter_counts) == {"flexible-extract", "strict-match"}
    for name, counts in page.filter_counts.items():
        lines = [s for s in raw if s["filter"] == name]
        assert counts == {
            "correct": sum(s["exact_match"] > 0.5 for s in lines),
            "incorrect": sum(s["exact_match"] <= 0.5 for s in lines),
            "unknown": 0,
        }
    strict = samples_page(run=run_a, task="gsm8k", filter="strict-match", per_page=100)
    raw_strict = [s for s in raw if s["filter"] == "strict-match"]
    assert [i.doc_id for i in strict.items] == [s["doc_id"] for s in raw_strict]
    for item, sample in zip(strict.items, raw_strict, strict=True):
        assert not item.choices and item.output_type == "generate_until"
        assert item.prompt == sample["arguments"][0][0] and "Question:" in item.prompt
        assert item.target == sample["target"] and "####" in item.target
        assert item.response == sample["resps"][0][0]
        assert item.filtered_response == sample["filtered_resps"][0]


@pytest.mark.slow
def test_samples_are_streamed(real_runs, tmp_path):  # noqa: F811
    """A damaged tail is only met when reading reaches it: the file is read line by line."""
    with gzip.open(real_runs["a"]["samples"], "rt", encoding="utf-8") as lines:
        first = lines.readline()
    damaged = tmp_path / "damaged.jsonl.gz"
    with gzip.open(damaged, "wt", encoding="utf-8") as out:
        out.write(first + '{"task": "gsm8k", not json\n')
    samples = samples_iter(damaged)
    assert next(samples)["task"] == "arc_challenge"
    with pytest.raises(SamplesUnavailable):
        next(samples)
    # Lines of other tasks are skipped unparsed.
    assert list(samples_iter(damaged, task="winogrande")) == []


@pytest.mark.slow
def test_sample_page_shows_the_question_before_the_examples_and_counts_per_filter(client, run_a, real_runs):  # noqa: F811
    import html as html_lib

    from django.urls import reverse

    from tests.factories import user_create

    client.force_login(user_create())
    url = reverse("leaderboard:run_samples", args=[run_a.pk])
    page = client.get(url, {"task": "arc_challenge"}).content.decode()
    sample = raw_samples(real_runs["a"]["samples"], "arc_challenge")[0]
    question = html_lib.escape("Question: " + sample["doc"]["question"] + "\nAnswer:")
    first_row = page[page.index('<tr class="sample') :]
    assert first_row.index(f'<pre class="prompt question">{question}</pre>') < first_row.index(
        '<details class="fewshot">'
    )
    assert "2 few-shot examples before it" in first_row

    gsm8k = client.get(url, {"task": "gsm8k"}).content.decode()
    assert "3 documents, each judged once under each of this task's filters" in gsm8k
    assert gsm8k.count('<li data-filter="') == 2
    filtered = client.get(url, {"task": "gsm8k", "filter": "strict-match"}).content.decode()
    assert 'id="samples-per-filter-note"' not in filtered  # one filter: one set of counts
