"""Issue #11, the model page's bullets: the model card (README.md rendered safely, read only inside the model
roots), the history chart, the reproduce command beside each score printing the full-precision value, and
the run's spec as a table."""

from __future__ import annotations

import html as html_lib
import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from leaderboard.model_card import CARD_MAX_BYTES, card_html_render, model_card_get
from leaderboard.reproduce import REPRODUCE_OUTPUT, reproduce_with_value, value_print_script
from runs.models import Score
from tests.factories import registered_model_create, scored_run_create, user_create
from tests.leaderboard.sample_runs import real_runs, store_run  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

HOSTILE_CARD = """---
license: apache-2.0
tags: [secret-front-matter]
---
# Acme model

Fine-tuned on **Korean** legal text. <script>alert("card")</script>

<img src="http://tracker.example/pixel.png" onerror="alert(1)">
![remote](https://tracker.example/remote.png)

[docs](https://example.com/docs) [bad](javascript:alert(1)) <a href="javascript:alert(2)" onclick="x()">raw</a>

<iframe src="https://evil.example"></iframe><style>body{display:none}</style>

| metric | value |
|:-------|------:|
| acc    | 0.5   |
"""


def _section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start : html.find("</section>", start)]


@pytest.fixture
def owner(client):
    user = user_create(username="carol")
    client.force_login(user)
    return user


# --- the model card ---------------------------------------------------------------------------------


def test_card_markdown_is_rendered_without_html_scripts_or_remote_images():
    html = str(card_html_render(HOSTILE_CARD))
    assert "<h1>Acme model</h1>" in html and "<strong>Korean</strong>" in html
    assert '<a href="https://example.com/docs" rel="noopener noreferrer nofollow">docs</a>' in html
    assert "<table>" in html and "<td>0.5</td>" in html
    for bad in ("<script", "<img", "<iframe", "<style", "tracker.example/remote", "secret-front-matter"):
        assert bad not in html, bad
    # Every element and attribute that is left is a harmless one (the handlers above are only escaped text).
    from html.parser import HTMLParser

    class Elements(HTMLParser):
        found: list = []

        def handle_starttag(self, tag, attrs):
            self.found.append((tag, dict(attrs)))

    parser = Elements()
    parser.feed(html)
    tags = {tag for tag, _attrs in parser.found}
    assert tags <= {"h1", "p", "strong", "a", "table", "thead", "tbody", "tr", "th", "td"}, tags
    attributes = {name for _tag, attrs in parser.found for name in attrs}
    assert attributes <= {"href", "rel"}, attributes
    assert {attrs["href"] for tag, attrs in parser.found if tag == "a"} == {"https://example.com/docs"}
    # Raw HTML is shown as text, never passed through.
    assert "&lt;script&gt;" in html


