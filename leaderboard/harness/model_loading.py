"""Model loading (part of the lm-eval adapter): lm-eval's ``hf`` model arguments for a model folder, PEFT
adapter or delta weights (checked without loading weights, and refused when they need remote code), the
device and batch size, the HFLM subclass a run evaluates with (stops between batches when asked to,
reports progress) and out-of-memory handling. lm_eval, transformers and torch are imported inside
functions only.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runs.executors import EvaluationFailed, RunCancelled
from runs.messages import Message

# On CPU a fixed small batch: lm-eval's "auto" detection probes with huge batches, which only makes
# sense on a GPU.
CPU_BATCH_SIZE = 4
_PROGRESS_INTERVAL_S = 2.0

ProgressCallback = Callable[[int, int, Message | str], None]  # note: shown in each reader's language


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvaluationFailed(Message("harness.unreadable", path=str(path), error=str(exc))) from exc


def _check_model_config(folder: Path) -> None:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise EvaluationFailed(Message("harness.not_hf_folder", folder=str(folder)))
    config = _read_json(config_path)
    if config.get("auto_map") or config.get("trust_remote_code"):
        raise EvaluationFailed(
            Message(
                "harness.remote_code",
                folder=str(folder),
                key="auto_map" if config.get("auto_map") else "trust_remote_code",
            )
        )
    from transformers import CONFIG_MAPPING
    from transformers import __version__ as transformers_version

    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise EvaluationFailed(
            Message(
                "harness.model_type_unknown",
                folder=str(folder),
                model_type=repr(model_type),
                version=transformers_version,
            )
        )


# lm-eval's HFLM model_args for each quantization (its own names: load_in_8bit/load_in_4bit and
# bnb_4bit_compute_dtype go to transformers, gptqmodel=True loads through GPTQModel).
QUANTIZATION_ARGS: dict[str, dict[str, Any]] = {
    "8bit": {"load_in_8bit": True},
    "4bit": {"load_in_4bit": True, "bnb_4bit_compute_dtype": "float16"},
    "gptq": {"gptqmodel": True},
}


def _folder_in_roots(raw: Path | str, roots: Sequence[Path | str] | None, what: Message) -> Path:
    """``raw`` as a folder; with ``roots``, resolved (links followed) and refused unless inside one of them."""
    try:
        folder = Path(raw)
        if roots:
            resolved_roots = [Path(root).resolve() for root in roots]
            folder = (folder if folder.is_absolute() else resolved_roots[0] / folder).resolve()
            if not any(folder == root or root in folder.parents for root in resolved_roots):
                raise EvaluationFailed(Message("harness.outside_roots", what=what, path=str(raw)))
        if not folder.is_dir():
            raise EvaluationFailed(Message("harness.path_missing", what=what, path=str(raw)))
    except (OSError, RuntimeError, ValueError) as exc:  # a link loop, an overlong name, a NUL
        raise EvaluationFailed(
            Message("harness.path_unusable", what=what, path=repr(raw), error=type(exc).__name__)
        ) from None
    return folder


def model_arguments(
    *,
    model_path: Path | str,
    base_model_path: Path | str | None = None,
    dtype: str = "auto",
    weight_type: str = "",
    quantization: str | None = None,
    roots: Sequence[Path | str] | None = None,
) -> dict[str, Any]:
    """lm-eval ``hf`` model_args for a model folder, a PEFT adapter folder on its base model, or delta weights.

    Checks (without loading weights) that the folders exist and need no remote code.

    Args:
        model_path: the model folder, a PEFT adapter folder (has adapter_config.json), or delta weights.
        base_model_path: the base model of an adapter (default: the adapter's ``base_model_name_or_path``)
            or of delta weights (required).
        dtype: "auto", "float32", "float16" or "bfloat16".
        weight_type: "delta": ``model_path`` holds tensors to add to the base's (lm-eval's ``delta=``).
        quantization: None, or a key of ``QUANTIZATION_ARGS`` ("8bit", "4bit", "gptq").
        roots: the allowed model roots; given, every folder (the base read from adapter_config.json
            too) must resolve inside them.

    Raises:
        EvaluationFailed: a missing folder or one outside the roots, a model needing remote code, an
            adapter or delta weights without base, an unknown quantization.
    """
    if quantization is not None and quantization not in QUANTIZATION_ARGS:
        raise EvaluationFailed(
            Message("harness.quantization_unknown", quantization=repr(quantization), known=", ".join(QUANTIZATION_ARGS))
        )
    extra = dict(QUANTIZATION_ARGS.get(quantization or "", {}))
    model_dir = _folder_in_roots(model_path, roots, Message("harness.what_model_folder")) if roots else Path(model_path)
    if not model_dir.is_dir():
        raise EvaluationFailed(Message("harness.model_missing", folder=str(model_dir)))
    adapter_config = model_dir / "adapter_config.json"
    if weight_type == "delta":
        if not base_model_path:
            raise EvaluationFailed(Message("harness.delta_base_missing", folder=str(model_dir)))
        base = _folder_in_roots(base_model_path, roots, Message("harness.what_base_folder"))
        _check_model_config(model_dir)
        _check_model_config(base)
        return {"pretrained": str(base), "delta": str(model_dir), "dtype": dtype, **extra}
    if adapter_config.is_file():
        base = base_model_path or _read_json(adapter_config).get("base_model_name_or_path")
        if not base or not isinstance(base, str | Path) or "\0" in str(base):
            raise EvaluationFailed(Message("harness.adapter_needs_base", folder=str(model_dir)))
        if not roots and not Path(base).is_dir():
            raise EvaluationFailed(Message("harness.adapter_base_missing", folder=str(model_dir), base=str(base)))
        base = _folder_in_roots(base, roots, Message("harness.what_base_folder"))
        _check_model_config(base)
        args = {"pretrained": str(base), "peft": str(model_dir), "dtype": dtype, **extra}
        if (model_dir / "tokenizer_config.json").is_file():
            args["tokenizer"] = str(model_dir)  # an adapter that ships its tokenizer (e.g. added tokens)
        return args
    if base_model_path:
        raise EvaluationFailed(Message("harness.base_without_adapter", folder=str(model_dir)))
    _check_model_config(model_dir)
    return {"pretrained": str(model_dir), "dtype": dtype, **extra}


def resolve_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_batch_size(batch_size: int | str, device: str) -> int | str:
    if isinstance(batch_size, str) and batch_size.startswith("auto"):
        return batch_size if device.startswith("cuda") else CPU_BATCH_SIZE
    return int(batch_size)


class _StopAndProgress:
    """What the site adds to lm-eval's HFLM: it stops between batches when asked to and reports
    per-request progress. A mixin placed before HFLM (see ``leaderboard_hflm``), so this module needs
    no lm_eval import until a model is evaluated."""

    def __init__(
        self,
        *args: Any,
        should_stop: Callable[[], bool] | None = None,
        on_progress: ProgressCallback | None = None,
        progress_hook: Callable[[Any], Any],
        **kwargs: Any,
    ) -> None:
        self._should_stop = should_stop or (lambda: False)
        self._on_progress = on_progress
        self._phase, self._done, self._total, self._reported_at = "", 0, 0, 0.0
        self.progress_task: tuple[str, int, int] | None = None  # (task, its number, how many): named in progress notes
        super().__init__(*args, **kwargs)
        self.set_cache_hook(progress_hook(self))

    def _create_model(self, *args: Any, quantization_config: Any = None, **kwargs: Any) -> None:
        # lm-eval passes load_in_8bit/load_in_4bit (and bnb_4bit_*) on to from_pretrained, which
        # transformers 5 refuses; the same request as the quantization config it takes instead.
        bnb = {
            name: kwargs.pop(name)
            for name in list(kwargs)
            if name in ("load_in_8bit", "load_in_4bit") or name.startswith("bnb_4bit_")
        }
        if quantization_config is None and (bnb.get("load_in_8bit") or bnb.get("load_in_4bit")):
            from transformers import BitsAndBytesConfig

            quantization_config = BitsAndBytesConfig(**bnb)
        super()._create_model(*args, quantization_config=quantization_config, **kwargs)

    def stop_if_asked(self) -> None:
        if self._should_stop():
            raise RunCancelled("cancelled while the model was evaluating")

    def request_done(self) -> None:
        self._done = min(self._done + 1, self._total)
        self._report(force=False)

    def _report(self, *, force: bool) -> None:
        # Throttled: the callback may write to the database.
        now = time.monotonic()
        if self._on_progress and (force or now - self._reported_at >= _PROGRESS_INTERVAL_S):
            self._reported_at = now
            if self.progress_task:
                task, number, count = self.progress_task
                note = Message("progress.requests", task=task, number=number, count=count, phase=self._phase)
            else:
                note = Message("progress.requests_plain", phase=self._phase)
            self._on_progress(self._done, self._total, note)

    def _run_phase(self, phase: str, method: Callable[..., Any], requests: list, disable_tqdm: bool) -> Any:
        self._phase, self._done, self._total = phase, 0, len(requests)
        self._report(force=True)
        self.stop_if_asked()
        # With a progress callback, lm-eval's own per-request progress bar is only log noise.
        result = method(requests, disable_tqdm=disable_tqdm or self._on_progress is not None)
        self._done = self._total
        self._report(force=True)
        return result

    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> Any:
        return self._run_phase("loglikelihood", super().loglikelihood, requests, disable_tqdm)

    def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> Any:
        return self._run_phase("loglikelihood_rolling", super().loglikelihood_rolling, requests, disable_tqdm)

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> Any:
        return self._run_phase("generate_until", super().generate_until, requests, disable_tqdm)

    # One call per batch: the safe points to stop at.
    def _model_call(self, inps: Any, attn_mask: Any = None, labels: Any = None) -> Any:
        self.stop_if_asked()
        return super()._model_call(inps, attn_mask=attn_mask, labels=labels)

    def _model_generate(self, context: Any, max_length: int, stop: list[str], **generation_kwargs: Any) -> Any:
        self.stop_if_asked()
        return super()._model_generate(context, max_length, stop, **generation_kwargs)


@functools.cache
def leaderboard_hflm():
    """HFLM that stops between batches when asked to and reports per-request progress."""
    from lm_eval.api.model import CacheHook
    from lm_eval.models.huggingface import HFLM

    class _ProgressHook(CacheHook):
        # lm-eval calls cache_hook.add_partial once per answered request: the finest progress signal
        # it has (tqdm is its only other one).
        def __init__(self, lm: LeaderboardHFLM) -> None:
            super().__init__(None)
            self.lm = lm

        def add_partial(self, attr: str, req: Any, res: Any) -> None:
            self.lm.request_done()

    class LeaderboardHFLM(_StopAndProgress, HFLM):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, progress_hook=_ProgressHook, **kwargs)

    return LeaderboardHFLM


def out_of_memory_failure(exc: BaseException, device: str) -> EvaluationFailed | None:
    """EvaluationFailed for an out-of-memory error (with sizes when known), None for anything else."""
    import torch

    message = str(exc)
    if not isinstance(exc, torch.OutOfMemoryError) and "out of memory" not in message.lower():
        return None
    needed = re.search(r"Tried to allocate ([\d.]+ [KMGT]?i?B)", message)
    size = needed.group(1) if needed else ""
    detail: Message | str = Message("harness.oom_needed", size=size) if needed else ""
    if device.startswith("cuda") and torch.cuda.is_available():
        free_bytes, total_bytes = torch.cuda.mem_get_info()
        memory = {
            "free": f"{free_bytes / 2**30:.2f}",
            "total": f"{total_bytes / 2**30:.2f}",
            "gpu": torch.cuda.get_device_name(),
        }
        detail = (
            Message("harness.oom_needed_free", size=size, **memory) if needed else Message("harness.oom_free", **memory)
        )
    return EvaluationFailed(Message("harness.out_of_memory", device=device, detail=detail))


def release_memory(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
