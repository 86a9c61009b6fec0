"""Samba's open files, read from ``smbstatus --locks --json`` (Samba 4.17): who writes now.

Pure: the caller runs smbstatus (:mod:`coffre.consistency.smb_activity`) and
hands its standard output here. The shape read (Samba 4.17.12)::

    {"timestamp": ..., "version": "4.17.12-Debian", "smb_conf": ...,
     "open_files": {
       "<service_path>/<filename>": {
         "service_path": "/srv/coffre/partage", "filename": "dossier/lettre.docx",
         "fileid": {...}, "num_pending_deletes": 0,
         "opens": {
           "<pid>/<share_file_id>": {
             "server_id": {...}, "uid": 999, "share_file_id": "3",
             "sharemode": {...},
             "access_mask": {"hex": "0x00000003", "READ_DATA": true,
                             "WRITE_DATA": true, ..., "text": "RW"},
             "caching": {...}, "oplock": {}, "lease": {},
             "opened_at": "2026-12-06T10:04:21.260863+00:00"}}}}}

``open_files`` is absent when smbstatus could not read its locking database
(never created: smbd never ran with that lock directory; or a configuration it
could not load): :func:`parse` refuses that output, and the caller tells the
two apart from smbstatus's standard error.

File names are patient data: nothing here prints or logs them, and no error
message quotes them; callers use counts only.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath, PurePosixPath
from typing import Any

# The access mask bits (MS-SMB2 2.2.13.1.1, Samba's librpc/idl/security.idl)
# that let an open change what a backup reads:
#: FILE_WRITE_DATA: write anywhere in the file, and truncate it (set its end).
FILE_WRITE_DATA = 0x00000002
#: FILE_APPEND_DATA: write at its end.
FILE_APPEND_DATA = 0x00000004
#: DELETE: delete it or rename it, e.g. Word's save, which writes a temporary file
#: and renames it over the document: the document is being replaced.
DELETE = 0x00010000
#: GENERIC_ALL and GENERIC_WRITE include FILE_WRITE_DATA; smbd maps them to the
#: specific bits before recording an open, so they should never show, but an open
#: that carried one would be writing.
GENERIC_ALL = 0x10000000
GENERIC_WRITE = 0x40000000
#: Left out on purpose: WRITE_ATTRIBUTES, WRITE_EA, WRITE_DAC, WRITE_OWNER
#: (timestamps, extended attributes, permissions: not the content; Explorer opens
#: files with WRITE_ATTRIBUTES just to browse), READ_DATA, EXECUTE, SYNCHRONIZE.
WRITING_BITS = FILE_WRITE_DATA | FILE_APPEND_DATA | DELETE | GENERIC_ALL | GENERIC_WRITE


@dataclass(frozen=True)
class SmbOpen:
    """One open of a file by an SMB client.

    ``path``: the share's folder joined with the file's name in it (absolute,
    normalised). ``writing``: the open may change the file's content or replace
    it (:data:`WRITING_BITS`). ``opened_at``: when, if smbstatus said.
    """

    path: str
    writing: bool
    opened_at: datetime | None


def parse(text: str) -> tuple[SmbOpen, ...]:
    """The opens listed by ``smbstatus --locks --json``'s output ``text``.

    Raises ValueError when ``text`` is not JSON, has no ``open_files`` object
    (smbstatus could not read its locking database), or an entry lacks what is
    read here; the message names the field, never a file.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"smbstatus's output is not JSON ({exc.msg} at {exc.pos})") from exc
    if not isinstance(document, dict):
        raise ValueError("smbstatus's output is not a JSON object")
    if "open_files" not in document:
        raise ValueError("smbstatus's output has no open_files: it read no locking database")
    files = _object(document["open_files"], "open_files")
    return tuple(found for entry in files.values() for found in _file_opens(entry))


def writers_under(opens: Iterable[SmbOpen], roots: Sequence[PurePath]) -> int:
    """How many of ``opens`` are for writing, on a file equal to or below one of ``roots``.

    Compared by whole path components (``/srv/ab`` is not under ``/srv/a``),
    after normalisation, without touching the disk: ``roots`` must be spelled as
    smbd sees the share (its ``path``, without symlinks).
    """
    folders = [PurePosixPath(posixpath.normpath(str(root))) for root in roots]
    return sum(
        1
        for found in opens
        if found.writing
        and any(PurePosixPath(found.path).is_relative_to(folder) for folder in folders)
    )


def _file_opens(entry: Any) -> Iterable[SmbOpen]:
    """The opens of one ``open_files`` entry (a file, possibly opened several times)."""
    record = _object(entry, "an open_files entry")
    service_path = _text(record, "service_path")
    filename = _text(record, "filename")
    # The name is relative to the share; a leading slash must not make join drop the share.
    path = posixpath.normpath(posixpath.join(service_path, filename.lstrip("/")))
    opens = _object(record.get("opens"), "an entry's opens")
    for one in opens.values():
        detail = _object(one, "an open")
        yield SmbOpen(path, _writing(detail), _opened_at(detail))


def _writing(detail: dict[str, Any]) -> bool:
    """Whether an open's access mask (its ``hex``, the whole mask) grants a writing bit."""
    mask = _object(detail.get("access_mask"), "an open's access_mask")
    hex_text = _text(mask, "hex")
    try:
        value = int(hex_text, 16)
    except ValueError as exc:
        raise ValueError("an open's access_mask.hex is not a hexadecimal number") from exc
    return bool(value & WRITING_BITS)


def _opened_at(detail: dict[str, Any]) -> datetime | None:
    """When the open was made; None when smbstatus did not say."""
    if detail.get("opened_at") is None:
        return None
    when = _text(detail, "opened_at")
    try:
        return datetime.fromisoformat(when)
    except ValueError as exc:
        raise ValueError("an open's opened_at is not an ISO 8601 time") from exc


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} in smbstatus's output is not a JSON object")
    return value


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} in smbstatus's output is missing or not a string")
    return value
