from django import template

from runs.formatting import duration_text

register = template.Library()


@register.filter
def duration(value) -> str:
    """``{{ run.duration|duration }}``: "1m 39s" (see runs.formatting.duration_text)."""
    return duration_text(value)
