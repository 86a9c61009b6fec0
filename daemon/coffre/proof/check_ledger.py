"""What each scheduled check of each target did, kept in state's meta as JSON.

One key per target and kind, ``check.<kind>.<target>``, holding:

- ``last``: the last attempt (:class:`CheckRecord`), whatever its outcome;
- ``success``: the end of the last *complete pass* that found nothing wrong.
  For ``repository`` and ``data`` a pass may take several runs (a rolling
  ``--max-duration`` check, a data check archive by archive within a time
  budget): ``success`` moves only when a run reaches the pass's end, so it
  means "every segment (every archive's chunks) was read and found sound
  between ``pass_started`` of that pass and ``success``". For ``archives``
  every run is a complete pass;
- ``damage``: the last attempt that found damage, until a later complete
  pass finds none (a USB disk: "replace it" until then);
- ``pass_started``: when the pass under way began (None: none under way),
  ``pass_damaged`` whether one of its runs found damage (then its end is no
  success);
- ``verified``: the archives the data pass under way has verified.

A value that cannot be read (written by another version, or damaged) reads
as nothing recorded: the next complete pass writes it anew.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, get_args

CheckKind = Literal["repository", "archives", "data"]

#: Every kind, in the order status and metrics list them.
CHECK_KINDS: tuple[CheckKind, ...] = get_args(CheckKind)

#: The kinds coffre runs on each kind of target. An offsite repository's segments
#: are read by its host (packaging/hds/: ``borg check --repository-only`` before
#: each compaction), and a data check from the box would download all of it: the box
#: checks its archives only. A USB disk: the rolling check and the data check at
#: each plug (an archives check adds nothing the data check does not read).
KINDS_BY_TARGET: dict[str, tuple[CheckKind, ...]] = {
    "local": ("repository", "archives", "data"),
    "offsite": ("archives",),
    "usb": ("repository", "data"),
}


def kinds_for(target_kind: str) -> tuple[CheckKind, ...]:
    """The check kinds coffre runs on a target of ``target_kind`` (none for an unknown kind)."""
    return KINDS_BY_TARGET.get(target_kind, ())


class MetaStore(Protocol):
    """What the ledger needs of state: its meta key/value table."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class CheckRecord:
    """One check run: when it ended (``at``, aware), whether it found nothing wrong (``ok``),
    whether it ended its pass (``complete``), what a person must read when not ok
    (``error``), the archive borg named (``archive``), how long it took (``seconds``).

    ``damage``: borg read the repository and found it damaged (a CRC mismatch, a
    chunk that does not authenticate, an archive that refers to a missing
    chunk), as opposed to a check that could not run (a lock, a host that
    does not answer): ``ok`` is False for both.
    """

    at: datetime
    ok: bool
    complete: bool
    error: str | None
    archive: str | None
    seconds: float
    damage: bool = False

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, raw: object) -> CheckRecord | None:
        """The record ``raw`` holds, or None when it is not one."""
        if not isinstance(raw, dict):
            return None
        try:
            at = datetime.fromisoformat(raw["at"])
            record = cls(
                at=at,
                ok=bool(raw["ok"]),
                complete=bool(raw["complete"]),
                error=_text(raw.get("error")),
                archive=_text(raw.get("archive")),
                seconds=float(raw["seconds"]),
                damage=bool(raw.get("damage", False)),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return record if at.tzinfo is not None else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def ledger_key(target: str, kind: CheckKind) -> str:
    """The meta key of ``target``'s checks of ``kind``."""
    return f"check.{kind}.{target}"


class CheckLedger:
    """The checks' records of every target, over ``state``'s meta (see the module doc)."""

    def __init__(self, state: MetaStore) -> None:
        self._state = state

    def _read(self, target: str, kind: CheckKind) -> dict[str, Any]:
        raw = self._state.get_meta(ledger_key(target, kind))
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _write(self, target: str, kind: CheckKind, body: dict[str, Any]) -> None:
        self._state.set_meta(ledger_key(target, kind), json.dumps(body, sort_keys=True))

    def last_attempt(self, target: str, kind: CheckKind) -> CheckRecord | None:
        """The last check of ``kind`` on ``target``, whatever its outcome (None: never)."""
        return CheckRecord.from_json(self._read(target, kind).get("last"))

    def last_success(self, target: str, kind: CheckKind) -> datetime | None:
        """The end of the last complete pass of ``kind`` on ``target`` that found nothing
        wrong (None: never)."""
        return _time(self._read(target, kind).get("success"))

    def damage(self, target: str, kind: CheckKind) -> CheckRecord | None:
        """The last check that found damage, until a complete pass found none since."""
        return CheckRecord.from_json(self._read(target, kind).get("damage"))

    def pass_started(self, target: str, kind: CheckKind) -> datetime | None:
        """When the pass under way began (None: the last run ended its pass, or none ran)."""
        return _time(self._read(target, kind).get("pass_started"))

    def verified(self, target: str) -> frozenset[str]:
        """The archives the data pass under way on ``target`` has verified."""
        names = self._read(target, "data").get("verified")
        if not isinstance(names, list):
            return frozenset()
        return frozenset(n for n in names if isinstance(n, str))

    def add_verified(self, target: str, archive: str, at: datetime) -> None:
        """Remember that the data pass under way verified ``archive`` (it began ``at`` if
        none was under way)."""
        body = self._read(target, "data")
        body["verified"] = sorted(self.verified(target) | {archive})
        if _time(body.get("pass_started")) is None:
            body["pass_started"] = at.isoformat()
        self._write(target, "data", body)

    def record(self, target: str, kind: CheckKind, record: CheckRecord) -> None:
        """Record ``record`` as the last check of ``kind`` on ``target``.

        A run that ends its pass ends it (its verified archives forgotten);
        when neither it nor an earlier run of the same pass found damage, it
        also moves ``success`` and clears the damage. An incomplete run starts a
        pass when none is under way. Damage found is kept until a clean
        complete pass. Raises StateError when state cannot be written.
        """
        body = self._read(target, kind)
        body["last"] = record.to_json()
        # A slice that found damage taints its whole pass: the pass's last slice
        # may read clean segments only, the damaged one is still there.
        tainted = record.damage or bool(body.get("pass_damaged"))
        if record.complete:
            body.update(pass_started=None, verified=[], pass_damaged=False)
            if record.ok and not tainted:
                body.update(success=record.at.isoformat(), damage=None)
        else:
            body["pass_damaged"] = tainted
            if _time(body.get("pass_started")) is None:
                began = record.at - timedelta(seconds=max(record.seconds, 0.0))
                body["pass_started"] = began.isoformat()
        if record.damage:
            body["damage"] = record.to_json()
        self._write(target, kind, body)
