"""Pure: where a source path's Previous Versions and backup views live.

For a source path P that is a btrfs subvolume (``/srv/coffre/partage``):

- its Previous Versions, read-only snapshots named ``@GMT-...``, sit in
  ``<parent of P>/.coffre-versions/<name of P>`` (Samba's ``shadow:snapdir``):
  outside the share, so the share never lists them and borg never walks them;
- a backup of target T reads the run's version through a bind mount at
  ``<parent of P0>/.coffre-versions/.vues/T/<P without its leading slash>``,
  borg working in ``.vues/T`` on the relative path ``srv/coffre/partage``: the
  archive's paths are those of the share (restores, find, recover unchanged),
  borg's patterns match them as before, and borg's files cache, keyed by the
  full path, finds every unchanged file night after night.

No I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TypeVar

__all__ = [
    "FOLDER",
    "VIEWS",
    "Layout",
    "layout_of",
    "versions_folder",
    "versions_root",
    "views_folder",
]

#: The folder beside the share that holds its versions and the backup views.
FOLDER = ".coffre-versions"
#: Inside it, the backup views (root's alone).
VIEWS = ".vues"

_P = TypeVar("_P", bound=PurePath)


def versions_root(source: _P) -> _P:
    """``<parent of source>/.coffre-versions``."""
    return source.parent / FOLDER


def versions_folder(source: _P) -> _P:
    """The Previous Versions folder of ``source`` (Samba's ``shadow:snapdir``)."""
    return versions_root(source) / source.name


def views_folder(source: _P) -> _P:
    """The folder of every target's view folder, beside ``source``."""
    return versions_root(source) / VIEWS


@dataclass(frozen=True)
class Layout:
    """The places of ``sources``' versions and views (see the module doc)."""

    sources: tuple[Path, ...]

    @property
    def base(self) -> Path:
        """``<parent of the first source>/.coffre-versions``."""
        return versions_root(self.sources[0])

    @property
    def views(self) -> Path:
        """The folder of every target's view folder."""
        return views_folder(self.sources[0])

    def view_root(self, target: str) -> Path:
        """borg's working folder for ``target``: the sources below it by their full paths."""
        return self.views / target

    @staticmethod
    def relative(source: Path) -> str:
        """``source`` as borg is given it from a view root: without its leading slash."""
        return str(source.relative_to("/"))


def layout_of(sources: Sequence[Path]) -> Layout:
    """The layout of absolute ``sources`` (at least one); ValueError otherwise, or for two
    sources of one name (their version folders would be one)."""
    if not sources or not all(p.is_absolute() and p != Path("/") for p in sources):
        raise ValueError("snapshots need absolute source paths below /")
    names = [p.name for p in sources]
    if len(set(names)) != len(names):
        raise ValueError("two source paths have the same folder name: one versions folder each")
    return Layout(tuple(sources))
