from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def percent(value, digits=2):
    """Scores are stored as fractions (as lm-eval reports them) and shown as percentages."""
    if value is None:
        return "–"
    return f"{value * 100:.{int(digits)}f}"
