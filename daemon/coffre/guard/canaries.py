"""Witness files at the top of the share: ransomware hits them early, people leave them alone.

coffre plants :data:`NAMES` at the top of each source path: "!" sorts them
first in the Explorer and in the directory walks that ransomware makes, and
the name says in French what they are. Each is a small valid file of its type
(a Word and an Excel file, a PDF, a JPEG, a text) whose text says it is the
backup's witness file, not to be modified, moved or deleted.

Planting as root in a share users write to: the root is opened
``O_NOFOLLOW|O_DIRECTORY`` (a root replaced by a symlink is refused, never
followed), each file created ``O_CREAT|O_EXCL|O_NOFOLLOW`` relative to it
(a name already taken, even by a dangling symlink, is left alone), written,
fsynced, then given to the root's owner and group with mode 0664: ransomware
runs as a workstation user, and a canary it may not write would never trip.

What is recorded (:class:`CanaryRecord`, kept in the state by the caller) is
what coffre planted and owns: per root, each name with its sha256 and size. A
name that something else holds is not recorded and not watched. After an
incident (``replant``), a missing canary is planted again; a changed one is
*left where it is* (it is the incident's evidence, and coffre never touches
data it was not asked to) and dropped from the record: once support removes
it, the name is free and the next run plants it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from coffre.guard.content_sample import open_root, read_head

#: The stem every canary shares; the extensions follow.
STEM: Final = "!COFFRE-TEMOIN-NE-PAS-MODIFIER"

#: What every canary says, in French (the practice's language).
TEXT_FR: Final = (
    "Fichier temoin de la sauvegarde coffre.",
    "Ne pas modifier, ne pas deplacer, ne pas supprimer ce fichier.",
    "Il sert a detecter un rancongiciel : s'il change, la sauvegarde garde",
    "les anciennes copies de vos fichiers et previent le support.",
)

#: Mode of a planted canary: the share's users must be able to change it (module doc).
MODE: Final = 0o664

# Fixed date inside the zip containers: the same bytes at every plant.
_ZIP_DATE = (2026, 1, 1, 0, 0, 0)

WHAT_MISSING: Final = "missing"
WHAT_CHANGED: Final = "changed"
WHAT_NOT_REGULAR: Final = "not a regular file"


def _txt() -> bytes:
    return ("\r\n".join(TEXT_FR) + "\r\n").encode("utf-8")


def _pdf() -> bytes:
    lines = " ".join(f"({line}) Tj T*" for line in TEXT_FR)
    stream = f"BT /F1 12 Tf 14 TL 50 780 Td {lines} ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _jpeg() -> bytes:
    """An 8x8 grey baseline JPEG whose comment segment (COM) holds the text."""
    comment = " ".join(TEXT_FR).encode("ascii")

    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body

    return b"".join(
        (
            b"\xff\xd8",
            segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            segment(0xFE, comment),
            segment(0xDB, b"\x00" + b"\x01" * 64),  # quantisation: all ones
            segment(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00"),  # 8x8, 1 component
            # One Huffman code each (length 1, code "0"): DC category 0, AC end of block.
            segment(0xC4, b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00"),
            segment(0xC4, b"\x10" + b"\x01" + b"\x00" * 15 + b"\x00"),
            segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            b"\x3f",  # bits 0 (DC diff 0) and 0 (EOB), padded with ones
            b"\xff\xd9",
        )
    )


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, _ZIP_DATE), text.encode("utf-8"))
    return buffer.getvalue()


_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_PKG = "http://schemas.openxmlformats.org/package/2006"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _ooxml(main: str, content_type: str, parts: dict[str, str]) -> bytes:
    types = (
        f'{_XML}<Types xmlns="{_PKG}/content-types">'
        '<Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{main}" ContentType="{content_type}"/></Types>'
    )
    rels = (
        f'{_XML}<Relationships xmlns="{_PKG}/relationships">'
        f'<Relationship Id="rId1" Type="{_DOC}/officeDocument" Target="{main}"/>'
        "</Relationships>"
    )
    return _zip({"[Content_Types].xml": types, "_rels/.rels": rels, **parts})


def _docx() -> bytes:
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    paragraphs = "".join(f"<w:p><w:r><w:t>{line}</w:t></w:r></w:p>" for line in TEXT_FR)
    document = f'{_XML}<w:document xmlns:w="{ns}"><w:body>{paragraphs}</w:body></w:document>'
    return _ooxml(
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        {"word/document.xml": document},
    )


def _xlsx() -> bytes:
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rows = "".join(
        f'<row r="{i}"><c r="A{i}" t="inlineStr"><is><t>{line}</t></is></c></row>'
        for i, line in enumerate(TEXT_FR, start=1)
    )
    workbook = (
        f'{_XML}<workbook xmlns="{ns}" xmlns:r="{_DOC}"><sheets>'
        '<sheet name="Temoin" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    workbook_rels = (
        f'{_XML}<Relationships xmlns="{_PKG}/relationships">'
        f'<Relationship Id="rId1" Type="{_DOC}/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    )
    sheet = f'{_XML}<worksheet xmlns="{ns}"><sheetData>{rows}</sheetData></worksheet>'
    return _ooxml(
        "xl/workbook.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        {
            "xl/workbook.xml": workbook,
            "xl/_rels/workbook.xml.rels": workbook_rels,
            "xl/worksheets/sheet1.xml": sheet,
        },
    )


#: Every canary: its name and its content (the same bytes at every plant).
CONTENTS: Final[dict[str, bytes]] = {
    f"{STEM}.docx": _docx(),
    f"{STEM}.xlsx": _xlsx(),
    f"{STEM}.pdf": _pdf(),
    f"{STEM}.jpg": _jpeg(),
    f"{STEM}.txt": _txt(),
}
NAMES: Final = tuple(CONTENTS)


@dataclass(frozen=True)
class CanaryFile:
    """One canary coffre planted: its name in the root, sha256 (hex) and size."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class CanaryRecord:
    """The canaries planted, per source root (its path as configured)."""

    roots: dict[str, tuple[CanaryFile, ...]] = field(default_factory=dict)

    def to_json(self) -> str:
        """The record as a JSON text (for the state)."""
        return json.dumps(
            {root: [vars(f) for f in files] for root, files in sorted(self.roots.items())},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> CanaryRecord:
        """The record ``to_json`` wrote; ValueError (or KeyError, TypeError) on anything else."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a canary record is a JSON object")
        return cls(
            {
                str(root): tuple(
                    CanaryFile(str(f["name"]), str(f["sha256"]), int(f["size"])) for f in files
                )
                for root, files in data.items()
            }
        )


@dataclass(frozen=True)
class Touched:
    """A canary found touched: which root (index in the roots), its name, what was seen."""

    root_index: int
    name: str
    what: str


@dataclass(frozen=True)
class CanaryCheck:
    """The check of every recorded canary: how many were checked, which were touched."""

    checked: int
    touched: tuple[Touched, ...]


def state_of(root_fd: int, canary: CanaryFile) -> str:
    """ "" for a canary intact below ``root_fd``, else WHAT_MISSING, _CHANGED or _NOT_REGULAR.

    Never follows a symlink, never opens a FIFO or device, never changes the
    access time. Raises nothing.
    """
    try:
        before = os.stat(canary.name, dir_fd=root_fd, follow_symlinks=False)
    except FileNotFoundError:
        return WHAT_MISSING
    except OSError:
        return WHAT_CHANGED
    if not stat.S_ISREG(before.st_mode):
        return WHAT_NOT_REGULAR
    if before.st_size != canary.size:
        return WHAT_CHANGED
    head = read_head(root_fd, (canary.name.encode(),), canary.size + 1)
    if head is None or hashlib.sha256(head).hexdigest() != canary.sha256:
        return WHAT_CHANGED
    return ""


def check_canaries(roots: Sequence[Path], record: CanaryRecord) -> CanaryCheck:
    """Check every canary of ``record`` under ``roots`` (roots it does not name: none).

    Raises SourceUnavailable for a root that cannot be opened.
    """
    checked = 0
    touched: list[Touched] = []
    for index, root in enumerate(roots):
        files = record.roots.get(str(root), ())
        if not files:
            continue
        root_fd = open_root(root)
        try:
            for canary in files:
                checked += 1
                if what := state_of(root_fd, canary):
                    touched.append(Touched(index, canary.name, what))
        finally:
            os.close(root_fd)
    return CanaryCheck(checked, tuple(touched))


def plant(root_fd: int, name: str, content: bytes) -> CanaryFile | None:
    """Create canary ``name`` below ``root_fd``; None when the name is taken or it failed.

    Never overwrites, never follows a symlink; the file is given to the
    root's owner, mode 0664 (module doc). A file that could not be written
    whole (disk full) is removed: the next run tries again. Raises nothing.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, 0o600, dir_fd=root_fd)
    except OSError:
        return None
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        owner = os.fstat(root_fd)
        os.fchown(fd, owner.st_uid, owner.st_gid)
        os.fchmod(fd, MODE)
    except OSError:
        _remove_ours(root_fd, name, fd)
        return None
    os.close(fd)
    return CanaryFile(name, hashlib.sha256(content).hexdigest(), len(content))


