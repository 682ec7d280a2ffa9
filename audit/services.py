"""Writing the audit log. Callers record right after the action succeeded, inside its transaction when it has one."""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import models

from audit.models import AuditAction, AuditEvent
from config.security import client_ip

# Keys whose values are never written to the log, at any depth of ``detail``: a caller that passes a
# form's cleaned data or an endpoint's fields must not leave a key or a password in the audit table.
_SECRET_KEY_RE = re.compile(
    r"secret|passw|token|api_?key|^key$|_key$|authori[sz]ation|credential|cookie", re.IGNORECASE
)
REDACTED = "[redacted]"


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): REDACTED if _SECRET_KEY_RE.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_scrub(v) for v in value]
    return value


def audit_detail_clean(detail: dict | None) -> dict:
    """``detail`` without secret-named keys' values, as plain JSON (anything else JSON lacks as its str())."""
    return json.loads(json.dumps(_scrub(detail or {}), default=str))


def audit_record(
    *, request=None, actor=None, action: AuditAction, target: models.Model | None = None, detail: dict | None = None
) -> AuditEvent:
    """Record that ``actor`` (default: the request's user) did ``action`` to ``target``.

    The address is the request's client address (REMOTE_ADDR, or X-Forwarded-For behind a trusted proxy:
    config.security.client_ip, the rule login throttling uses too).
    """
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    target_type = target_id = target_label = ""
    if target is not None:
        target_type = target._meta.label_lower
        target_id = "" if target.pk is None else str(target.pk)
        target_label = str(target)[:300]
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        ip_address=client_ip(request) if request is not None else None,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        detail=audit_detail_clean(detail),
    )
