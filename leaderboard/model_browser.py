"""A server-side browser of the allowed model roots, for the submit form: nothing is uploaded, so people
pick a folder that already sits on the model storage. It lists folders only, never outside the roots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from leaderboard.model_inspection import ModelFolderError, allowed_path_resolve, os_error_message

MAX_ENTRIES = 500


@dataclass(frozen=True)
class FolderEntry:
    name: str
    path: str
    is_model: bool
    is_adapter: bool


@dataclass(frozen=True)
class FolderListing:
    current: str | None  # None: the list of roots
    parent: str | None
    entries: list[FolderEntry]
    truncated: bool = False


def _has_file(folder: Path, name: str) -> bool:
    try:
        return (folder / name).is_file()
    except OSError:  # an unreadable folder is listed, just not marked
        return False


def _entry(path: Path, name: str | None = None) -> FolderEntry:
    return FolderEntry(
        name=name or path.name,
        path=str(path),
        is_model=_has_file(path, "config.json"),
        is_adapter=_has_file(path, "adapter_config.json"),
    )


def _listable(child: Path) -> bool:
    try:
        # A name that is not valid UTF-8 could neither be shown nor typed back.
        child.name.encode("utf-8")
        return not child.name.startswith(".") and child.is_dir()
    except (OSError, UnicodeError):
        return False


def model_folder_list(*, raw_path: str = "") -> FolderListing:
    """The sub-folders of ``raw_path`` (inside MODEL_ROOTS), or the roots themselves when it is empty.

    Raises ModelFolderError for a path outside the roots, one that is not a folder, or one that cannot be read.
    """
    roots = [Path(root) for root in settings.MODEL_ROOTS]
    if not raw_path:
        return FolderListing(
            current=None, parent=None, entries=[_entry(root, str(root)) for root in roots if root.is_dir()]
        )
    folder = allowed_path_resolve(raw_path)
    try:
        children = sorted(
            (child for child in folder.iterdir() if _listable(child)), key=lambda child: child.name.lower()
        )
    except OSError as exc:
        raise ModelFolderError(os_error_message(exc, folder)) from None
    parent = None if folder in roots else str(folder.parent)
    return FolderListing(
        current=str(folder),
        parent=parent,
        entries=[_entry(child) for child in children[:MAX_ENTRIES]],
        truncated=len(children) > MAX_ENTRIES,
    )


__all__ = ["FolderEntry", "FolderListing", "ModelFolderError", "model_folder_list"]
