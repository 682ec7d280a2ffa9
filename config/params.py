"""Readers for query-string and form parameters: whatever a URL holds, a view gets a value it can use.

A missing, malformed or out-of-range value gives the default, never an exception: ``int("²")`` raises,
``int("٣")`` is 3, and a 30-digit id overflows PostgreSQL's bigint, so numbers are read as ASCII digits
within bounds. (NUL characters never get this far: config.middleware.RejectNulMiddleware answers 400.)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, TypeVar

MAX_ID = 2**63 - 1  # PostgreSQL bigint, the primary keys' type
MAX_DIGITS = len(str(MAX_ID))
T = TypeVar("T")


def parse_int(value: Any, default: T = None, *, minimum: int = 1, maximum: int = MAX_ID) -> int | T:
    """``value`` (a str of ASCII digits) as an int in [minimum, maximum]; anything else gives ``default``."""
    if not isinstance(value, str):
        return default
    value = value.strip()
    if not value or len(value) > MAX_DIGITS or not (value.isascii() and value.isdigit()):
        return default
    number = int(value)
    return number if minimum <= number <= maximum else default


def int_param(params: Mapping, name: str, default: T = None, *, minimum: int = 1, maximum: int = MAX_ID) -> int | T:
    """One integer parameter (an id, a page number)."""
    return parse_int(params.get(name), default, minimum=minimum, maximum=maximum)


def int_list_param(params, name: str, *, minimum: int = 1, maximum: int = MAX_ID, limit: int = 1000) -> list[int]:
    """Every well-formed integer among a repeated parameter (``?models=1&models=2``), in order, without
    repeats and at most ``limit`` of them; the malformed ones are left out."""
    numbers: dict[int, None] = {}
    for value in params.getlist(name):
        number = parse_int(value, None, minimum=minimum, maximum=maximum)
        if number is not None:
            numbers[number] = None
            if len(numbers) >= limit:
                break
    return list(numbers)


def choice_param(params: Mapping, name: str, choices: Collection[str], default: T = "") -> str | T:
    """A parameter that must be one of ``choices``; anything else gives ``default``."""
    value = params.get(name)
    return value if isinstance(value, str) and value in choices else default


def text_param(params: Mapping, name: str, default: str = "", *, max_length: int = 500) -> str:
    """Free text (a search), stripped and cut to ``max_length`` characters."""
    value = params.get(name)
    return value.strip()[:max_length] if isinstance(value, str) else default
