"""Read what a model folder is, from its files, without loading its weights.

Used before a submission is queued (so bad input gets a clear message at once) and again on the
worker. Every refusal is a ``ModelFolderError`` with a sentence a user can act on: the folders are
typed or built by users, so any file may be empty, truncated, a link elsewhere, a FIFO or a loop.
Every file read here (and by transformers, which reads the folder's top-level files) must resolve
inside settings.MODEL_ROOTS.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import struct
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
CONFIG_FILES = (
    "config.json",
    "adapter_config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
)
MOE_HINTS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_intermediate_size")
# The safetensors library refuses headers over 100 MB; so do we, before reading one.
SAFETENSORS_MAX_HEADER = 100_000_000
# config.json and adapter_config.json are a few KB; a bigger one is not a config.
CONFIG_MAX_BYTES = 16 << 20
# A model folder has dozens of files; a walk that finds more stops with a message.
MAX_FOLDER_ENTRIES = 10_000
NAME_MAX_BYTES = 255
# The columns that store paths are 1,000 characters; in bytes, two such paths and a revision still fit
# one PostgreSQL index row (the unique constraint over them).
PATH_MAX_BYTES = 1000
_INT64_MAX = 2**63 - 1


class ModelFolderError(Exception):
    """The folder cannot be evaluated as given; the message says why and what to do."""

    def __init__(self, message: str) -> None:
        # A file name that is not valid UTF-8 (lone surrogates from os calls) could not be sent in a page.
        super().__init__(str(message).encode("utf-8", "replace").decode("utf-8"))


class BaseModelFolderError(ModelFolderError):
    """The base model folder (of an adapter or delta weights) is the problem, not the submitted folder."""


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
    is_delta: bool = False


def _inside_roots(resolved: Path) -> bool:
    return any(resolved == root or root in resolved.parents for root in settings.MODEL_ROOTS)


def os_error_message(exc: BaseException, path: str | Path) -> str:
    """A sentence for an error of the file system, naming the path but never a file's content."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, RuntimeError) or code == errno.ELOOP:
        return _("%(path)s is a loop of symbolic links.") % {"path": path}
    if code in (errno.EACCES, errno.EPERM):
        return _("The site is not allowed to read %(path)s (permission denied).") % {"path": path}
    if code == errno.ENAMETOOLONG:
        return _("A part of %(path)s is longer than the file system allows.") % {"path": path}
    if code == errno.ENOTDIR:
        return _("%(path)s goes through a file as if it were a folder.") % {"path": path}
    return _("%(path)s cannot be read: %(reason)s") % {
        "path": path,
        "reason": getattr(exc, "strerror", None) or type(exc).__name__,
    }


def _path_text_check(raw: str) -> None:
    # Refused before the file system sees them: a NUL makes os calls raise ValueError, an overlong
    # name ENAMETOOLONG, and a path over the column size could not be stored.
    if "\0" in raw:
        raise ModelFolderError(_("The path contains a NUL character."))
    try:
        encoded = os.fsencode(raw)
    except (UnicodeError, ValueError):
        raise ModelFolderError(_("The path contains characters that are not valid in a file name.")) from None
    if any(len(part) > NAME_MAX_BYTES for part in encoded.split(b"/")):
        raise ModelFolderError(
            _("A part of the path is longer than %(n)s bytes, the most a file name can have.") % {"n": NAME_MAX_BYTES}
        )
    if len(encoded) > PATH_MAX_BYTES:
        raise ModelFolderError(_("The path is longer than %(n)s bytes.") % {"n": PATH_MAX_BYTES})


def allowed_path_resolve(raw_path: str) -> Path:
    """Resolve a user-given path and refuse it unless it is a folder inside one of MODEL_ROOTS."""
    if not isinstance(raw_path, str) or not raw_path.strip():
        raise ModelFolderError(_("Give the path of a model folder."))
    raw = raw_path.strip()
    _path_text_check(raw)
    path = Path(raw)
    if not path.is_absolute():
        path = settings.MODEL_ROOTS[0] / path
    try:
        # resolve() follows symlinks, so a link inside a root that points outside it is refused too.
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise ModelFolderError(os_error_message(exc, raw)) from None
    if not _inside_roots(resolved):
        roots = ", ".join(str(r) for r in settings.MODEL_ROOTS)
        raise ModelFolderError(
            _("%(path)s is outside the allowed model roots (%(roots)s).") % {"path": raw, "roots": roots}
        )
    if len(os.fsencode(str(resolved))) > PATH_MAX_BYTES:
        raise ModelFolderError(_("The path is longer than %(n)s bytes.") % {"n": PATH_MAX_BYTES})
    try:
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        raise ModelFolderError(_("%(path)s does not exist.") % {"path": resolved}) from None
    except OSError as exc:
        raise ModelFolderError(os_error_message(exc, resolved)) from None
    if not stat.S_ISDIR(mode):
        raise ModelFolderError(_("%(path)s is a file; give the model's folder.") % {"path": resolved})
    if not os.access(resolved, os.R_OK | os.X_OK):
        raise ModelFolderError(os_error_message(PermissionError(errno.EACCES, "denied"), resolved))
    return resolved


