"""Delta weights from tiny models: ``fine-tuned - base`` saved as a model folder, and ``base + delta``."""

from __future__ import annotations

import shutil
from pathlib import Path


def _combine(first: Path, second: Path, out: Path, *, sign: int, copy_from: Path) -> Path:
    from safetensors.torch import load_file, save_file

    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    out.mkdir(parents=True)
    tensors = {}
    for name, tensor in a.items():
        # In place, as lm-eval's HFLM adds a delta (param.data += delta): the same float32 operation.
        tensors[name] = (tensor.clone().sub_(b[name]) if sign < 0 else tensor.clone().add_(b[name])).contiguous()
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    for file in copy_from.iterdir():
        if file.is_file() and file.suffix != ".safetensors":
            shutil.copy(file, out / file.name)
    return out


def delta_folder_make(*, base: Path, finetuned: Path, out: Path) -> Path:
    """``finetuned - base``, with the fine-tuned model's config.json and no tokenizer (the base's is used)."""
    folder = _combine(finetuned, base, out, sign=-1, copy_from=finetuned)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "README.md", "tiny_model.json"):
        (folder / name).unlink(missing_ok=True)
    return folder


def merged_folder_make(*, base: Path, delta: Path, out: Path) -> Path:
    """``base + delta`` as a full model folder (the base's config and tokenizer)."""
    return _combine(base, delta, out, sign=1, copy_from=base)
