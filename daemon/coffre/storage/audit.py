"""The audit trail: who found, restored, browsed, exported or recovered what, and when.

Access to health data must be traceable. Every such access is one line of an
append-only JSON-lines file, ``<state dir>/audit.log``::

    {"archive":...,"details":...,"op":"restore","outcome":"ok","paths":[...],
     "person":{...},"prev":"<sha256 of the previous line>","seq":7,"target":"local",
     "time":"2026-11-18T10:00:00+01:00"}

Each line carries the SHA-256 of the previous line's exact bytes (``prev``; 64
zeros for the first), and a head file beside the log (``audit.log.head``)
holds the sequence number and hash of the last line. :func:`verify` then finds,
and names by line, a line edited, removed or garbled anywhere, including the
last ones, which the chain alone cannot vouch for, whenever whoever did it did
not also rewrite every later line and the head file to match.

What this does not do: someone with root on the box can rewrite the file and
its head consistently (no secret key is involved), or delete both; verify then
says intact. The box's journal, where every entry is also logged with its seq
and hash (``MESSAGE_ID`` :data:`MSG_AUDIT`, fields ``COFFRE_AUDIT_SEQ`` and
``COFFRE_AUDIT_HASH``), is under the same root. The witnesses are off the
box: the metrics carry the entry count and the last entries' chain hashes
(:mod:`coffre.storage.audit_tail`, ``coffre.observe.audit_series``), which the
central store's alerts compare with what they saw before; and the journal
lines, where forwarded (``packaging/journal/``), keep each entry as logged.

Two processes write: the daemon and the standalone ``coffre recover``. Each
:meth:`AuditLog.record` takes an exclusive ``flock`` on the log while it reads
the tail, appends and updates the head; readers take a shared one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from coffre.core.config_types import Config
from coffre.core.errors import CoffreError
from coffre.storage.atomic import write_atomically

__all__ = [
    "GENESIS",
    "MSG_AUDIT",
    "MSG_AUDIT_DAMAGED",
    "AuditEntry",
    "AuditLog",
    "AuditLogDamaged",
    "AuditReport",
    "AuditUnavailable",
    "audit_path",
    "entry_of_line",
    "head_path",
    "load_head",
    "read_entries",
    "verify",
]

#: journald MESSAGE_ID of every audit entry (``journalctl MESSAGE_ID=...``); stable.
MSG_AUDIT = "994eaf66360e4213855a6b2f2450660a"
#: journald MESSAGE_ID of "the audit log was found damaged while recording"; stable.
MSG_AUDIT_DAMAGED = "d36d19d8a46846048bd8ae173a113eaa"

#: The ``prev`` of the first line: there is no previous line.
GENESIS = "0" * 64

_KEYS = ("archive", "details", "op", "outcome", "paths", "person", "prev", "seq", "target", "time")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Reading the tail goes backwards by chunks, doubled each time: one read for
# ordinary lines, few for a restore listing thousands of paths.
_TAIL_CHUNK = 4096


class AuditLogDamaged(CoffreError):
    """The audit log's last line (or its head file) is not what coffre last wrote.

    Raised by :meth:`AuditLog.record` only for a log built with ``strict=True``;
    otherwise the entry is recorded after the damage, and marked so.
    """

    kind = "audit_damaged"


class AuditUnavailable(CoffreError):
    """An access to patient data is refused: it could not be recorded in the audit log."""

    kind = "audit_unavailable"

    @classmethod
    def writing(cls, op: str, log: Path, error: OSError, *, why: str = "") -> AuditUnavailable:
        """The refusal of ``op`` (``key_export``...) whose line ``log`` could not take.

        ``why`` follows "nothing was done" in the hint (e.g. ": every access
        to patient data must be recorded"). Raises nothing.
        """
        return cls(
            f"cannot record this {op.replace('_', ' ')} in the audit log {log}: {error.strerror}",
            hint=f"nothing was done{why}; free space in {log.parent} (df -h), then ask again",
        )


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log, as read or as just written.

    ``hash`` is the SHA-256 (hex) of the line's exact bytes, without its newline:
    the ``prev`` of the next line.
    """

    seq: int
    time: datetime
    op: str
    person: Mapping[str, Any]
    target: str | None
    archive: str | None
    paths: tuple[str, ...]
    outcome: str
    details: Mapping[str, Any] | None
    prev: str
    hash: str

    @property
    def after_damage(self) -> bool:
        """True when this entry was recorded after coffre found the log damaged."""
        return bool(self.details and self.details.get("after_damage") is True)

    def as_json(self) -> dict[str, Any]:
        """The entry as plain JSON values (``time`` as ISO 8601 with offset), with its hash."""
        return {
            "seq": self.seq,
            "time": self.time.isoformat(),
            "op": self.op,
            "person": dict(self.person),
            "target": self.target,
            "archive": self.archive,
            "paths": list(self.paths),
            "outcome": self.outcome,
            "details": None if self.details is None else dict(self.details),
            "prev": self.prev,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class AuditReport:
    """What :func:`verify` found: ``count`` valid entries, and every problem, in plain English."""

    ok: bool
    count: int
    problems: tuple[str, ...]


def audit_path(cfg: Config) -> Path:
    """Where the audit log of the box configured by ``cfg`` is (daemon and CLI alike)."""
    return cfg.paths.state / "audit.log"


def head_path(log: Path) -> Path:
    """The head file beside the audit log ``log``: ``<log>.head``."""
    return log.with_name(log.name + ".head")


class AuditLog:
    """The audit log at ``path`` (with its head file ``<path>.head``), for appending.

    ``logger`` receives each entry too (journald in the daemon). With
    ``strict=True``, :meth:`record` refuses to append after damage (raises
    :class:`AuditLogDamaged`) instead of recording and marking the entry.
    """

    def __init__(self, path: Path, logger: logging.Logger, *, strict: bool = False) -> None:
        self.path = path
        self.head = head_path(path)
        self._logger = logger
        self._strict = strict

    def record(
        self,
        *,
        op: str,
        at: datetime,
        person: Mapping[str, Any],
        target: str | None,
        archive: str | None,
        paths: Sequence[str],
        outcome: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry; return it once it is on disk (fsynced).

        ``op`` is what was done ("restore", "find", "browse", "key_export",
        "recover"...), ``at`` when (timezone-aware), ``person`` who
        (see :func:`coffre.cli.client.person_from_env`),
        ``target``/``archive``/``paths`` on what,
        ``outcome`` how it went ("asked", "ok", "failed: no_such_path"...),
        ``details`` anything else, JSON-serialisable.

        When the log's tail is damaged (last line garbled, cut short or edited,
        last lines removed, head file missing or wrong), the entry is still
        recorded, chained over the damaged bytes as they are, with
        ``details["after_damage"] = True`` and ``details["damage"]`` saying what
        was found, and an error is logged (:data:`MSG_AUDIT_DAMAGED`). Why not
        refuse: an access coffre cannot record is either refused (a practice
        unable to restore a patient file because of a log) or done unrecorded;
        both are worse than an entry that carries, inside the chain, the mark
        of the damage. Chaining over the damaged bytes also freezes them: any
        later change to them is detected too. :func:`verify` reports the damage
        and every entry so marked.

        Raises ValueError when ``at`` is naive, TypeError when ``paths`` is one
        string or a value is not JSON-serialisable, OSError when the log cannot
        be written, and :class:`AuditLogDamaged` on damage when ``strict``.
        """
        body = _new_body(op, at, person, target, archive, paths, outcome, details)
        _encode(body)  # a value that cannot be serialised fails here, before any write

        try:
            digest, damage = self._append(body)
        except OSError as error:
            self._log_unrecorded(body, person, error)
            raise

        entry = _entry_of(body, at, digest)
        self._log_recorded(entry, damage)
        return entry

    def _log_unrecorded(
        self, body: dict[str, Any], person: Mapping[str, Any], error: OSError
    ) -> None:
        """Journal an entry that could not be written (``body``, by ``person``, and why)."""
        # The journal is then the only trace of the attempt: the caller
        # refuses the access (see SupportDesk) but the attempt is known.
        self._logger.error(
            "audit: %s by %s, %d path(s): %s NOT recorded in %s: %s",
            body["op"],
            who(person),
            len(body["paths"]),
            body["outcome"],
            self.path,
            error,
            extra={
                "MESSAGE_ID": MSG_AUDIT,
                "COFFRE_AUDIT_OP": body["op"],
                "COFFRE_AUDIT_USER": str(person.get("user", "")),
            },
        )

    def _log_recorded(self, entry: AuditEntry, damage: str | None) -> None:
        """Journal ``entry``, once on disk, and the ``damage`` it was chained over, if any."""
        if damage is not None:
            self._logger.error(
                "audit log %s damaged: %s; entry %d recorded after it, marked after_damage "
                "(run `coffre audit verify`)",
                self.path,
                damage,
                entry.seq,
                extra={"MESSAGE_ID": MSG_AUDIT_DAMAGED, "COFFRE_AUDIT_SEQ": str(entry.seq)},
            )
        self._logger.info(
            "%s",
            describe(entry),
            extra={
                "MESSAGE_ID": MSG_AUDIT,
                "COFFRE_AUDIT_SEQ": str(entry.seq),
                "COFFRE_AUDIT_HASH": entry.hash,
                "COFFRE_AUDIT_OP": entry.op,
                "COFFRE_AUDIT_USER": str(entry.person.get("user", "")),
            },
        )

    def _append(self, body: dict[str, Any]) -> tuple[str, str | None]:
        """Chain ``body`` onto the log, on disk and fsynced: (its line's hash, damage found).

        Fills in ``body``'s ``seq`` and ``prev`` (and its ``details`` on damage).
        """
        # The state dir exists under the daemon; `coffre recover` may run on a fresh box.
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _keep_private(fd)
            last, cut_short = _last_line(fd)
            damage, seq, prev = _assess_tail(last, *_load_head(self.head))
            if damage is not None:
                if self._strict:
                    raise AuditLogDamaged(
                        f"{self.path}: the audit log is damaged: {damage}",
                        hint="run `coffre audit verify` to see what is wrong and where",
                    )
                body["details"] = {
                    **(body["details"] or {}),
                    "after_damage": True,
                    "damage": damage,
                }
            body["seq"], body["prev"] = seq, prev
            line = _encode(body)
            digest = hashlib.sha256(line).hexdigest()
            # A line cut short by a crash gets its end of line first, in the same
            # write: the new line never glues onto the fragment.
            _write_all(fd, (b"\n" if cut_short else b"") + line + b"\n")
            os.fsync(fd)
            try:
                _write_head(self.head, seq, digest)
            except OSError as error:
                # The line is on disk: the access is recorded. A head one entry
                # behind is a state verify and the next record accept (as after
                # a crash between the two writes), so this is not the caller's failure.
                self._logger.error(
                    "audit: entry %d recorded but %s not updated: %s", seq, self.head, error
                )
        finally:
            os.close(fd)  # releases the lock
        return digest, damage


def describe(entry: AuditEntry) -> str:
    """One readable sentence for ``entry``, as logged.

    E.g. ``audit: restore by alice (ssh 10.0.0.5) on local, archive X, 2 path(s): ok``.
    """
    where = f" on {entry.target}" if entry.target is not None else ""
    archive = f", archive {entry.archive}" if entry.archive is not None else ""
    return (
        f"audit: {entry.op} by {who(entry.person)}{where}{archive}, "
        f"{len(entry.paths)} path(s): {entry.outcome}"
    )


def who(person: Mapping[str, Any]) -> str:
    """The person of an entry for people: the user, and the SSH client's address if any."""
    user = str(person.get("user") or person.get("uid") or "?")
    ssh = person.get("ssh")
    if isinstance(ssh, str) and ssh.split():
        return f"{user} (ssh {ssh.split()[0]})"
    return user


def read_entries(path: Path, since: datetime | None = None) -> list[AuditEntry]:
    """The valid entries of the audit log at ``path``, oldest first.

    ``since`` (timezone-aware) keeps the entries at or after it. Lines that are
    not valid entries are skipped here (:func:`verify` reports them). A missing
    log gives ``[]``. Raises ValueError for a naive ``since``, OSError (e.g.
    PermissionError) when the log cannot be read.
    """
    if since is not None and since.utcoffset() is None:
        raise ValueError(f"since must be timezone-aware, got {since!r}")
    entries = []
    with _reading(path) as lines:
        for line, _ in lines:
            try:
                entry = _parse(line)
            except _BadLine:
                continue
            if since is None or entry.time >= since:
                entries.append(entry)
    return entries


def verify(path: Path) -> AuditReport:
    """Check the audit log at ``path`` and its head file, line by line.

    Returns an :class:`AuditReport`: ``ok`` when nothing is wrong, ``count``
    valid entries, and one plain-English problem per finding, naming the line:
    a line that is not a valid entry, a seq gap (lines removed), a line that
    does not chain to the one before (that one edited or removed), an entry
    recorded after damage, and a head file that disagrees with the last line
    (last line edited, last lines removed), is missing, or says entries existed
    in an empty or missing log. A missing log with no head file is ok, empty.
    Raises OSError (e.g. PermissionError) when the log cannot be read.
    """
    problems: list[str] = []
    count = 0
    number = 0  # line number, 1-based
    prev_hash = GENESIS  # hash of the line before, valid or not
    last_seq = 0  # seq of the last valid entry
    garbled = 0  # invalid lines since the last valid entry
    last: AuditEntry | None = None
    with _reading(path) as lines:
        for line, ended in lines:
            number += 1
            digest = hashlib.sha256(line).hexdigest()
            try:
                entry = _parse(line)
            except _BadLine as bad:
                cut = (
                    "" if ended else "; it was cut short: the box probably stopped while writing it"
                )
                problems.append(f"line {number}: not a valid audit entry ({bad}){cut}")
                garbled += 1
                prev_hash, last = digest, None
                continue
            count += 1
            problems += _entry_problems(number, entry, last_seq, garbled, prev_hash)
            last_seq, garbled, prev_hash, last = entry.seq, 0, digest, entry
        # Still under the shared lock: a record in progress cannot show a head
        # out of step with the last line.
        head, head_problem = _load_head(head_path(path))
    problems += _head_problems(path, number, head, head_problem, last, prev_hash)
    return AuditReport(ok=not problems, count=count, problems=tuple(problems))


def _new_body(
    op: str,
    at: datetime,
    person: Mapping[str, Any],
    target: str | None,
    archive: str | None,
    paths: Sequence[str],
    outcome: str,
    details: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The JSON object of a new entry, its ``seq`` and ``prev`` still to be filled in.

    Raises ValueError when ``at`` is naive, TypeError when ``paths`` is one string.
    """
    if at.utcoffset() is None:
        raise ValueError(f"audit time must be timezone-aware, got {at!r}")
    if isinstance(paths, str):  # a str is a Sequence[str]: one path as many letters
        raise TypeError("paths must be a sequence of paths, not one string")
    return {
        "seq": 0,
        "time": at.isoformat(),
        "op": op,
        "person": dict(person),
        "target": target,
        "archive": archive,
        "paths": list(paths),
        "outcome": outcome,
        "details": None if details is None else dict(details),
        "prev": GENESIS,
    }


def _entry_of(body: Mapping[str, Any], at: datetime, digest: str) -> AuditEntry:
    """The entry ``body`` stands for, once appended (its ``seq`` and ``prev`` filled in) as
    the line whose hash is ``digest``; ``at`` as given, not re-read from its text."""
    return AuditEntry(
        seq=body["seq"],
        time=at,
        op=body["op"],
        person=body["person"],
        target=body["target"],
        archive=body["archive"],
        paths=tuple(body["paths"]),
        outcome=body["outcome"],
        details=body["details"],
        prev=body["prev"],
        hash=digest,
    )


def _entry_problems(
    number: int, entry: AuditEntry, last_seq: int, garbled: int, prev_hash: str
) -> list[str]:
    """What is wrong with valid ``entry`` at line ``number``, given the lines before it.

    ``last_seq`` is the seq of the last valid entry (0: none), ``garbled`` how many
    invalid lines came since, ``prev_hash`` the hash of the line just before.
    """
    problems: list[str] = []
    # A garbled line may have had a seq of its own, or none (a write cut
    # short, whose seq the next entry takes): either fits.
    highest = last_seq + 1 + garbled
    removed = entry.seq > highest
    if removed:
        gone = entry.seq - highest
        lines_gone = f"{gone} line{'s' if gone > 1 else ''}"
        if last_seq == 0 and garbled == 0:
            problems.append(
                f"line {number}: the log starts at seq {entry.seq}: {lines_gone} removed before it"
            )
        else:
            problems.append(
                f"line {number}: seq {entry.seq} follows seq {last_seq}: "
                f"{lines_gone} removed before it"
            )
    elif entry.seq <= last_seq:
        problems.append(
            f"line {number}: seq {entry.seq} comes after seq {last_seq}: lines were copied or moved"
        )
    # After a seq gap the chain is broken too; saying so again adds nothing.
    if entry.prev != prev_hash and not removed:
        if number == 1:
            problems.append(
                "line 1 does not start the chain: it was edited, or lines were removed before it"
            )
        else:
            problems.append(
                f"line {number - 1} was edited or removed: line {number} does not chain to it"
            )
    if entry.after_damage:
        damage = (entry.details or {}).get("damage", "damage not described")
        problems.append(f"line {number}: recorded after coffre found the log damaged ({damage})")
    return problems


def _head_problems(
    path: Path,
    number: int,
    head: _Head | None,
    head_problem: str | None,
    last: AuditEntry | None,
    prev_hash: str,
) -> list[str]:
    """What is wrong with the head file of the log at ``path``, read with ``number`` lines.

    ``last`` is the last line's entry (None: not valid), ``prev_hash`` its hash.
    """
    problems: list[str] = []
    if head_problem is not None:
        problems.append(f"the head file {head_path(path).name} is damaged: {head_problem}")
    elif number == 0:
        if head is not None and head.seq > 0:
            problems.append(
                f"the log is empty or missing but its head file says {head.seq} "
                f"entr{'ies were' if head.seq > 1 else 'y was'} written: "
                "it was emptied, replaced or deleted"
            )
    else:
        mismatch = _head_mismatch(head, last, prev_hash, f"line {number} (the last one)")
        if mismatch is not None:
            problems.append(mismatch)
    return problems


# --- lines ----------------------------------------------------------------------


def entry_of_line(line: bytes) -> AuditEntry | None:
    """The entry on ``line`` (its exact bytes, without newline); None when it is not a valid
    one (:func:`verify` says why). Raises nothing."""
    try:
        return _parse(line)
    except _BadLine:
        return None


def load_head(path: Path) -> tuple[int, str] | None:
    """What the head file ``path`` says: (seq, hash); None when it is missing or damaged
    (unreadable, not JSON, not a seq and a SHA-256). Raises nothing."""
    head, _ = _load_head(path)
    return None if head is None else (head.seq, head.hash)


class _BadLine(Exception):
    """A line that is not a valid entry; the message says why, for people."""


def _encode(body: Mapping[str, Any]) -> bytes:
    """The line for ``body``, without its newline: canonical JSON, UTF-8.

    A file name that is not UTF-8 reaches Python with lone surrogates; those
    become JSON ``\\udcXX`` escapes, which read back as the same string.
    """
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace")


def _parse(line: bytes) -> AuditEntry:
    """The entry on ``line`` (without its newline); raises _BadLine saying what is wrong."""
    try:
        raw = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise _BadLine("not UTF-8 text") from None
    except ValueError:
        raise _BadLine("not JSON" if line.strip() else "empty line") from None
    if not isinstance(raw, dict):
        raise _BadLine("not a JSON object")
    missing = [key for key in _KEYS if key not in raw]
    if missing:
        raise _BadLine(f"missing {', '.join(missing)}")
    seq, when, prev = raw["seq"], raw["time"], raw["prev"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise _BadLine(f"seq is not a number from 1: {seq!r}")
    try:
        at = datetime.fromisoformat(when) if isinstance(when, str) else None
    except ValueError:
        at = None
    if at is None or at.utcoffset() is None:
        raise _BadLine(f"time is not an ISO 8601 time with offset: {when!r}")
    if not isinstance(prev, str) or not _SHA256_HEX.fullmatch(prev):
        raise _BadLine("prev is not a SHA-256 in hex")
    paths = raw["paths"]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise _BadLine("paths is not a list of strings")
    if not isinstance(raw["person"], dict):
        raise _BadLine("person is not an object")
    if raw["details"] is not None and not isinstance(raw["details"], dict):
        raise _BadLine("details is not an object")
    for key in ("op", "outcome"):
        if not isinstance(raw[key], str):
            raise _BadLine(f"{key} is not a string")
    for key in ("target", "archive"):
        if raw[key] is not None and not isinstance(raw[key], str):
            raise _BadLine(f"{key} is not a string")
    return AuditEntry(
        seq=seq,
        time=at,
        op=raw["op"],
        person=raw["person"],
        target=raw["target"],
        archive=raw["archive"],
        paths=tuple(paths),
        outcome=raw["outcome"],
        details=raw["details"],
        prev=prev,
        hash=hashlib.sha256(line).hexdigest(),
    )


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[Iterator[tuple[bytes, bool]]]:
    """The lines of ``path`` under a shared lock: (bytes without newline, ended by one).

    A missing file has no lines.
    """
    try:
        file = open(path, "rb")  # noqa: SIM115 -- closed below, after the lock's use
    except FileNotFoundError:
        yield iter(())
        return
    with file:
        fcntl.flock(file.fileno(), fcntl.LOCK_SH)
        yield _split(file)


def _split(file: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    for raw in file:
        ended = raw.endswith(b"\n")
        yield (raw[:-1] if ended else raw), ended


def _last_line(fd: int) -> tuple[bytes | None, bool]:
    """The last line of the open file ``fd`` (without newline) and whether it lacks one.

    Reads backwards from the end, never the whole file. None for an empty file.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return None, False
    cut_short = os.pread(fd, 1, size - 1) != b"\n"
    end = size if cut_short else size - 1
    tail = b""
    position, chunk = end, _TAIL_CHUNK
    while position > 0:
        start = max(0, position - chunk)
        data = os.pread(fd, position - start, start)
        newline = data.rfind(b"\n")
        if newline >= 0:
            return data[newline + 1 :] + tail, cut_short
        tail = data + tail
        position, chunk = start, chunk * 2
    return tail, cut_short


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _keep_private(fd: int) -> None:
    """Bring a log that someone opened up back to 0600 (health data: who saw which file)."""
    mode = os.fstat(fd).st_mode
    if mode & 0o077:
        # Only its owner may; a log coffre does not own is still written, not refused.
        with contextlib.suppress(PermissionError):
            os.fchmod(fd, 0o600)


# --- the head file -----------------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    seq: int
    hash: str


def _load_head(path: Path) -> tuple[_Head | None, str | None]:
    """(the head, None), (None, None) when there is no head file, (None, why) when damaged."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as error:
        return None, f"cannot be read: {error.strerror or error}"
    try:
        raw = json.loads(data.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is a ValueError
        return None, "not JSON"
    seq = raw.get("seq") if isinstance(raw, dict) else None
    digest = raw.get("hash") if isinstance(raw, dict) else None
    if (
        not isinstance(seq, int)
        or isinstance(seq, bool)
        or seq < 0
        or not isinstance(digest, str)
        or not _SHA256_HEX.fullmatch(digest)
    ):
        return None, 'not {"seq": N, "hash": "<sha256>"}'
    return _Head(seq, digest), None


def _write_head(path: Path, seq: int, digest: str) -> None:
    """Replace the head file whole, 0600, durably (:func:`write_atomically`); OSError."""
    body = json.dumps({"hash": digest, "seq": seq}, sort_keys=True).encode() + b"\n"
    write_atomically(path, body, mode=0o600)


def _head_mismatch(
    head: _Head | None, last: AuditEntry | None, last_hash: str, where: str
) -> str | None:
    """What is wrong between the head file and the last line (``where``), or None.

    ``last`` is the last line's entry (None if it is not a valid one),
    ``last_hash`` its hash. A head one entry behind is accepted: the box
    stopped between writing the line and the head.
    """
    if head is None:
        if last is not None and last.seq == 1 and last.prev == GENESIS:
            return None  # stopped before the first head was written
        return (
            "the head file is missing: nothing vouches for the last line "
            "(the last line may have been edited, or the last lines removed)"
        )
    if head.hash == last_hash and (last is None or last.seq == head.seq):
        return None
    if last is not None and last.seq == head.seq + 1 and last.prev == head.hash:
        return None
    if last is None:
        return f"{where} does not match the head file (which says seq {head.seq})"
    if head.seq > last.seq:
        gone = head.seq - last.seq
        return (
            f"the last {gone} line{'s were' if gone > 1 else ' was'} removed: the head file "
            f"says the log ends at seq {head.seq}, {where} is seq {last.seq}"
        )
    if head.seq == last.seq:
        return f"{where}, seq {last.seq}, was edited: it does not match the head file"
    return (
        f"the head file says the log ends at seq {head.seq} but {where} "
        f"is seq {last.seq}: lines were added without it, or the head file was replaced"
    )


def _assess_tail(
    last: bytes | None, head: _Head | None, head_problem: str | None
) -> tuple[str | None, int, str]:
    """Before appending: (what damage, if any; the new entry's seq; its prev).

    ``last`` is the log's last line (None when empty), ``head``/``head_problem``
    what :func:`_load_head` gave. The seq goes on from the highest known (head
    or last line), so entries never reuse a seq that may have been seen.
    """
    if last is None:
        if head_problem is not None:
            return f"the log is empty and its head file is damaged ({head_problem})", 1, GENESIS
        if head is None or head.seq == 0:
            return None, 1, GENESIS
        # Chain to what the head remembers: the loss stays visible in the new log.
        return (
            f"the log was empty but its head file says {head.seq} entries were written",
            head.seq + 1,
            head.hash,
        )
    digest = hashlib.sha256(last).hexdigest()
    try:
        entry: AuditEntry | None = _parse(last)
    except _BadLine as bad:
        entry = None
        damage: str | None = f"the last line is not a valid entry ({bad})"
    else:
        damage = None
    seq = max(head.seq if head else 0, entry.seq if entry else 0) + 1
    if damage is None:
        if head_problem is not None:
            damage = f"the head file is damaged ({head_problem})"
        else:
            damage = _head_mismatch(head, entry, digest, "the last line")
    return damage, seq, digest
