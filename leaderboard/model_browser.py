"""A server-side browser of the allowed model roots, for the submit form: nothing is uploaded, so people
pick a folder that already sits on the model storage. It lists folders only, never outside the roots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from leaderboard.model_inspection import ModelFolderError, allowed_path_resolve

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


def _entry(path: Path, name: str | None = None) -> FolderEntry:
    return FolderEntry(name=name or path.name, path=str(path), is_model=(path / "config.json").is_file(),
                       is_adapter=(path / "adapter_config.json").is_file())


def model_folder_list(*, raw_path: str = "") -> FolderListing:
    """The sub-folders of ``raw_path`` (inside MODEL_ROOTS), or the roots themselves when it is empty.

    Raises ModelFolderError for a path outside the roots or one that is not a folder.
    """
    roots = [Path(root) for root in settings.MODEL_ROOTS]
    if not raw_path:
        return FolderListing(current=None, parent=None, entries=[_entry(root, str(root)) for root in roots if root.is_dir()])
    folder = allowed_path_resolve(raw_path)
    children = sorted((child for child in folder.iterdir() if child.is_dir() and not child.name.startswith(".")),
                      key=lambda child: child.name.lower())
    parent = None if folder in roots else str(folder.parent)
    return FolderListing(current=str(folder), parent=parent, entries=[_entry(child) for child in children[:MAX_ENTRIES]],
                         truncated=len(children) > MAX_ENTRIES)


__all__ = ["FolderEntry", "FolderListing", "ModelFolderError", "model_folder_list"]
