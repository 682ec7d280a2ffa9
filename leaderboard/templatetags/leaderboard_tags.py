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


@register.simple_tag
def query_url(query, **changes):
    """``?...`` for the current leaderboard view with some fields changed (a sort, a page)."""
    if "sort" in changes:
        changes.setdefault("page", 1)
    return "?" + query.urlencode(**changes)


@register.filter
def sort_toggled(query, key):
    return query.sort_toggled(key)


@register.filter
def size_label(num_params):
    """#Params in billions, three significant digits (a tiny test model is 0.000105, not 0.00)."""
    if not num_params:
        return "?"
    return f"{num_params / 1e9:.3g}"


@register.filter
def shows(query, toggle):
    return query.shows(toggle)


@register.filter
def average_of(values, keys):
    """Mean of a reference row's values over the suite's columns; none when one is missing."""
    present = [values.get(key) for key in keys] if values else []
    if not present or any(v is None for v in present):
        return None
    return sum(present) / len(present)


@register.filter
def benchmark_description(column):
    from leaderboard.benchmark_info import benchmark_description as describe

    return describe(column)


@register.filter
def type_symbol(model):
    """The Open LLM Leaderboard's "T" symbol of a model (leaderboard.table.TYPE_SYMBOLS)."""
    from leaderboard.table import MERGE_SYMBOL, TYPE_SYMBOLS

    return MERGE_SYMBOL if model.merged else TYPE_SYMBOLS.get(model.model_type, "?")


@register.filter
def full_precision(value):
    """A float as Python prints it (the shortest repr that round-trips): every digit lm-eval reported."""
    return "–" if value is None else repr(float(value))


@register.filter
def type_symbol_of(model_type):
    """The "T" symbol of a model type value (for the type filter's chips)."""
    from leaderboard.table import TYPE_SYMBOLS

    return TYPE_SYMBOLS.get(model_type, "")


@register.filter
def spec_kind(value):
    """How _spec_table.html shows a value of a run's spec: "dict", "list" (of anything), "scalars" (a list of
    plain values, shown on one line), "empty" or "scalar"."""
    if isinstance(value, dict):
        return "dict" if value else "empty"
    if isinstance(value, (list, tuple)):
        if not value:
            return "empty"
        return "list" if any(isinstance(item, (dict, list, tuple)) for item in value) else "scalars"
    return "empty" if value is None or value == "" else "scalar"


@register.filter
def spec_pairs(value):
    """A dict's items as a list (a template's ``value.items`` would look up a key called "items" first)."""
    return list(value.items())


@register.filter
def spec_scalar(value):
    """A plain value of a spec as JSON writes it (true, false, 3, text)."""
    import json

    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
