"""Which kind each Previous Version is (``office`` or ``backup``), kept in state's meta.

A version state does not know (state lost, a name made by hand) counts as
an office one: the cheaper kind to let go. Used on the event loop's thread
only (state's sqlite connection is the loop's).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from coffre.consistency.version_plan import Kind, Version
from coffre.storage.state import State

__all__ = ["KINDS_KEY", "VersionKinds"]

KINDS_KEY = "snapshots.kinds"


class VersionKinds:
    """The kinds of the versions, in ``meta`` (state)."""

    def __init__(self, meta: State) -> None:
        self._meta = meta

    def of(self, found: Iterable[tuple[str, datetime]]) -> tuple[Version, ...]:
        """The versions ``found`` ((name, when)) with their kinds."""
        kinds = self._read()
        return tuple(
            Version(name, when, "backup" if kinds.get(name) == "backup" else "office")
            for name, when in found
        )

    def record(self, name: str, kind: Kind) -> None:
        """``name`` is of ``kind`` (a ``backup`` stays one). Raises StateError."""
        kinds = dict(self._read())
        if kinds.get(name) == "backup":
            return
        kinds[name] = kind
        self._write(kinds)

    def forget(self, names: Iterable[str]) -> None:
        """``names`` are gone. Raises StateError."""
        kinds = dict(self._read())
        gone = [n for n in names if kinds.pop(n, None) is not None]
        if gone:
            self._write(kinds)

    def _read(self) -> Mapping[str, str]:
        raw = self._meta.get_meta(KINDS_KEY)
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def _write(self, kinds: Mapping[str, str]) -> None:
        self._meta.set_meta(KINDS_KEY, json.dumps(kinds, sort_keys=True))
