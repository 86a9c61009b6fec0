"""The practice's share: many small files, the same on every run (seeded)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

FILES = 20_000
FOLDERS = 200
MIN_SIZE, MAX_SIZE = 1024, 8192


@dataclass(frozen=True)
class ShareStats:
    files: int
    folders: int
    size: int


def fill(root: Path, files: int = FILES, folders: int = FOLDERS, *, seed: int = 2) -> ShareStats:
    """Write ``files`` files of 1 to 8 KiB under ``folders`` folders of ``root``.

    Half of each file is random (it does not compress), half a repeated
    record (it does): roughly what a practice's documents and database
    exports give. The same ``seed`` gives the same names and bytes.
    """
    rng = random.Random(seed)
    total = 0
    for folder in range(folders):
        (root / f"patients-{folder:03d}").mkdir(parents=True, exist_ok=True)
    for i in range(files):
        size = rng.randint(MIN_SIZE, MAX_SIZE)
        record = f"{i:08d};DUPONT;Marie;1970-01-01;consultation;".encode()
        text = (record * (size // (2 * len(record)) + 1))[: size // 2]
        data = rng.randbytes(size - len(text)) + text
        path = root / f"patients-{i % folders:03d}" / f"dossier-{i:05d}.dat"
        path.write_bytes(data)
        total += size
    return ShareStats(files=files, folders=folders, size=total)
