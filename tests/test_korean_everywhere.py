"""Korean everywhere: every page, rendered in Korean with data, shows no English message of ours.

The data is made by the real services as a worker and people make it, while English is active (as on a worker
or for an English-speaking user): a failed benchmark run and a failed evaluator run (their executors really run),
a succeeded evaluator run with its progress notes, a cancelled run, a run the reaper re-queued and one it gave up
on, a queued run, a model with scores beside the random baseline, endpoints with a connection result. Then a
Korean reader opens every page.

What counts as English: a word of our catalogue's English source strings (or of the stored-message templates)
that the Korean catalogue never keeps as it is (so "MMLU", "GPU" or "dtype" may stay), found in the visible text
or a tooltip, placeholder or label attribute. Words of the data the test made (names, paths, task and metric
keys) are skipped, and so are <pre>, <code> and <textarea> (logs, commands, user text).
"""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from evaluator.datasets import RowData
from evaluator.generation import DEFAULT_PROMPT_TEMPLATE
from evaluator.models import LLMEndpoint
from evaluator.services import dataset_create, evaluation_submit
from runs.choices import RunKind, RunStatus
from runs.execution import run_execute
from runs.models import EvaluationRun
from runs.services import run_cancel, run_claim, run_create, run_progress, runs_reap
from tests.factories import registered_model_create, scored_run_create, user_create

pytestmark = [pytest.mark.django_db, pytest.mark.services]

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "locale" / "ko" / "LC_MESSAGES" / "django.po"
SKIPPED_ELEMENTS = {"script", "style", "pre", "code", "textarea"}
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SHOWN_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-title"}
# Words that are data here, not our English: the test's own names, and keys of tasks, metrics and kinds.
# lm-eval's request kinds ("loglikelihood requests") are its names, not words.
DATA_WORDS = {"none", "local", "openai", "nobody", "evaluator", "loglikelihood"}
# English the issue found on Korean pages, whether or not it was marked for translation then: form labels from model
# fields, run history, the random baseline row and plotly's toolbar.
KNOWN_ENGLISH = [
    "Temperature",
    "Max tokens",
    "claimed by",
    "submitted",
    "queued",
    "running",
    "succeeded",
    "failed",
    "errored",
    "cancelled",
    "Random baseline",
    "Chance level",
    "Download plot as a png",
    "Zoom in",
    "Zoom out",
    "Autoscale",
    "Reset axes",
    "Pan",
    "Box Select",
    "Lasso Select",
]


def _catalogue() -> list[tuple[str, str]]:
    from tests.test_i18n import _messages

    return [
        (entry["msgid"] + " " + (entry["msgid_plural"] or ""), " ".join(entry["msgstr"].values()))
        for entry in _messages()
    ]


def _english_words() -> set[str]:
    """Words of our English source strings that the Korean catalogue never keeps as they are."""
    sources, kept = [], set()
    for msgid, msgstr in _catalogue():
        sources.append(msgid)
        kept.update(word.lower() for word in re.findall(r"[A-Za-z]+", _unmarked(msgstr)))
    try:
        from runs.messages import MESSAGES
    except ImportError:  # before stored messages had codes
        MESSAGES = {}
    with translation.override("en"):
        sources += [str(template) for template in MESSAGES.values()] + KNOWN_ENGLISH
    words = {word.lower() for word in re.findall(r"[A-Za-z]{3,}", _unmarked(" ".join(sources)))}
    return words - kept - DATA_WORDS


def _unmarked(text: str) -> str:
    """``text`` without placeholders, template variables and HTML: not words a reader sees."""
    return re.sub(r"%\(\w+\)\w|\{\{.*?\}\}|\{\w+\}|<[^>]+>", " ", text)


