"""A share whose disk fails on some files: a read-only FUSE filesystem (pyfuse3) in a process.

It shows a copy of a directory, taken when it is mounted, and fails on the
files it is told to, as the kernel would report it to any reader (borg
included, whatever its privileges):

- ``eio``: the file opens, but every read fails with EIO (a sector the
  share's disk can no longer read);
- ``eacces``: opening it fails with EACCES (a network share refusing the box);
- ``enoent``: it is listed and stat() works, but opening it fails with ENOENT
  (a file deleted between borg's walk and its read: vanished).

Run as ``python -m tests.integration.faulty_share SOURCE MOUNTPOINT
[REL=FAULT...]``; tests use :func:`faulty_share`, which mounts it, waits for
the mount, and unmounts it after the ``with`` block. The kernels these tests
run on have no block fault injection (no device-mapper): a FUSE layer is the
way to get a real EIO on one file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.integration.harness import wait_for
from tests.parts import binary

if TYPE_CHECKING:
    import pyfuse3

FAULTS: Mapping[str, int] = {"eio": errno.EIO, "eacces": errno.EACCES, "enoent": errno.ENOENT}


@dataclass
class _Node:
    inode: int
    path: str  # relative to the source, "" for the root
    st: os.stat_result
    data: bytes = b""
    children: dict[bytes, int] = field(default_factory=dict)


def _tree(source: Path) -> dict[int, _Node]:
    """Every directory and regular file under ``source``, by inode number (root: 1)."""
    nodes: dict[int, _Node] = {1: _Node(1, "", source.stat())}
    by_path = {"": 1}
    for directory, dirnames, filenames in os.walk(source):
        rel_dir = Path(directory).relative_to(source).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        parent = nodes[by_path[rel_dir]]
        for name in sorted(dirnames) + sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            full = source / rel
            node = _Node(len(nodes) + 1, rel, full.stat())
            if stat.S_ISREG(node.st.st_mode):
                node.data = full.read_bytes()
            nodes[node.inode] = node
            by_path[rel] = node.inode
            parent.children[os.fsencode(name)] = node.inode
    return nodes


def serve(source: Path, mountpoint: Path, faults: Mapping[str, int]) -> None:
    """Mount the copy of ``source`` at ``mountpoint`` until it is unmounted (fusermount3 -u)."""
    import pyfuse3
    import trio

    nodes = _tree(source)

    def attributes(node: _Node) -> pyfuse3.EntryAttributes:
        entry = pyfuse3.EntryAttributes()
        entry.st_ino = node.inode
        entry.generation = 0
        # No kernel cache: every stat and open reaches us, as on a live share.
        entry.entry_timeout = 0
        entry.attr_timeout = 0
        entry.st_mode = node.st.st_mode
        entry.st_nlink = 1
        entry.st_uid, entry.st_gid = node.st.st_uid, node.st.st_gid
        entry.st_rdev = 0
        entry.st_size = len(node.data)
        entry.st_blksize = 4096
        entry.st_blocks = (len(node.data) + 511) // 512
        entry.st_atime_ns = node.st.st_atime_ns
        entry.st_mtime_ns = node.st.st_mtime_ns
        entry.st_ctime_ns = node.st.st_ctime_ns
        return entry

    def node_of(inode: int) -> _Node:
        if inode not in nodes:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return nodes[inode]

    class Faulty(pyfuse3.Operations):
        async def lookup(
            self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
        ) -> pyfuse3.EntryAttributes:
            parent = node_of(parent_inode)
            if name == b".":
                return attributes(parent)
            if name not in parent.children:
                raise pyfuse3.FUSEError(errno.ENOENT)
            return attributes(nodes[parent.children[name]])

        async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
            return attributes(node_of(inode))

        async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
            return node_of(inode).inode

        async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
            entries = list(node_of(fh).children.items())
            for index, (name, inode) in enumerate(entries[start_id:], start=start_id + 1):
                if not pyfuse3.readdir_reply(token, name, attributes(nodes[inode]), index):
                    return

        async def releasedir(self, fh: int) -> None:
            return None

        async def open(
            self, inode: int, flags: int, ctx: pyfuse3.RequestContext
        ) -> pyfuse3.FileInfo:
            node = node_of(inode)
            if flags & (os.O_WRONLY | os.O_RDWR):
                raise pyfuse3.FUSEError(errno.EROFS)
            fault = faults.get(node.path)
            if fault in (errno.EACCES, errno.ENOENT):
                raise pyfuse3.FUSEError(fault)
            # direct_io: every read reaches us (no page cache serving an earlier read).
            return pyfuse3.FileInfo(fh=inode, direct_io=True)

        async def read(self, fh: int, off: int, size: int) -> bytes:
            node = node_of(fh)
            if faults.get(node.path) == errno.EIO:
                raise pyfuse3.FUSEError(errno.EIO)
            return node.data[off : off + size]

        async def release(self, fh: int) -> None:
            return None

    options = set(pyfuse3.default_options) - {"default_permissions"}
    options |= {"fsname=coffre-faulty-share", "ro"}
    pyfuse3.init(Faulty(), str(mountpoint), options)
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close(unmount=False)


@contextlib.contextmanager
def faulty_share(
    source: Path, mountpoint: Path, faults: Mapping[str, str] | None = None
) -> Iterator[None]:
    """``source`` seen at ``mountpoint`` through the faulty filesystem for the ``with`` block.

    ``faults`` maps paths relative to ``source`` to "eio", "eacces" or "enoent".
    Fails (CI) or skips when pyfuse3 or fusermount3 is missing.
    """
    fusermount = binary("fusermount3")
    try:
        import pyfuse3  # noqa: F401 - only to know the part is there
    except ImportError:
        from tests.parts import missing

        missing("pyfuse3 (borgbackup[pyfuse3])")
    mountpoint.mkdir(parents=True, exist_ok=True)
    spec = [f"{rel}={fault}" for rel, fault in (faults or {}).items()]
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.faulty_share",
            str(source),
            str(mountpoint),
            *spec,
        ],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(
            lambda: os.path.ismount(mountpoint) or process.poll() is not None,
            what="the faulty share's mount",
        )
        if process.poll() is not None:
            assert process.stderr is not None
            raise AssertionError(f"the faulty share did not mount: {process.stderr.read()!r}")
        yield
    finally:
        if os.path.ismount(mountpoint):
            subprocess.run([fusermount, "-u", str(mountpoint)], check=False, capture_output=True)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            subprocess.run([fusermount, "-uz", str(mountpoint)], check=False, capture_output=True)


def main(argv: list[str]) -> int:
    source, mountpoint, *spec = argv
    faults = {}
    for item in spec:
        rel, _, fault = item.rpartition("=")
        faults[rel] = FAULTS[fault]
    serve(Path(source), Path(mountpoint), faults)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