def folder_files_check(path: Path) -> None:
    """Refuse a folder whose files could make a reader leave the model roots or hang.

    Every link (at any depth, except inside ``.git``) must resolve inside the roots, and every entry
    must be a folder or a regular file: a FIFO or a device named config.json would block or stream forever.
    """
    seen = 0
    for folder, dirs, files in os.walk(path, onerror=_walk_error):
        for name in [*dirs, *files]:
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                raise ModelFolderError(
                    _("%(path)s holds more than %(n)s files and folders; give the model's own folder.")
                    % {"path": path, "n": MAX_FOLDER_ENTRIES}
                )
            _entry_check(Path(folder) / name)
        # A checkout's .git is only read by `git rev-parse` (a commit id comes back): checked, not walked.
        dirs[:] = [name for name in dirs if name != ".git" or folder != str(path)]


def _walk_error(exc: OSError) -> None:
    raise ModelFolderError(os_error_message(exc, exc.filename or "?"))


def _entry_check(entry: Path) -> None:
    try:
        if entry.is_symlink():
            target = entry.resolve(strict=True)
            if not _inside_roots(target):
                raise ModelFolderError(
                    _("%(file)s is a link to a place outside the allowed model roots.") % {"file": entry}
                )
        mode = entry.stat().st_mode
    except FileNotFoundError:
        raise ModelFolderError(_("%(file)s is a link to nothing.") % {"file": entry}) from None
    except (OSError, RuntimeError) as exc:
        raise ModelFolderError(os_error_message(exc, entry)) from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise ModelFolderError(_("%(file)s is not a regular file.") % {"file": entry})


