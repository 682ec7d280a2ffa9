"""Template helpers of the evaluator that other apps' pages use."""

from django import template

from evaluator.selectors import run_spec_visible

register = template.Library()


@register.simple_tag(takes_context=True)
def spec_for_viewer(context, run):
    """``run.spec`` without the private details of endpoints the viewer cannot see (selectors.run_spec_visible)."""
    return run_spec_visible(run=run, user=context["request"].user)
