"""From stored endpoints to the plain configs the engine takes; secrets are read here, on the worker, and never stored."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from evaluator.scoring_types import LLMConfig

# Fields of an endpoint frozen into a run's spec (never the key itself: only where to read it).
ENDPOINT_SPEC_FIELDS = ("kind", "model_name", "base_url", "api_key_secret", "local_path", "temperature", "max_tokens",
                        "timeout_s", "max_concurrency", "max_retries")


class SecretMissing(Exception):
    """The endpoint names a secret this worker does not have."""


def endpoint_spec(endpoint) -> dict[str, Any]:
    return {"id": endpoint.pk, "name": endpoint.name, **{name: getattr(endpoint, name) for name in ENDPOINT_SPEC_FIELDS}}


def secret_read(name: str) -> str:
    """An API key from a secret: a file path (``/run/secrets/judge``) or the name of an environment variable."""
    if not name:
        return ""
    if name.startswith("/"):
        try:
            return Path(name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretMissing(f"the secret file {name} cannot be read on this worker: {exc.strerror}") from exc
    value = os.environ.get(name)
    if value is None:
        raise SecretMissing(f"the environment variable {name} (the API key secret) is not set on this worker")
    return value


def llm_config(spec: dict[str, Any]) -> LLMConfig:
    """The engine's config for an endpoint frozen in a run spec (see ``endpoint_spec``)."""
    return LLMConfig(
        kind=spec["kind"], model_name=spec.get("model_name", ""), base_url=spec.get("base_url", ""),
        api_key=secret_read(spec.get("api_key_secret", "")) or "not-needed",
        local_path=spec.get("local_path", ""), temperature=spec.get("temperature", 0.0),
        max_tokens=spec.get("max_tokens", 1024), timeout_s=spec.get("timeout_s", 60.0),
        max_concurrency=spec.get("max_concurrency", 8), max_retries=spec.get("max_retries", 2),
    )
