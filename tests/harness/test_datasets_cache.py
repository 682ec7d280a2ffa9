"""Two mirrors holding the same dataset name must never share `datasets`' Arrow cache."""

import pyarrow as pa
import pyarrow.parquet as pq

from leaderboard.harness.adapter import build_task_plan, datasets_cache_dir, write_task_overrides


def _gsm8k_copy(root, rows):
    folder = root / "openai" / "gsm8k"
    (folder / "main").mkdir(parents=True)
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: main\n  data_files:\n  - split: test\n    path: main/test-*\n"
        "  - split: train\n    path: main/train-*\n---\n"
    )
    table = pa.table({"question": [f"q{i}" for i in range(rows)], "answer": [f"#### {i}" for i in range(rows)]})
    for split in ("test", "train"):
        pq.write_table(table, folder / "main" / f"{split}-00000-of-00001.parquet")
    return folder


def test_each_mirror_folder_reads_its_own_rows(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    first, second = _gsm8k_copy(tmp_path / "a", 3), _gsm8k_copy(tmp_path / "b", 5)
    assert datasets_cache_dir(first) != datasets_cache_dir(second)
    counts = [
        datasets.load_dataset(str(f), "main", cache_dir=str(datasets_cache_dir(f)))["test"].num_rows
        for f in (first, second)
    ]
    assert counts == [3, 5]

    # Rewriting a file in place (an updated mirror) changes the cache folder too.
    before = datasets_cache_dir(second)
    pq.write_table(
        pa.table({"question": ["only"], "answer": ["#### 1"]}), second / "main" / "test-00000-of-00001.parquet"
    )
    assert datasets_cache_dir(second) != before


def test_override_yaml_carries_the_cache_dir(tmp_path):
    import yaml

    mirror = tmp_path / "mirror"
    _gsm8k_copy(mirror, 2)
    plan = build_task_plan([("gsm8k", 5)])
    written = write_task_overrides(plan, mirror_dir=mirror, tasks_dir=tmp_path / "tasks")
    config = yaml.safe_load(next(p for p in written if p.name == "gsm8k.yaml").read_text())
    assert config["dataset_path"] == str(mirror / "openai" / "gsm8k")
    assert config["dataset_kwargs"]["cache_dir"] == str(datasets_cache_dir(mirror / "openai" / "gsm8k"))
