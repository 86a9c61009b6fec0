"""The Previous Versions folders of the share, on disk: list, take, remove, and views.

Synchronous filesystem work (the desk runs it in a thread), every folder
opened by descriptor: the admin's paths (the source paths and their parent)
as configured, everything coffre made below them (``.coffre-versions``,
``.vues``...) with ``O_NOFOLLOW``, so that no name can send root elsewhere.
The snapshots themselves go through :mod:`coffre.storage.btrfs`.

Which kind each version is lives in state (``version_kinds``), not here:
these methods run in a worker thread, and state is the event loop's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Protocol

from coffre.consistency.gmt_names import name_of, taken_at
from coffre.consistency.layout import FOLDER, VIEWS, Layout, versions_root
from coffre.storage import bind_mount, btrfs
from coffre.storage.dirfd import LinkInTheWay, NotAFolder, open_dir, opened, walk_open
from coffre.storage.newest_change import newest_change_ns

__all__ = ["Folders", "VersionFolders"]

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class Folders(Protocol):
    """What the desk asks of the versions' folders (:class:`VersionFolders`, or a test's)."""

    @property
    def layout(self) -> Layout: ...

    def unusable(self) -> str | None: ...

    def listed(self) -> tuple[tuple[str, datetime], ...]: ...

    def take(self, at: datetime) -> str: ...

    def remove(self, name: str) -> None: ...

    def free(self) -> tuple[int, int]: ...

    def wait_freed(self, timeout: float) -> bool: ...

    def newest_change(self, versions: Mapping[Path, str]) -> int: ...

    def make_view(self, name: str, target: str) -> Path: ...

    def drop_view(self, target: str) -> bool: ...

    def drop_all_views(self) -> list[str]: ...


class VersionFolders:
    """The versions and views of ``layout``'s sources."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    # --- can snapshots be taken at all ---------------------------------------

    def unusable(self) -> str | None:
        """None when every source can be snapshotted into its versions folder; else why
        not, in words for status and the archive's comment (what to do included)."""
        for source in self.layout.sources:
            try:
                with opened(os.open(source, _OPEN_DIR | os.O_NOFOLLOW)) as fd:
                    if not btrfs.is_btrfs(fd):
                        return f"{source} is not on a btrfs filesystem"
                    if not btrfs.is_subvolume(fd):
                        return f"{source} is not a btrfs subvolume: run `coffre share setup`"
                with self._versions_dir(source):
                    pass
                with (
                    self._coffre_dir(source) as base,
                    opened(open_dir(base, VIEWS, shown=self._shown(source, VIEWS))),
                ):
                    pass
            except FileNotFoundError as error:
                return f"{error.filename or source} is missing: run `coffre share setup`"
            except (LinkInTheWay, NotAFolder) as error:
                return f"{error.filename} is {error.strerror}: see `coffre share setup`"
            except OSError as error:
                return f"{source}: {error.strerror or error}"
        return None

    # --- versions ------------------------------------------------------------

    def listed(self) -> tuple[tuple[str, datetime], ...]:
        """(name, when taken) of the versions every source has (a name missing in one
        source's folder is not a whole version), oldest first. Raises OSError when a
        folder cannot be read."""
        names: set[str] | None = None
        for source in self.layout.sources:
            with self._versions_dir(source) as fd:
                here = {e.name for e in os.scandir(fd) if taken_at(e.name) is not None}
            names = here if names is None else names & here
        found = []
        for name in sorted(names or ()):
            when = taken_at(name)
            assert when is not None
            found.append((name, when))
        return tuple(found)

    def take(self, at: datetime) -> str:
        """Snapshot every source, read-only, as version ``name_of(at)``; returns the name.

        A version of that name already there (two in one second) is reused.
        Raises SnapshotError
        (SnapshotNoSpace when the filesystem is full); what was made of a
        version that failed half-way is removed first.
        """
        name = name_of(at)
        made: list[Path] = []
        try:
            for source in self.layout.sources:
                with (
                    opened(os.open(source, _OPEN_DIR | os.O_NOFOLLOW)) as src,
                    self._versions_dir(source) as dest,
                ):
                    try:
                        btrfs.snapshot(src, dest, name, readonly=True)
                    except FileExistsError:
                        continue
                made.append(source)
        except BaseException:
            for source in made:
                self._remove_one(source, name)
            raise
        return name

    def remove(self, name: str) -> None:
        """Remove version ``name`` from every source's folder (gone already: fine).
        Raises SnapshotError."""
        for source in self.layout.sources:
            self._remove_one(source, name)

    def free(self) -> tuple[int, int]:
        """(bytes free for root, total bytes) of the first source's filesystem."""
        with self._versions_dir(self.layout.sources[0]) as fd:
            return btrfs.free_space(fd)

    def wait_freed(self, timeout: float) -> bool:
        """Wait until btrfs has freed the removed versions' space (see btrfs.wait_deleted)."""
        with self._versions_dir(self.layout.sources[0]) as fd:
            return btrfs.wait_deleted(fd, timeout)

    def newest_change(self, versions: Mapping[Path, str]) -> int:
        """The newest change time (ns) in the snapshots ``versions`` (source -> name);
        ``newest_change.MOVING`` cannot happen in a read-only snapshot. Raises OSError."""
        newest = 0
        for source, name in versions.items():
            with (
                self._versions_dir(source) as folder,
                opened(open_dir(folder, name, shown=self._shown(source, name))) as fd,
            ):
                newest = max(newest, newest_change_ns(fd))
        return newest

    # --- the backup views ------------------------------------------------------

    def make_view(self, name: str, target: str) -> Path:
        """Show version ``name`` of every source under ``target``'s view root, each by a
        bind mount at the source's full path (a stale mount taken away first); returns
        the view root. The mount shows the version's own inodes: what the quiet look
        walked is in memory for borg. Raises SnapshotError, and what opening the
        folders raises."""
        self.drop_view(target)
        for source in self.layout.sources:
            parts = [VIEWS, target, *Path(self.layout.relative(source)).parts]
            with self._coffre_dir(self.layout.sources[0]) as base:
                fd, _ = walk_open(base, parts, shown=PurePosixPath(self.layout.base), create=True)
            with (
                opened(fd) as point,
                self._versions_dir(source) as versions,
                opened(open_dir(versions, name, shown=self._shown(source, name))) as ver,
            ):
                bind_mount.bind(ver, point, shown=self._view_path(source, target))
        return self.layout.view_root(target)

    def drop_view(self, target: str) -> bool:
        """Take ``target``'s view of every source away, if shown; whether one was.
        Raises SnapshotError, and OSError when the mount table cannot be read."""
        mounted = set(bind_mount.mounts_under(self.layout.view_root(target)))
        dropped = False
        for source in self.layout.sources:
            point = self._view_path(source, target)
            if point in mounted:
                bind_mount.unmount(point)
                dropped = True
        return dropped

    def drop_all_views(self) -> list[str]:
        """Take every view away (what a killed run left, when the daemon ran without its
        own mount namespace); returns the targets whose views were shown. Raises
        SnapshotError, and OSError when the mount table cannot be read."""
        targets: set[str] = set()
        for point in bind_mount.mounts_under(self.layout.views):
            bind_mount.unmount(point)
            targets.add(point.relative_to(self.layout.views).parts[0])
        return sorted(targets)

    def _view_path(self, source: Path, target: str) -> Path:
        return self.layout.view_root(target) / self.layout.relative(source)

    # --- folders ---------------------------------------------------------------

    @contextmanager
    def _coffre_dir(self, source: Path) -> Iterator[int]:
        """``<parent of source>/.coffre-versions``, opened (never through a link)."""
        with (
            opened(os.open(source.parent, _OPEN_DIR)) as parent,
            opened(open_dir(parent, FOLDER, shown=PurePosixPath(versions_root(source)))) as fd,
        ):
            yield fd

    @contextmanager
    def _versions_dir(self, source: Path) -> Iterator[int]:
        with self._coffre_dir(source) as base:
            shown = self._shown(source, source.name)
            with opened(open_dir(base, source.name, shown=shown)) as fd:
                yield fd

    def _shown(self, source: Path, name: str) -> PurePosixPath:
        return PurePosixPath(versions_root(source) / name)

    def _remove_one(self, source: Path, name: str) -> None:
        with self._versions_dir(source) as fd, suppress(FileNotFoundError):
            btrfs.delete_subvolume(fd, name)
