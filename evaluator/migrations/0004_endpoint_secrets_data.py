"""The old free-form "API key secret" (any file path or environment variable) cannot be trusted: whoever set
it could make the site read /proc/self/environ or /etc/shadow. A value that is a plain name becomes a named
secret in the environment (now ENDPOINT_SECRETS_ENV_PREFIX + name, never the variable itself); anything else
is dropped and the endpoint marked as needing its key. Run specs get the same reference in place of the old
field, and texts that may have echoed what was read (check messages, header errors) are cleared."""

import re

from django.db import migrations
from django.db.models import Q

NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
# What the old code's errors looked like when a file's contents were sent as a header.
LEAK_MARKERS = ("Bearer", "header value", "Illegal header")
REMOVED = "(text removed by the endpoint secrets upgrade: it may have quoted a secret)"


def _reference(old: str) -> tuple[dict, bool]:
    """The new secret reference for an old api_key_secret value, and whether the endpoint now needs a key."""
    old = (old or "").strip()
    if not old:
        return {"kind": "", "name": ""}, False
    if NAME_RE.fullmatch(old):
        return {"kind": "env", "name": old}, False
    return {"kind": "", "name": ""}, True


def _leaky(field: str) -> Q:
    query = Q()
    for marker in LEAK_MARKERS:
        query |= Q(**{f"{field}__contains": marker})
    return query


def forwards(apps, schema_editor):
    LLMEndpoint = apps.get_model("evaluator", "LLMEndpoint")
    EvaluationRun = apps.get_model("runs", "EvaluationRun")
    RunEvent = apps.get_model("runs", "RunEvent")
    SampleResult = apps.get_model("evaluator", "SampleResult")
    MetricScore = apps.get_model("evaluator", "MetricScore")

    for endpoint in LLMEndpoint.objects.all():
        reference, needed = _reference(endpoint.api_key_secret)
        endpoint.secret_kind, endpoint.secret_name, endpoint.api_key_needed = reference["kind"], reference["name"], needed
        endpoint.api_key_secret = ""
        endpoint.last_check_message, endpoint.last_check_ok, endpoint.last_checked_at = "", None, None
        endpoint.save(update_fields=["secret_kind", "secret_name", "api_key_needed", "api_key_secret",
                                     "last_check_message", "last_check_ok", "last_checked_at"])

    for run in EvaluationRun.objects.filter(kind="evaluator").only("pk", "spec").iterator():
        spec, changed = run.spec if isinstance(run.spec, dict) else {}, False
        target = spec.get("target") if isinstance(spec.get("target"), dict) else {}
        for endpoint in (spec.get("judge"), target.get("endpoint")):
            if isinstance(endpoint, dict) and ("api_key_secret" in endpoint or "secret" not in endpoint):
                endpoint["secret"] = _reference(endpoint.pop("api_key_secret", ""))[0]
                changed = True
        if changed:
            EvaluationRun.objects.filter(pk=run.pk).update(spec=spec)

    EvaluationRun.objects.filter(_leaky("error_message")).update(error_message=REMOVED)
    RunEvent.objects.filter(_leaky("message")).update(message=REMOVED)
    SampleResult.objects.filter(_leaky("generation_error")).update(generation_error=REMOVED)
    MetricScore.objects.filter(_leaky("unscored_reason")).update(unscored_reason=REMOVED)


class Migration(migrations.Migration):

    dependencies = [
        ('evaluator', '0003_endpoint_secrets'),
        ('runs', '0002_run_dedupe_sent_at_worker_nodes'),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
