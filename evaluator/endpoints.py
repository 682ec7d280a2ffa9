"""From stored endpoints to the plain configs the engine takes.

A run's spec freezes an endpoint's settings and a *reference* to its API key (``{"kind": "file", "name":
"judge"}``), never key material. The key is resolved where the call is made (``endpoint_config``: on the
worker when a run starts, in the web process for *Test connection*), and the base URL is checked against
ENDPOINT_ALLOWED_HOSTS right there too, so a spec or row changed behind the site's back gains nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.utils.translation import gettext as _

from evaluator.endpoint_secrets import SecretMissing, key_decrypt, secret_env_read, secret_file_read
from evaluator.scoring_types import LLMConfig
from evaluator.url_policy import UrlRefused, url_check
from runs.messages import Message

# Fields of an endpoint frozen into a run's spec, besides its id, name and secret reference.
ENDPOINT_SPEC_FIELDS = (
    "kind",
    "model_name",
    "base_url",
    "local_path",
    "temperature",
    "max_tokens",
    "timeout_s",
    "max_concurrency",
    "max_retries",
)
# What a run's spec must not show to someone who cannot see the endpoint (evaluator.selectors.run_spec_visible).
ENDPOINT_PRIVATE_FIELDS = ("base_url", "local_path", "secret", "api_key_secret")

# Either means: this endpoint cannot be called from here; the message says why and is safe to show.
EndpointRefused = (SecretMissing, UrlRefused)

__all__ = [
    "ENDPOINT_PRIVATE_FIELDS",
    "ENDPOINT_SPEC_FIELDS",
    "EndpointRefused",
    "SecretMissing",
    "UrlRefused",
    "endpoint_config",
    "endpoint_spec",
]


def endpoint_spec(endpoint) -> dict[str, Any]:
    """What a run freezes of ``endpoint``: its settings and where its key comes from, never the key."""
    from evaluator.models import SecretKind

    named = endpoint.secret_kind in (SecretKind.FILE, SecretKind.ENV)
    return {
        "id": endpoint.pk,
        "name": endpoint.name,
        **{name: getattr(endpoint, name) for name in ENDPOINT_SPEC_FIELDS},
        "secret": {"kind": endpoint.secret_kind, "name": endpoint.secret_name if named else ""},
    }


def endpoint_config(spec: dict[str, Any]) -> LLMConfig:
    """The engine's config for an endpoint frozen in a run spec (see ``endpoint_spec``): its base URL checked
    against ENDPOINT_ALLOWED_HOSTS and its key resolved here. Raises SecretMissing or UrlRefused."""
    config = LLMConfig(
        kind=spec.get("kind", "openai"),
        model_name=spec.get("model_name", ""),
        base_url=spec.get("base_url", ""),
        local_path=spec.get("local_path", ""),
        temperature=spec.get("temperature", 0.0),
        max_tokens=spec.get("max_tokens", 1024),
        timeout_s=spec.get("timeout_s", 60.0),
        max_concurrency=spec.get("max_concurrency", 8),
        max_retries=spec.get("max_retries", 2),
    )
    if config.kind == "local":
        return config
    if config.kind != "openai":
        raise UrlRefused(Message("endpoint.kind_unknown"))
    url_check(config.base_url)
    return replace(config, api_key=_key_resolve(spec))


def _key_resolve(spec: dict[str, Any]) -> str:
    from evaluator.models import LLMEndpoint, SecretKind

    name = str(spec.get("name") or _("the endpoint"))
    secret = spec.get("secret")
    if not isinstance(secret, dict):
        if spec.get("api_key_secret"):
            raise SecretMissing(Message("endpoint.secret_old_run"))
        secret = {}
    endpoint_id = spec.get("id")
    row = LLMEndpoint.objects.filter(pk=endpoint_id).first() if isinstance(endpoint_id, int) else None
    if row is not None and row.api_key_needed:
        raise SecretMissing(Message("endpoint.secret_needed", endpoint=name))
    kind = secret.get("kind") or SecretKind.NONE
    if kind == SecretKind.NONE:
        return ""
    if kind == SecretKind.FILE:
        return secret_file_read(secret.get("name"))
    if kind == SecretKind.ENV:
        return secret_env_read(secret.get("name"))
    if kind != SecretKind.STORED:
        raise SecretMissing(Message("endpoint.secret_kind_unknown", endpoint=name))
    if row is None or not row.has_stored_key:
        raise SecretMissing(Message("endpoint.secret_gone", endpoint=name))
    # A stored key goes only to the URL it was stored with: a spec pointing elsewhere does not take it along.
    if row.base_url != spec.get("base_url"):
        raise SecretMissing(Message("endpoint.secret_url_changed", endpoint=name))
    return key_decrypt(row.api_key_encrypted, endpoint_name=name)
