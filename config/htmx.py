"""Whether a request gets a page or the fragment htmx swaps in, in one place.

A view whose page has parts that htmx refreshes (filters, paging, polling) renders the part alone for
an htmx request. Two things make that more than ``if request.headers.get("HX-Request")``:

- History restore. When the user goes Back to a page htmx pushed to the history and htmx's own history
  cache misses, htmx 2 requests the URL again to rebuild the *whole* page, sending ``HX-Request: true``
  (``htmx.config.historyRestoreAsHxRequest``) together with ``HX-History-Restore-Request: true``. Such a
  request must get the full page, or the browser shows a bare table without its page around it.
- Caches. The same URL answers a page or a fragment depending on those headers, so the response says
  ``Vary`` on them: a browser or proxy never serves the cached fragment for a page load (or back).

The headers are parsed by django-htmx (``request.htmx``, set by its middleware in settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

HTMX_VARY_HEADERS = ("HX-Request", "HX-History-Restore-Request")


def wants_fragment(request: HttpRequest) -> bool:
    """True for an htmx request that swaps in part of the page; False for a page load and for a
    history restore (which rebuilds the whole page)."""
    htmx = request.htmx
    return bool(htmx) and not htmx.history_restore_request


def vary_on_htmx(response: HttpResponse) -> HttpResponse:
    """Mark a response whose body depends on the htmx headers (see the module's docstring)."""
    patch_vary_headers(response, HTMX_VARY_HEADERS)
    return response


def render_page_or_fragment(
    request: HttpRequest,
    *,
    page: str,
    fragment: str,
    context: Mapping[str, Any] | None = None,
    status: int | None = None,
) -> HttpResponse:
    """``fragment`` for an htmx swap, else the full ``page`` (which includes the fragment), with ``Vary``."""
    template = fragment if wants_fragment(request) else page
    return vary_on_htmx(render(request, template, context, status=status))
