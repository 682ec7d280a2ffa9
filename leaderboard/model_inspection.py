"""Read what a model folder is, from its files, without loading its weights.

Used before a submission is queued (so bad input gets a clear message at once) and again on the
worker. Every refusal is a ``ModelFolderError`` with a sentence a user can act on.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
CONFIG_FILES = ("config.json", "adapter_config.json", "generation_config.json", "tokenizer.json",
                "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json")
MOE_HINTS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_intermediate_size")


class ModelFolderError(Exception):
    """The folder cannot be evaluated as given; the message says why and what to do."""


@dataclass
class ModelFolderInfo:
    path: Path
    is_adapter: bool
    base_model_path: Path | None
    revision: str
    architecture: str
    num_params: int | None
    license: str
    moe: bool
    merged: bool


def allowed_path_resolve(raw_path: str) -> Path:
    """Resolve a user-given path and refuse it unless it lies inside one of MODEL_ROOTS."""
    if not raw_path or not raw_path.strip():
        raise ModelFolderError(_("Give the path of a model folder."))
    path = Path(raw_path.strip()).expanduser()
    if not path.is_absolute():
        path = settings.MODEL_ROOTS[0] / path
    # resolve() follows symlinks, so a link inside a root that points outside it is refused too.
    resolved = path.resolve()
    if not any(resolved == root or root in resolved.parents for root in settings.MODEL_ROOTS):
        roots = ", ".join(str(r) for r in settings.MODEL_ROOTS)
        raise ModelFolderError(_("%(path)s is outside the allowed model roots (%(roots)s).") % {"path": raw_path, "roots": roots})
    if not resolved.exists():
        raise ModelFolderError(_("%(path)s does not exist.") % {"path": resolved})
    if not resolved.is_dir():
        raise ModelFolderError(_("%(path)s is a file; give the model's folder.") % {"path": resolved})
    return resolved


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFolderError(_("%(file)s cannot be read: %(error)s") % {"file": path, "error": exc}) from exc


def _refuse_remote_code(config: dict, where: Path) -> None:
    # auto_map points transformers at Python files shipped with the weights: running them would
    # execute submitted code on the GPU workers, so such models are refused.
    if config.get("auto_map") or config.get("trust_remote_code"):
        raise ModelFolderError(
            _("%(path)s needs custom code (auto_map in config.json); models that need trust_remote_code are not evaluated.")
            % {"path": where}
        )


def folder_revision(path: Path) -> str:
    """The git commit of a checkout, else a sha256 over the config and weight files (name, size, content)."""
    if (path / ".git").exists():
        result = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return result.stdout.strip()
    digest = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file() and (p.name in CONFIG_FILES or p.suffix in WEIGHT_SUFFIXES))
    for file in files:
        digest.update(f"{file.name}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _safetensors_param_count(path: Path) -> int:
    # The header is 8 bytes of little-endian length, then JSON with every tensor's shape:
    # counting from it needs no weights in memory.
    total = 0
    for file in sorted(path.glob("*.safetensors")):
        with file.open("rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(header_len))
        for name, entry in header.items():
            if name != "__metadata__":
                count = 1
                for dim in entry["shape"]:
                    count *= dim
                total += count
    return total


def _license_from_card(path: Path) -> str:
    card = path / "README.md"
    if not card.is_file():
        return ""
    match = re.search(r"^---\s*$(.*?)^---\s*$", card.read_text(encoding="utf-8", errors="replace"), re.M | re.S)
    if match:
        license_line = re.search(r"^license:\s*(\S+)", match.group(1), re.M)
        if license_line:
            return license_line.group(1).strip("'\"")
    return ""


def _check_tokenizer_loads(path: Path) -> None:
    from transformers import AutoTokenizer

    try:
        AutoTokenizer.from_pretrained(str(path), trust_remote_code=False, local_files_only=True)
    except Exception as exc:  # transformers raises many kinds here; all mean "not usable"
        raise ModelFolderError(_("The tokenizer in %(path)s does not load: %(error)s") % {"path": path, "error": exc}) from exc


def _check_config_loads(path: Path) -> None:
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(str(path), trust_remote_code=False, local_files_only=True)
    except Exception as exc:
        raise ModelFolderError(_("config.json in %(path)s does not load: %(error)s") % {"path": path, "error": exc}) from exc


def model_folder_inspect(raw_path: str, *, base_model_path: str = "", load_check: bool = True) -> ModelFolderInfo:
    """Validate a model (or PEFT adapter) folder and read its facts from the files.

    Args:
        raw_path: what the user typed; must resolve inside settings.MODEL_ROOTS.
        base_model_path: for an adapter, its base model's folder (else read from adapter_config.json).
        load_check: also load config and tokenizer with transformers (skip only where already done).
    """
    path = allowed_path_resolve(raw_path)
    adapter_config_file = path / "adapter_config.json"
    is_adapter = adapter_config_file.is_file()
    base_path: Path | None = None

    if is_adapter:
        adapter_config = _read_json(adapter_config_file)
        base_raw = base_model_path or adapter_config.get("base_model_name_or_path") or ""
        if not base_raw:
            raise ModelFolderError(_("%(path)s is a PEFT adapter; give the folder of its base model.") % {"path": path})
        try:
            base_info = model_folder_inspect(base_raw, load_check=load_check)
        except ModelFolderError as exc:
            raise ModelFolderError(_("The adapter's base model is not usable: %(error)s") % {"error": exc}) from exc
        base_path = base_info.path
        # A LoRA's own tensors are small; the leaderboard shows the size of the model that runs.
        return ModelFolderInfo(
            path=path, is_adapter=True, base_model_path=base_path, revision=folder_revision(path),
            architecture=base_info.architecture, num_params=base_info.num_params,
            license=_license_from_card(path) or base_info.license, moe=base_info.moe, merged=False,
        )

    if not (path / "config.json").is_file():
        raise ModelFolderError(
            _("%(path)s is not a model folder: it has neither config.json nor adapter_config.json.") % {"path": path}
        )
    config = _read_json(path / "config.json")
    _refuse_remote_code(config, path)
    if not any(p.suffix in WEIGHT_SUFFIXES for p in path.iterdir()):
        raise ModelFolderError(_("%(path)s has config.json but no weight files (*.safetensors, *.bin).") % {"path": path})
    if load_check:
        _check_config_loads(path)
        _check_tokenizer_loads(path)

    architectures = config.get("architectures") or []
    num_params = _safetensors_param_count(path) or None
    tags_text = json.dumps(config).lower()
    return ModelFolderInfo(
        path=path,
        is_adapter=False,
        base_model_path=None,
        revision=folder_revision(path),
        architecture=architectures[0] if architectures else config.get("model_type", ""),
        num_params=num_params,
        license=_license_from_card(path),
        moe=any(key in config for key in MOE_HINTS),
        merged="mergekit" in tags_text or (path / "mergekit_config.yml").is_file(),
    )