def test_card_is_read_from_the_folder_inside_the_roots(model_root, tmp_path):
    folder = model_root / "acme"
    folder.mkdir()
    (folder / "README.md").write_text(HOSTILE_CARD, encoding="utf-8")
    card = model_card_get(storage_path=str(folder))
    assert not card.problem and "<h1>Acme model</h1>" in card.html and not card.truncated

    # Too big: cut at CARD_MAX_BYTES and said so.
    (folder / "README.md").write_text("# Big\n\n" + "word " * (CARD_MAX_BYTES // 4), encoding="utf-8")
    card = model_card_get(storage_path=str(folder))
    assert card.truncated and len(str(card.html)) < CARD_MAX_BYTES + 1000

    # No README.md.
    (folder / "README.md").unlink()
    assert "no README.md" in model_card_get(storage_path=str(folder)).problem

    # README.md linking out of the roots, even to a file inside them: a link is never followed.
    outside = tmp_path / "outside.md"
    outside.write_text("# secret outside", encoding="utf-8")
    (folder / "README.md").symlink_to(outside)
    card = model_card_get(storage_path=str(folder))
    assert "is a link" in card.problem and "secret" not in card.html
    (folder / "README.md").unlink()

    # A FIFO named README.md would block a reader: refused without blocking.
    os.mkfifo(folder / "README.md")
    assert "not a regular file" in model_card_get(storage_path=str(folder)).problem
    (folder / "README.md").unlink()

    # A folder outside the roots (or gone) is never read.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "README.md").write_text("# secret elsewhere", encoding="utf-8")
    card = model_card_get(storage_path=str(tmp_path / "elsewhere"))
    assert "outside the allowed model roots" in card.problem and not card.html
    # ... also through a folder link inside the roots.
    (model_root / "link").symlink_to(tmp_path / "elsewhere")
    assert "outside the allowed model roots" in model_card_get(storage_path=str(model_root / "link")).problem
    assert "does not exist" in model_card_get(storage_path=str(model_root / "gone")).problem


def test_model_page_shows_the_card(client, owner, model_root):
    folder = model_root / "carded"
    folder.mkdir()
    (folder / "README.md").write_text(HOSTILE_CARD, encoding="utf-8")
    model = registered_model_create(display_name="acme/carded", storage_path=str(folder), owner=owner)
    card = _section(client.get(reverse("leaderboard:model_detail", args=[model.pk])).content.decode(), "model-card")
    assert "<h1>Acme model</h1>" in card and "<script" not in card and "<img" not in card
    other = registered_model_create(display_name="acme/no-folder", storage_path=str(model_root / "missing"))
    card = _section(client.get(reverse("leaderboard:model_detail", args=[other.pk])).content.decode(), "model-card")
    assert "does not exist" in html_lib.unescape(card)


# --- the history chart ----------------------------------------------------------------------------------


def test_history_chart_has_the_full_runs_of_the_model(client, owner):
    model = registered_model_create(display_name="acme/history", owner=owner)
    now = timezone.now()
    six = ("arc", "hellaswag", "mmlu", "truthfulqa", "winogrande", "gsm8k")
    first = scored_run_create(model=model, values=dict.fromkeys(six, 0.30), finished_at=now - timedelta(days=2))
    scored_run_create(
        model=model, values=dict.fromkeys(six, 0.90), is_partial=True, finished_at=now - timedelta(days=1)
    )
    second = scored_run_create(model=model, values=dict.fromkeys(six, 0.42), finished_at=now, stderr=0.02)
    html = client.get(reverse("leaderboard:model_detail", args=[model.pk])).content.decode()
    section = _section(html, "model-history")
    assert 'id="model-history-plot"' in section
    figure = json.loads(
        json.loads(section.split('id="model-history-figure" type="application/json">')[1].split("</script>")[0])
    )
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["Average", "ARC", "HellaSwag", "MMLU", "TruthfulQA", "Winogrande", "GSM8K"]
    average = figure["data"][0]
    assert average["y"] == pytest.approx([30.0, 42.0])  # the smoke run (90) is left out, oldest first
    # Error bars: the Average's stderr from the columns' (six of 2 % -> 2 / sqrt(6) %).
    assert average["error_y"]["array"] == pytest.approx([1 / 6**0.5, 2 / 6**0.5])
    assert f"#{first.pk}" in average["text"][0] and f"#{second.pk}" in average["text"][1]
    # Our own static plotly and script, no inline script (CSP).
    assert "/static/vendor/plotly.min.js" in html and "/static/js/model_history.js" in html
    assert "<script>" not in html
    # A model without a full run: no chart.
    bare = registered_model_create(display_name="acme/bare", owner=owner)
    assert 'id="model-history"' not in client.get(reverse("leaderboard:model_detail", args=[bare.pk])).content.decode()


# --- the reproduce command beside each score -------------------------------------------------------------


def _results_file(folder, results: dict) -> None:
    target = folder / REPRODUCE_OUTPUT / "model__name"
    target.mkdir(parents=True)
    (target / "results_2026-01-01T00-00-00.json").write_text(json.dumps({"results": results}), encoding="utf-8")


def test_printed_value_is_the_full_precision_column_value(tmp_path):
    """The Python the command ends with, run for real on an lm-eval-shaped results file: a one-task column
    prints lm-eval's value, a group column the plain mean over its leaves, every digit."""
    leaves = {f"mmlu_{n}": {"acc,none": value} for n, value in enumerate((0.1, 0.2, 0.7000000000000001, 1 / 3))}
    _results_file(tmp_path, {"arc_challenge": {"acc_norm,none": 0.2542662116040956}, **leaves})

    def printed(script: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert (
        printed(value_print_script(leaves=["arc_challenge"], metric="acc_norm", filter="none")) == "0.2542662116040956"
    )
    values = [leaves[name]["acc,none"] for name in leaves]
    assert printed(value_print_script(leaves=list(leaves), metric="acc", filter="none")) == repr(
        sum(values) / len(values)
    )
    command = reproduce_with_value(command="lm_eval --tasks mmlu", leaves=list(leaves), metric="acc", filter="none")
    assert command.startswith(f"lm_eval --tasks mmlu --output_path {REPRODUCE_OUTPUT} && python3 -c '")
    assert "\n" not in command


def test_reproduce_command_and_copy_button_beside_each_column(client, owner):
    model = registered_model_create(display_name="acme/repro", owner=owner)
    run = scored_run_create(model=model, values={"arc": 0.2542662116040956, "mmlu": 0.4})
    run.details = {
        "reproduce_commands": {
            "arc_challenge": "HF_HUB_OFFLINE=1 lm_eval --tasks arc_challenge",
            "mmlu": "HF_HUB_OFFLINE=1 lm_eval --tasks mmlu",
        },
        "leaf_tasks": {"mmlu": ["mmlu_a", "mmlu_b"]},
    }
    run.save(update_fields=["details"])
    Score.objects.bulk_create(
        [Score(run=run, task=t, metric="acc", filter="none", value=0.4) for t in ("mmlu_a", "mmlu_b")]
    )
    scores = _section(client.get(reverse("leaderboard:model_detail", args=[model.pk])).content.decode(), "model-scores")
    table = scores[scores.index('class="data suite-columns"') : scores.index("</table>", scores.index("suite-columns"))]
    arc = html_lib.unescape(table[table.index('<tr data-column="arc">') :].split("</tr>")[0])
    assert "lm_eval --tasks arc_challenge --output_path lm-eval-reproduce && python3 -c" in arc
    assert '["arc_challenge"]' in arc and '"acc_norm,none"' in arc
    assert 'data-copy="HF_HUB_OFFLINE=1 lm_eval --tasks arc_challenge --output_path' in arc
    assert "prints <code>0.2542662116040956</code>" in arc  # the full-precision value beside the 25.43
    assert 'class="command one-line"' in arc
    mmlu = html_lib.unescape(table[table.index('<tr data-column="mmlu">') :].split("</tr>")[0])
    assert "lm_eval --tasks mmlu --output_path" in mmlu and '["mmlu_a", "mmlu_b"]' in mmlu
    # A column without a command says so instead of showing an empty box.
    hellaswag = table[table.index('<tr data-column="hellaswag">') :].split("</tr>")[0]
    assert "data-copy" not in hellaswag


# --- the run's spec as a table ------------------------------------------------------------------------


def test_run_spec_is_a_table_not_a_python_dict(client, owner):
    model = registered_model_create(display_name="acme/spec", owner=owner)
    run = scored_run_create(model=model, values={"arc": 0.5})
    run.spec = {
        "suite": "openllm_v1",
        "suite_version": 1,
        "limit": None,
        "use_chat_template": False,
        "model_args": {"pretrained": "/models/acme", "dtype": "bfloat16"},
        "tasks": [{"task": "arc_challenge", "num_fewshot": 25}],
        "items": ["a", "b"],
    }
    run.save(update_fields=["spec"])
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    spec = page[page.index('id="run-spec"') :].split("</section>")[0]
    assert "{'" not in spec and "&#x27;suite&#x27;:" not in spec  # no Python dict
    assert '<th scope="row"><code>suite</code></th><td><code>openllm_v1</code></td>' in spec
    assert '<th scope="row"><code>use_chat_template</code></th><td><code>false</code></td>' in spec
    assert '<th scope="row"><code>limit</code></th><td><span class="muted">–</span></td>' in spec
    assert '<th scope="row"><code>pretrained</code></th><td><code>/models/acme</code></td>' in spec  # nested table
    assert '<th scope="row"><code>num_fewshot</code></th><td><code>25</code></td>' in spec  # a list of dicts
    assert (
        '<th scope="row"><code>items</code></th><td><code>a</code>, <code>b</code></td>' in spec
    )  # a key named "items"
    model_page = client.get(reverse("leaderboard:model_detail", args=[model.pk])).content.decode()
    assert '<th scope="row"><code>suite</code></th><td><code>openllm_v1</code></td>' in _section(
        model_page, "model-scores"
    )


# --- with a real run: the shown command, run for real, prints the stored value ---------------------------


@pytest.fixture
def real_run(real_runs, settings, owner):  # noqa: F811 (fixture)
    model = registered_model_create(display_name="acme/real", owner=owner)
    return store_run(real_runs["a"], model=model, artifacts_dir=settings.ARTIFACTS_DIR)


@pytest.mark.slow
def test_shown_command_prints_the_stored_value_to_the_last_digit(client, owner, real_run, tmp_path):
    page = client.get(reverse("leaderboard:model_detail", args=[real_run.model_id])).content.decode()
    scores = _section(page, "model-scores")
    row = scores[scores.index('<tr data-column="arc">') :].split("</tr>")[0]
    command = html_lib.unescape(row.split('data-copy="')[1].split('"')[0])
    stored = real_run.scores.get(task="arc_challenge", metric="acc_norm", filter="none").value
    assert f"prints <code>{stored!r}</code>" in row
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == repr(stored)
