"""Idempotency tokens of submission forms: the same form posted twice (a double click, a retried
request) makes one run.

A form gets a fresh random token when it is rendered (a hidden field); the run it creates stores
``submission_key = "<user pk>:<token>"``, which is unique in the database, so concurrent posts of that
form meet at the constraint and all get the first run (``runs.services.run_create_or_existing``).
"""

from __future__ import annotations

import re
import secrets

from runs.models import EvaluationRun

FIELD_NAME = "submission_token"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class SubmissionKeyReused(Exception):
    """The token was already used for a different submission (the form was sent again after a change,
    e.g. from the browser's history): a new form is needed."""

    def __init__(self, run: EvaluationRun):
        self.run = run
        super().__init__(f"submission key already used by run #{run.pk}")


def submission_token_new() -> str:
    return secrets.token_urlsafe(24)


def submission_token_clean(value: object) -> str:
    """The token if it is one we could have made, else "" (no idempotency rather than an error)."""
    return value if isinstance(value, str) and _TOKEN_RE.fullmatch(value) else ""


def submission_key_make(*, user, token: str) -> str | None:
    token = submission_token_clean(token)
    return f"{user.pk}:{token}" if token and getattr(user, "pk", None) else None


def submission_key_check(*, submission_key: str | None, spec_hash: str, model_id: int | None) -> EvaluationRun | None:
    """The run this key already made, if it is the same submission; raises SubmissionKeyReused if not."""
    if not submission_key:
        return None
    earlier = EvaluationRun.objects.filter(submission_key=submission_key).first()
    if earlier is not None and (earlier.spec_hash != spec_hash or earlier.model_id != model_id):
        raise SubmissionKeyReused(earlier)
    return earlier
