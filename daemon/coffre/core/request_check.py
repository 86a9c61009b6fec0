"""Pure: the values a control-socket request carries, refused before anything is done with them.

A client (``coffre`` or anything else that reaches the socket) sends paths,
patterns, archive, target and disk names, and dates that borg or a job would
refuse later, when a job is already queued: a path pasted with a tab or a
trailing CR, an archive name ``{now}`` (a placeholder borg expands). Here they
are a :class:`UsageError` (exit 2) before any job is queued or any access is
recorded, whoever the client is; the CLI may call the same function to refuse
early, but the daemon never counts on it.

No I/O here, and nothing of the daemon: the CLI imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from coffre.core.errors import UsageError

__all__ = ["check_request"]

#: C0 controls (tab, CR, LF, NUL...), DEL and C1 controls. Windows refuses the
#: C0 ones in file names, so no file of the share holds one; borg's argv
#: builders refuse C0 and DEL; none shows on a terminal or in the audit log.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_PATH_HINT = "a path pasted with a tab or a trailing CR? retype it"
_ARCHIVE_HINT = "write the archive's name as `coffre archives` lists it"

#: Request keys holding one piece of text: how the person typed it (for the
#: message), and the hint given when it holds a control character.
_TEXT_FIELDS: dict[str, tuple[str, str]] = {
    "pattern": ("the pattern", "a pattern pasted with a tab or a trailing CR? retype it"),
    "to": ("--to", _PATH_HINT),
    "device": ("the device", _PATH_HINT),
    "target": ("--target", "a name pasted with a trailing CR? retype it"),
    "name": ("the name", "a name pasted with a trailing CR? retype it"),
    "date": ("--date", "write it YYYY-MM-DD"),
    "since": ("--since", "write it YYYY-MM-DD"),
    "why": ("--why", "write the reason on one line"),
    "kind": ("the incident's kind", "write ransomware or clock"),
    "accept": ("--accept-host-key", "copy the fingerprint again: SHA256:..."),
}

_CHAR_NAMES = {"\t": "a tab", "\r": "a carriage return (CR)", "\n": "a line feed", "\0": "a NUL"}


def check_request(request: Mapping[str, object]) -> None:
    """Raise UsageError for the first value of ``request`` that no job may take.

    ``request`` is a decoded request line (a JSON object). Looked at, when
    present and not null: ``paths`` (a list of strings), ``targets`` (a
    string or a list of strings), ``archive`` and the text fields of
    :data:`_TEXT_FIELDS`. A value of the wrong type, or holding a control
    character (C0, DEL or C1), is refused; so is an archive name holding
    ``{``/``}`` (borg's placeholders), ``::`` or ``/``, or starting with
    ``-``. Other keys (``op``, flags, ``person``) are left to their readers.

    Returns None when every value may go on; raises :class:`UsageError`
    naming the field and showing the value escaped (``'tab\\tname.txt'``).
    """
    paths = request.get("paths")
    if paths is not None:
        for path in _strings(paths, "paths"):
            _refuse_control("path", path, _PATH_HINT)
    targets = request.get("targets")
    if targets is not None:
        names = (targets,) if isinstance(targets, str) else _strings(targets, "targets")
        for name in names:
            _refuse_control("--target", name, "a name pasted with a trailing CR? retype it")
    for key, (field, hint) in _TEXT_FIELDS.items():
        value = request.get(key)
        if value is not None:
            _refuse_control(field, _string(value, key), hint)
    archive = request.get("archive")
    if archive is not None:
        _check_archive(_string(archive, "archive"))


def _check_archive(name: str) -> None:
    """Refuse an archive name borg would misread (empty means "not given": fine)."""
    _refuse_control("--archive", name, _ARCHIVE_HINT)
    if "{" in name or "}" in name:
        raise UsageError(
            f"--archive {name!r} contains a brace: borg would expand it as a placeholder "
            "({now}, {hostname}), not look for that archive",
            hint=_ARCHIVE_HINT,
        )
    if "::" in name or "/" in name:
        raise UsageError(
            f"--archive {name!r} contains '::' or '/': no archive name does",
            hint=f"give the archive's name alone; {_ARCHIVE_HINT}",
        )
    if name.startswith("-"):
        raise UsageError(
            f"--archive {name!r} starts with '-': borg would read it as an option",
            hint=_ARCHIVE_HINT,
        )


def _refuse_control(field: str, value: str, hint: str) -> None:
    found = _CONTROL.search(value)
    if found is not None:
        char = found[0]
        what = _CHAR_NAMES.get(char, f"the control character U+{ord(char):04X}")
        raise UsageError(f"{field} {value!r} contains {what}", hint=hint)


def _string(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"bad request: {key} must be a string, not {type(value).__name__}")
    return value


def _strings(value: object, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UsageError(f"bad request: {key} must be a list of strings")
    return value