def _remove_ours(root_fd: int, name: str, fd: int) -> None:
    """Remove the half-written canary open as ``fd``, and close ``fd``; raises nothing.

    Only if ``name`` is still that very file: a workstation user may have
    renamed it away and put a file of their own in its place meanwhile.
    """
    with contextlib.suppress(OSError):
        ours = os.fstat(fd)
        there = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
        if (there.st_dev, there.st_ino) == (ours.st_dev, ours.st_ino):
            os.unlink(name, dir_fd=root_fd)
    os.close(fd)


def _ensure_root(root_fd: int, recorded: tuple[CanaryFile, ...], replant: bool) -> list[CanaryFile]:
    """The canaries of one root after planting what is due (module doc)."""
    kept: list[CanaryFile] = []
    by_name = {canary.name: canary for canary in recorded}
    for name, content in CONTENTS.items():
        canary = by_name.get(name)
        if canary is not None and not replant:
            kept.append(canary)  # checked, never replaced, until support clears
            continue
        if canary is not None and state_of(root_fd, canary) == "":
            kept.append(canary)
            continue
        planted = plant(root_fd, name, content)
        if planted is not None:
            kept.append(planted)
    return kept


def ensure_canaries(
    roots: Sequence[Path], record: CanaryRecord | None, *, replant: bool
) -> CanaryRecord:
    """Plant the canaries due under ``roots`` and return the new record.

    Due: every name not in ``record`` for its root (the first run, a new
    root, a name that was taken and is free again); with ``replant`` (support
    cleared an incident) also the recorded ones that are no longer intact,
    where the name is free (module doc). Roots no longer configured leave the
    record. Raises SourceUnavailable for a root that cannot be opened.
    """
    previous = record.roots if record is not None else {}
    result: dict[str, tuple[CanaryFile, ...]] = {}
    for root in roots:
        root_fd = open_root(root)
        try:
            kept = _ensure_root(root_fd, previous.get(str(root), ()), replant)
            os.fsync(root_fd)
        finally:
            os.close(root_fd)
        result[str(root)] = tuple(kept)
    return CanaryRecord(result)
