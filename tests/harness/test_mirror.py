"""The dataset mirror: verify reports real row counts; prepare builds the right download calls."""

from __future__ import annotations

import pytest

from leaderboard.harness.mirror import DatasetRef, is_hub_dataset, mirror_prepare, mirror_problem, mirror_verify
from leaderboard.harness.suites import suite_get

from .conftest import HARNESS_TASKS, SUITES_DIR


@pytest.fixture(scope="module")
def openllm():
    return suite_get("openllm_v1", suites_dir=SUITES_DIR)


def test_verify_reports_row_counts_of_the_real_mirror(real_mirror, openllm):
    report = mirror_verify(real_mirror, openllm, include_path=HARNESS_TASKS)
    assert len(report.entries) == 62  # arc, hellaswag, 57 mmlu subjects, truthfulqa_mc2, winogrande, gsm8k
    arc = report.entry("arc_challenge")
    assert (arc.dataset_path, arc.dataset_name, arc.folder) == (
        "allenai/ai2_arc",
        "ARC-Challenge",
        real_mirror / "allenai" / "ai2_arc",
    )
    assert arc.found and arc.rows == {"test": 1172, "train": 1119, "validation": 299}
    assert report.entry("gsm8k").rows == {"train": 7473, "test": 1319}
    assert report.entry("truthfulqa_mc2").rows == {"validation": 817}
    assert report.entry("winogrande").rows == {"train": 40398, "validation": 1267, "test": 1767}
    mmlu = [e for e in report.entries if e.dataset_path == "cais/mmlu"]
    assert len(mmlu) == 57 and all(e.found for e in mmlu)
    assert sum(e.rows["test"] for e in mmlu) == 14042
    assert sum(e.rows["dev"] for e in mmlu) == 285
    # HellaSwag is not in this mirror: reported, with the folder looked in.
    hellaswag = report.entry("hellaswag")
    assert not hellaswag.found and report.missing == [hellaswag] and not report.ok
    assert str(real_mirror / "Rowan" / "hellaswag") in hellaswag.problem
    assert "MISSING hellaswag: Rowan/hellaswag" in report.to_text()


def test_verify_kobest(real_mirror):
    report = mirror_verify(real_mirror, suite_get("kobest", suites_dir=SUITES_DIR), include_path=HARNESS_TASKS)
    assert report.ok
    assert report.entry("kobest_sentineg").rows == {
        "train": 3649,
        "validation": 400,
        "test": 397,
        "test_originated": 397,
    }


def test_problem_names_a_missing_config(real_mirror, tmp_path):
    assert mirror_problem(real_mirror, DatasetRef("allenai/ai2_arc", "ARC-Challenge")) is None
    problem = mirror_problem(real_mirror, DatasetRef("allenai/ai2_arc", "ARC-Hard"))
    assert "no config 'ARC-Hard'" in problem and "ARC-Challenge, ARC-Easy" in problem
    (tmp_path / "org" / "empty").mkdir(parents=True)
    assert "is empty" in mirror_problem(tmp_path, DatasetRef("org/empty"))
    assert not is_hub_dataset("json") and not is_hub_dataset("/data/x") and is_hub_dataset("allenai/ai2_arc")


def test_prepare_downloads_each_needed_repo_once(tmp_path, openllm):
    calls = []
    (tmp_path / "openai" / "gsm8k").mkdir(parents=True)
    (tmp_path / "openai" / "gsm8k" / "README.md").write_text("present")
    actions = mirror_prepare(tmp_path, openllm, include_path=HARNESS_TASKS, downloader=lambda **kw: calls.append(kw))
    expected = ["allenai/ai2_arc", "Rowan/hellaswag", "cais/mmlu", "truthfulqa/truthful_qa", "allenai/winogrande"]
    assert calls == [
        {"repo_id": repo, "repo_type": "dataset", "local_dir": str(tmp_path / repo), "revision": None}
        for repo in expected
    ]
    assert [(a.repo_id, a.downloaded) for a in actions] == [(r, True) for r in expected] + [("openai/gsm8k", False)]


def test_prepare_with_given_sources_and_revision(tmp_path, openllm):
    calls = []
    sources = {"t1": DatasetRef("org/a", "x"), "t2": DatasetRef("org/a", "y"), "t3": DatasetRef("json")}
    mirror_prepare(
        tmp_path,
        openllm,
        sources=sources,
        revision="refs/convert/parquet",
        skip_existing=False,
        downloader=lambda **kw: calls.append(kw),
    )
    assert calls == [
        {
            "repo_id": "org/a",
            "repo_type": "dataset",
            "local_dir": str(tmp_path / "org" / "a"),
            "revision": "refs/convert/parquet",
        }
    ]


def test_prepare_refuses_to_run_offline(tmp_path, openllm, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE=0"):
        mirror_prepare(tmp_path, openllm, sources={"t": DatasetRef("org/a")})
