"""Stored messages in the reader's language (runs.messages)."""

from django import template

from runs.messages import message_recognised

register = template.Library()


@register.filter
def recognised_message(text):
    """A stored reason kept as English text (no code column) in the reader's language, when it is a known message."""
    return message_recognised(str(text or ""))