class _VisibleText(HTMLParser):
    """Text a reader sees: text nodes and the attributes browsers show, outside logs, code and scripts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0
        self._untranslated: list[list] = []  # [tag, open count] of each translate="no" element we are inside

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in SKIPPED_ELEMENTS:
            self._skipping += 1
        elif attributes.get("translate") == "no" and tag not in VOID_ELEMENTS:
            # Someone's own text the page shows as it is (a model card): skipped to its closing tag.
            self._untranslated.append([tag, 1])
            self._skipping += 1
        elif self._untranslated and tag == self._untranslated[-1][0] and tag not in VOID_ELEMENTS:
            self._untranslated[-1][1] += 1
        for name in SHOWN_ATTRIBUTES & attributes.keys():
            self.chunks.append(attributes[name] or "")
        if tag == "input" and attributes.get("type") in ("submit", "button") and attributes.get("value"):
            self.chunks.append(attributes["value"])

    def handle_endtag(self, tag):
        if tag in SKIPPED_ELEMENTS and self._skipping:
            self._skipping -= 1
        elif self._untranslated and tag == self._untranslated[-1][0]:
            self._untranslated[-1][1] -= 1
            if not self._untranslated[-1][1]:
                self._untranslated.pop()
                self._skipping -= 1

    def handle_data(self, data):
        if not self._skipping and data.strip():
            self.chunks.append(data.strip())


def english_found(html: str, *, english: set[str], data_values: set[str]) -> list[str]:
    """The visible chunks of ``html`` that hold an English word of ours (after removing the test's data)."""
    parser = _VisibleText()
    parser.feed(html)
    found = []
    for chunk in parser.chunks:
        text = chunk
        for value in sorted(data_values, key=len, reverse=True):
            text = text.replace(value, " ")
        # Identifiers (arc_challenge, acc_norm, tiny-llama, org/model, v1, 1e-3) are data, not sentences.
        tokens = [t for t in re.split(r"[\s,.;:!?()\[\]\"'“”‘’·→–—|]+", text) if re.fullmatch(r"[A-Za-z]+", t)]
        if any(token.lower() in english for token in tokens):
            found.append(chunk[:200])
    return found


def test_the_detector_finds_english_and_passes_korean():
    """The check can fail: an English message of ours is found in text and in a tooltip; Korean and data are not."""
    english = _english_words()
    assert {"cancelled", "temperature", "baseline", "claimed"} <= english
    assert english_found("<p>The run was cancelled</p>", english=english, data_values=set())
    assert english_found('<span title="Cancel this run">취소</span>', english=english, data_values=set())
    assert not english_found(
        "<p>실행이 취소되었습니다 · MMLU · arc_challenge</p><pre>Cancelled</pre>", english=english, data_values=set()
    )
    assert not english_found("<p>org/model-1 Cancel-me</p>", english=english, data_values={"Cancel-me"})
    # A model card is the model's own text: skipped, and only it.
    assert not english_found(
        '<div translate="no"><div><p>The run was cancelled</p></div></div>', english=english, data_values=set()
    )
    assert english_found(
        '<div translate="no"><div>x</div></div><p>The run was cancelled</p>', english=english, data_values=set()
    )


@pytest.fixture
def world(tiny_model, settings):
    """Runs, a model, datasets and endpoints as workers and English-speaking users leave them."""
    settings.ENDPOINT_ALLOWED_HOSTS = ["localhost", "127.0.0.0/8"]
    settings.RUN_STALE_AFTER_S = 60
    translation.activate("en")
    team = Group.objects.create(name="팀")
    owner = user_create(username="kim", groups=(team,), is_staff=True, is_superuser=True)
    model = registered_model_create(display_name="org/tiny", owner=owner, storage_path=str(tiny_model))
    other = registered_model_create(display_name="org/other", owner=owner)
    scored = scored_run_create(
        model=model,
        values={"arc": 0.4, "hellaswag": 0.3, "mmlu": 0.3, "truthfulqa": 0.5, "winogrande": 0.6, "gsm8k": 0.1},
        submitted_by=owner,
    )
    scored_run_create(
        model=other,
        values={"arc": 0.5, "mmlu": 0.2},
        submitted_by=owner,
        finished_at=timezone.now() - timedelta(days=3),
    )
    runs = {"scored": scored}

    # A benchmark run whose spec the executor refuses, executed for real.
    broken = run_create(
        kind=RunKind.BENCHMARK, spec={"suite": "openllm_v1"}, model=model, submitted_by=owner, enqueue=False
    )
    run_execute(run_id=broken.pk)
    runs["failed"] = broken
    # Queued, then cancelled by a person; queued and waiting; running with a progress note.
    cancelled = run_create(
        kind=RunKind.BENCHMARK, spec={"suite": "openllm_v1", "n": 1}, model=model, submitted_by=owner, enqueue=False
    )
    run_cancel(run_id=cancelled.pk, by="kim")
    runs["cancelled"] = cancelled
    runs["queued"] = run_create(
        kind=RunKind.BENCHMARK, spec={"suite": "openllm_v1", "n": 2}, model=model, submitted_by=owner, enqueue=False
    )
    running = run_create(
        kind=RunKind.BENCHMARK, spec={"suite": "openllm_v1", "n": 3}, model=model, submitted_by=owner, enqueue=False
    )
    run_claim(run_id=running.pk, worker_host="gpu-host-1")
    runs["running"] = running
    # Two runs whose worker died: one is re-queued, one has used its attempts and errs.
    for name, attempts in (("requeued", 0), ("reaped", settings.RUN_MAX_ATTEMPTS)):
        run = run_create(
            kind=RunKind.BENCHMARK,
            spec={"suite": "openllm_v1", "dead": name},
            model=model,
            submitted_by=owner,
            enqueue=False,
        )
        run_claim(run_id=run.pk, worker_host="gpu-host-gone")
        EvaluationRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - timedelta(hours=1), attempts=attempts or 1
        )
        if attempts:
            EvaluationRun.objects.filter(pk=run.pk).update(attempts=attempts)
        runs[name] = run
    runs_reap()

    # The evaluator: a dataset, endpoints with a connection result, a run that succeeds and one that fails.
    dataset = dataset_create(
        name="사내 규정",
        owner=owner,
        rows=[
            RowData(
                question="연차는 며칠인가요?",
                reference="15일",
                contexts=("연차는 15일이다.",),
                response="15일",
                tags=("인사",),
            ),
            RowData(
                question="출근 시간은?", reference="9시", contexts=("출근은 9시.",), response="10시", tags=("인사",)
            ),
            # No reference: exact match leaves it unscored, with the reason.
            RowData(question="점심 시간은?", reference="", contexts=("점심은 12시.",), response="12시", tags=("인사",)),
        ],
    )
    version = dataset.latest_version
    judge = LLMEndpoint.objects.create(
        name="판정기", owner=owner, base_url="http://127.0.0.1:9/v1", model_name="nobody", timeout_s=1, max_retries=0
    )
    LLMEndpoint.objects.create(name="로컬", owner=owner, kind="local", local_path=str(tiny_model) + "-gone")
    english_user = Client()
    english_user.force_login(owner)
    for endpoint in LLMEndpoint.objects.all():
        response = english_user.post(reverse("evaluator:endpoint_check", args=[endpoint.pk]), HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200
    translation.activate("en")
    succeeded = evaluation_submit(
        dataset_version=version, target_kind="precomputed", metric_keys=["exact_match"], submitted_by=owner
    )
    run_execute(run_id=succeeded.pk)
    runs["evaluation"] = succeeded
    # A second one on the same version, for the compare page (a run is not compared with itself).
    again = evaluation_submit(
        dataset_version=version, target_kind="precomputed", metric_keys=["exact_match"], submitted_by=owner
    )
    run_execute(run_id=again.pk)
    runs["evaluation_again"] = again
    failing = evaluation_submit(
        dataset_version=version,
        target_kind="precomputed",
        metric_keys=["answer_accuracy"],
        judge=judge,
        submitted_by=owner,
    )
    LLMEndpoint.objects.filter(pk=judge.pk).update(base_url="http://judge.example.invalid/v1")
    EvaluationRun.objects.filter(pk=failing.pk).update(
        spec={**failing.spec, "judge": {**failing.spec["judge"], "base_url": "http://judge.example.invalid/v1"}}
    )
    run_execute(run_id=failing.pk)
    runs["evaluation_failed"] = failing
    # A judge that nobody serves: the run fails before scoring, saying the judge could not be reached.
    LLMEndpoint.objects.filter(pk=judge.pk).update(base_url="http://127.0.0.1:9/v1")
    judge_down = evaluation_submit(
        dataset_version=version,
        target_kind="precomputed",
        metric_keys=["answer_accuracy"],
        judge=LLMEndpoint.objects.get(pk=judge.pk),
        submitted_by=owner,
    )
    run_execute(run_id=judge_down.pk)
    runs["evaluation_judge_down"] = judge_down
    run_progress(run_id=running.pk, done=3, total=10, note="arc_challenge (1/6): loglikelihood requests")
    translation.deactivate()
    runs = {name: EvaluationRun.objects.get(pk=run.pk) for name, run in runs.items()}
    expected = {
        "failed": RunStatus.FAILED,
        "cancelled": RunStatus.CANCELLED,
        "requeued": RunStatus.QUEUED,
        "reaped": RunStatus.ERRORED,
        "evaluation": RunStatus.SUCCEEDED,
        "evaluation_failed": RunStatus.FAILED,
        "evaluation_judge_down": RunStatus.FAILED,
    }
    assert {name: runs[name].status for name in expected} == expected, {n: runs[n].error_message for n in runs}
    assert all(runs[name].error_message for name in ("failed", "reaped", "evaluation_failed", "evaluation_judge_down"))
    assert runs["evaluation"].sample_results.filter(metric_scores__unscored_reason__gt="").exists()
    assert LLMEndpoint.objects.filter(last_check_ok=False).count() == 2
    data_values = {
        str(tiny_model),
        str(tiny_model) + "-gone",
        "http://127.0.0.1:9/v1",
        "judge.example.invalid",
        "gpu-host-1",
        "gpu-host-gone",
        owner.username,
        socket.gethostname(),
        # The default prompt is what the model under test reads, in English on purpose: data here.
        DEFAULT_PROMPT_TEMPLATE,
    }
    return {
        "owner": owner,
        "model": model,
        "other": other,
        "runs": runs,
        "dataset": dataset,
        "judge": judge,
        "data_values": data_values,
    }


def _pages(world) -> list[str]:
    runs, model = world["runs"], world["model"]
    pages = [
        reverse("leaderboard:index"),
        reverse("leaderboard:about"),
        reverse("leaderboard:submit"),
        reverse("leaderboard:metrics_through_time") + f"?models={model.pk}&models={world['other'].pk}",
        reverse("leaderboard:model_detail", args=[model.pk]),
        reverse("leaderboard:compare") + f"?a={runs['scored'].pk}&b={runs['scored'].pk}",
        reverse("runs:queue"),
        reverse("evaluator:index"),
        reverse("evaluator:dataset", args=[world["dataset"].pk]),
        reverse("evaluator:endpoint_new"),
        reverse("evaluator:endpoint_edit", args=[world["judge"].pk]),
        reverse("evaluator:embedding_new"),
        reverse("evaluator:run_new"),
        reverse("evaluator:dataset_new"),
        reverse("evaluator:run", args=[runs["evaluation"].pk]),
        reverse("evaluator:run", args=[runs["evaluation_failed"].pk]),
        reverse("evaluator:run", args=[runs["evaluation_judge_down"].pk]),
        reverse("evaluator:run_samples", args=[runs["evaluation"].pk]),
        reverse("evaluator:compare") + f"?a={runs['evaluation'].pk}&b={runs['evaluation_again'].pk}",
    ]
    pages += [reverse("runs:detail", args=[run.pk]) for run in runs.values()]
    pages += [reverse("runs:queue") + f"?status={status}" for status in ("failed", "errored", "cancelled")]
    return pages


def test_every_page_in_korean_shows_no_english_message_of_ours(world):
    english = _english_words()
    reader = Client()
    reader.force_login(world["owner"])
    reader.cookies["django_language"] = "ko"
    found = {}
    for page in _pages(world):
        response = reader.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert '<html lang="ko">' in html or not html.lstrip().startswith("<!DOCTYPE"), page
        leftover = english_found(html, english=english, data_values=world["data_values"])
        if leftover:
            found[page] = leftover
    visitor = Client()  # and the login page, as someone not logged in yet sees it
    visitor.cookies["django_language"] = "ko"
    leftover = english_found(visitor.get(reverse("login")).content.decode(), english=english, data_values=set())
    if leftover:
        found[reverse("login")] = leftover
    assert not found, "English on Korean pages:\n" + "\n".join(
        f"{page}:\n    " + "\n    ".join(chunks) for page, chunks in found.items()
    )


def test_stored_messages_follow_the_reader(world):
    """The same stored failure reads in English to an English reader and in Korean to a Korean one."""
    run = world["runs"]["reaped"]
    reader = Client()
    reader.force_login(world["owner"])
    english = reader.get(reverse("runs:detail", args=[run.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "stopped sending heartbeats" in english
    reader.cookies["django_language"] = "ko"
    korean = reader.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "stopped sending heartbeats" not in korean
    assert "gpu-host-gone" in korean
