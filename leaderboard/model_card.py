"""The model card of a registered model: its folder's README.md, rendered as safe HTML for the model page.

The folder is found through the same checks as a submission (``allowed_path_resolve``: inside
MODEL_ROOTS, links resolved first), and README.md itself is opened without following a link
(``O_NOFOLLOW``) and only when it is a regular file, so a card can never read a file outside the roots
nor block on a FIFO. markdown-it renders CommonMark with raw HTML escaped (never passed through), then
nh3 (the Ammonia sanitiser) keeps only a list of harmless tags: no scripts, styles, event handlers,
iframes or images (a remote image would call out of the site and track who reads the card).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass

import nh3
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from markdown_it import MarkdownIt

from leaderboard.model_inspection import ModelFolderError, allowed_path_resolve, os_error_message

CARD_NAME = "README.md"
# Bigger cards are cut here (and the page says so): a card is prose, not a data dump.
CARD_MAX_BYTES = 200 * 1024
_FRONT_MATTER_RE = re.compile(r"\A---\s*\n.*?\n---\s*(\n|\Z)", re.S)
_ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "details",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "th": {"align"}, "td": {"align"}}


@dataclass(frozen=True)
class ModelCard:
    html: SafeString = mark_safe("")
    truncated: bool = False
    problem: str = ""  # why there is no card (no README.md, the folder is gone...)


def _read_card_bytes(folder) -> tuple[bytes, bool]:
    """README.md of a checked folder, at most CARD_MAX_BYTES; (content, cut). Never follows a link."""
    path = folder / CARD_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ModelFolderError(_("The model folder has no README.md.")) from None
    except OSError as exc:  # ELOOP: README.md is a link
        if exc.errno == errno.ELOOP:
            raise ModelFolderError(
                _("README.md is a link; the site shows only a card that is a file of the folder.")
            ) from None
        raise ModelFolderError(os_error_message(exc, path)) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ModelFolderError(_("%(file)s is not a regular file.") % {"file": path})
        content = handle.read(CARD_MAX_BYTES + 1)
    return content[:CARD_MAX_BYTES], len(content) > CARD_MAX_BYTES


def card_html_render(markdown_text: str) -> SafeString:
    """Markdown to HTML that is safe to put in a page: raw HTML escaped, then only harmless tags kept."""
    text = _FRONT_MATTER_RE.sub("", markdown_text, count=1)  # the YAML metadata block (license, tags)
    rendered = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough").render(text)
    clean = nh3.clean(
        rendered,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # sanitised by nh3 just above


def model_card_get(*, storage_path: str) -> ModelCard:
    """The card of a model folder, or a card with only ``problem`` set (never raises for a bad folder)."""
    try:
        folder = allowed_path_resolve(storage_path)
        content, truncated = _read_card_bytes(folder)
    except ModelFolderError as exc:
        return ModelCard(problem=str(exc))
    return ModelCard(html=card_html_render(content.decode("utf-8", errors="replace")), truncated=truncated)