def _read_json(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            data = handle.read(CONFIG_MAX_BYTES + 1)
        if len(data) > CONFIG_MAX_BYTES:
            raise ModelFolderError(_("%(file)s is too large to be a configuration file.") % {"file": path})
        value = json.loads(data.decode("utf-8"))
    except OSError as exc:
        raise ModelFolderError(os_error_message(exc, path)) from None
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ModelFolderError(_("%(file)s is not valid JSON.") % {"file": path}) from None
    if not isinstance(value, dict):
        raise ModelFolderError(_("%(file)s is not a JSON object.") % {"file": path})
    return value


def _refuse_remote_code(config: dict, where: Path) -> None:
    # auto_map points transformers at Python files shipped with the weights: running them would
    # execute submitted code on the GPU workers, so such models are refused.
    if config.get("auto_map") or config.get("trust_remote_code"):
        raise ModelFolderError(
            _(
                "%(path)s needs custom code (auto_map in config.json); models that need trust_remote_code are not "
                "evaluated."
            )
            % {"path": where}
        )


def _git_revision(path: Path) -> str:
    # No fsmonitor or other hook a submitted .git/config could name: only the commit is read.
    try:
        result = subprocess.run(
            ["git", "-c", "core.fsmonitor=false", "-C", str(path), "rev-parse", "--verify", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    revision = result.stdout.strip()
    return revision if result.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", revision) else ""


def folder_revision(path: Path) -> str:
    """The git commit of a checkout, else a sha256 over the config and weight files (name, size, content)."""
    if (path / ".git").exists() and (revision := _git_revision(path)):
        return revision
    digest = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file() and (p.name in CONFIG_FILES or p.suffix in WEIGHT_SUFFIXES))
    for file in files:
        digest.update(f"{file.name}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _safetensors_param_count(file: Path) -> int:
    # The header is 8 bytes of little-endian length, then JSON with every tensor's shape:
    # counting from it needs no weights in memory. The length is checked against the file's size
    # and the library's cap before anything that long is read.
    size = file.stat().st_size
    broken = _("%(file)s is not a valid safetensors file: %(reason)s")
    if size < 8:
        raise ModelFolderError(broken % {"file": file, "reason": _("it is empty or shorter than its header.")})
    with file.open("rb") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        if header_len > SAFETENSORS_MAX_HEADER or header_len > size - 8:
            raise ModelFolderError(
                broken % {"file": file, "reason": _("its header length runs past the end of the file.")}
            )
        raw_header = handle.read(header_len)
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise ModelFolderError(broken % {"file": file, "reason": _("its header is not valid JSON.")})
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise ModelFolderError(
                broken % {"file": file, "reason": _("tensor %(name)s has no valid shape.") % {"name": name[:100]}}
            )
        count = 1
        for dim in shape:
            count *= dim
        total += count
        if total > _INT64_MAX:
            raise ModelFolderError(broken % {"file": file, "reason": _("its tensors are impossibly large.")})
    return total


# First bytes of each weight format: a PyTorch zip archive, a legacy pickle, GGUF.
_WEIGHT_MAGIC = {
    ".bin": (b"PK\x03\x04", b"\x80"),
    ".pt": (b"PK\x03\x04", b"\x80"),
    ".pth": (b"PK\x03\x04", b"\x80"),
    ".gguf": (b"GGUF",),
}


def _weights_check(path: Path) -> int:
    """Check every weight file of a folder by its header; returns the parameters counted in safetensors."""
    total = 0
    weights = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if not weights:
        raise ModelFolderError(
            _("%(path)s has config.json but no weight files (*.safetensors, *.bin).") % {"path": path}
        )
    for file in weights:
        if file.suffix == ".safetensors":
            total += _safetensors_param_count(file)
            continue
        with file.open("rb") as handle:
            start = handle.read(4)
        if not start.startswith(_WEIGHT_MAGIC[file.suffix]):
            raise ModelFolderError(_("%(file)s is empty or not a weight file.") % {"file": file})
    return min(total, _INT64_MAX)


def _license_from_card(path: Path) -> str:
    card = path / "README.md"
    if not card.is_file():
        return ""
    with card.open("rb") as handle:
        head = handle.read(64 << 10).decode("utf-8", errors="replace")
    match = re.search(r"^---\s*$(.*?)^---\s*$", head, re.M | re.S)
    if match:
        license_line = re.search(r"^license:\s*(\S+)", match.group(1), re.M)
        if license_line:
            return license_line.group(1).strip("'\"")[:100]
    return ""


# transformers' lazy module is not thread-safe: threads importing its modules for the first time at once get
# them half-initialised ("cannot import name 'AutoConfig' from 'transformers'"), which answered HTTP 500 when
# gunicorn's threads checked folders together (benchmarks/load_submissions.py). The loads are quick: one at
# a time per process.
_TRANSFORMERS_LOCK = threading.Lock()


def _check_tokenizer_loads(path: Path) -> None:
    from transformers import AutoTokenizer

    try:
        AutoTokenizer.from_pretrained(str(path), trust_remote_code=False, local_files_only=True)
    except Exception as exc:  # transformers raises many kinds here; all mean "not usable"
        raise ModelFolderError(
            _("The tokenizer in %(path)s does not load: %(error)s") % {"path": path, "error": exc}
        ) from exc


def _check_config_loads(path: Path) -> None:
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(str(path), trust_remote_code=False, local_files_only=True)
    except Exception as exc:
        raise ModelFolderError(
            _("config.json in %(path)s does not load: %(error)s") % {"path": path, "error": exc}
        ) from exc


def _full_model_inspect(path: Path, *, load_check: bool, tokenizer: bool = True) -> ModelFolderInfo:
    """A folder with config.json and weights (not an adapter); ``tokenizer=False`` for delta weights, which
    run with their base's tokenizer."""
    if not (path / "config.json").is_file():
        raise ModelFolderError(
            _("%(path)s is not a model folder: it has neither config.json nor adapter_config.json.") % {"path": path}
        )
    config = _read_json(path / "config.json")
    _refuse_remote_code(config, path)
    num_params = _weights_check(path) or None
    if load_check:
        with _TRANSFORMERS_LOCK:
            _check_config_loads(path)
            if tokenizer:
                _check_tokenizer_loads(path)
    architectures = config.get("architectures")
    architecture = architectures[0] if isinstance(architectures, list) and architectures else config.get("model_type")
    merged = "mergekit" in json.dumps(config, default=str).lower() or (path / "mergekit_config.yml").is_file()
    return ModelFolderInfo(
        path=path,
        is_adapter=False,
        base_model_path=None,
        revision=folder_revision(path),
        architecture=str(architecture or "")[:200],
        num_params=num_params,
        license=_license_from_card(path),
        moe=any(key in config for key in MOE_HINTS),
        merged=merged,
    )


def _base_resolve(raw_base: object, *, of: Path, load_check: bool) -> ModelFolderInfo:
    """The base model of an adapter or delta: a full model folder inside the roots, not ``of`` itself.

    A base that is itself an adapter is refused: lm-eval loads one adapter on a full model, and a chain
    (or an adapter naming itself, or a cycle) would otherwise be followed without end.
    """
    if not isinstance(raw_base, str):
        raise BaseModelFolderError(_("The base model path must be a folder path."))
    try:
        base = allowed_path_resolve(raw_base)
    except ModelFolderError as exc:
        raise BaseModelFolderError(_("The base model is not usable: %(error)s") % {"error": exc}) from None
    if base == of:
        raise BaseModelFolderError(_("The base model of %(path)s is that folder itself.") % {"path": of})
    if (base / "adapter_config.json").is_file():
        raise BaseModelFolderError(
            _("The base model %(base)s is itself an adapter; give the full model it was trained on.") % {"base": base}
        )
    try:
        folder_files_check(base)
        return _full_model_inspect(base, load_check=load_check)
    except ModelFolderError as exc:
        raise BaseModelFolderError(_("The base model is not usable: %(error)s") % {"error": exc}) from None


def _adapter_inspect(path: Path, *, base_model_path: str, load_check: bool) -> ModelFolderInfo:
    adapter_config = _read_json(path / "adapter_config.json")
    base_raw = base_model_path or adapter_config.get("base_model_name_or_path") or ""
    if not base_raw:
        raise BaseModelFolderError(_("%(path)s is a PEFT adapter; give the folder of its base model.") % {"path": path})
    base_info = _base_resolve(base_raw, of=path, load_check=load_check)
    # A LoRA's own tensors are small; the leaderboard shows the size of the model that runs.
    return ModelFolderInfo(
        path=path,
        is_adapter=True,
        base_model_path=base_info.path,
        revision=folder_revision(path),
        architecture=base_info.architecture,
        num_params=base_info.num_params,
        license=_license_from_card(path) or base_info.license,
        moe=base_info.moe,
        merged=False,
    )


def _delta_inspect(path: Path, *, base_model_path: str, load_check: bool) -> ModelFolderInfo:
    """Delta weights: a full model folder whose tensors are added to its base's (lm-eval's ``delta=``)."""
    if not base_model_path:
        raise BaseModelFolderError(_("Delta weights need the folder of their base model."))
    info = _full_model_inspect(path, load_check=load_check, tokenizer=False)
    base_info = _base_resolve(base_model_path, of=path, load_check=load_check)
    if (info.architecture, info.num_params) != (base_info.architecture, base_info.num_params):
        raise BaseModelFolderError(
            _(
                "The delta weights (%(arch)s, %(n)s parameters) do not match the base model (%(base_arch)s, "
                "%(base_n)s parameters)."
            )
            % {
                "arch": info.architecture,
                "n": info.num_params,
                "base_arch": base_info.architecture,
                "base_n": base_info.num_params,
            }
        )
    info.is_delta, info.base_model_path, info.license = True, base_info.path, info.license or base_info.license
    return info


def model_folder_inspect(
    raw_path: str, *, base_model_path: str = "", weight_type: str = "", load_check: bool = True
) -> ModelFolderInfo:
    """Validate a model (or PEFT adapter, or delta weights) folder and read its facts from the files.

    Args:
        raw_path: what the user typed; must resolve inside settings.MODEL_ROOTS.
        base_model_path: for an adapter, its base model's folder (else read from adapter_config.json);
            for delta weights (``weight_type="delta"``), required.
        weight_type: "delta" reads ``raw_path`` as delta weights on ``base_model_path``; otherwise a
            folder with adapter_config.json is an adapter and any other a full model.
        load_check: also load config and tokenizer with transformers (skip only where already done).

    Raises:
        ModelFolderError: with the reason (a BaseModelFolderError when the base model is the problem).
    """
    path = allowed_path_resolve(raw_path)
    try:
        folder_files_check(path)
        is_adapter = (path / "adapter_config.json").is_file()
        if weight_type == "delta":
            if is_adapter:
                raise ModelFolderError(_("%(path)s is a PEFT adapter, not delta weights.") % {"path": path})
            return _delta_inspect(path, base_model_path=base_model_path, load_check=load_check)
        if is_adapter:
            return _adapter_inspect(path, base_model_path=base_model_path, load_check=load_check)
        return _full_model_inspect(path, load_check=load_check)
    except OSError as exc:  # a file changed or vanished between the checks and the read
        raise ModelFolderError(os_error_message(exc, exc.filename or path)) from None
