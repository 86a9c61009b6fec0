"""Which connections the metrics endpoint keeps: pure bookkeeping, no socket, no clock.

The endpoint asks :meth:`Slots.admit` for each new connection and is told
whether to serve it and which older connections to drop to make room. The
rules, so that a flood of half-written requests cannot blind the scraper:

- a peer (an IP address) holding ``per_peer`` connections or more has its
  own oldest connection still waiting for its request head dropped first:
  one remote peer cannot push other peers' connections out;
- past ``room`` connections in all, the oldest connection still waiting
  for its head, whoever its peer, is dropped for the newcomer: the
  newcomer is not refused, since the scraper (Prometheus on 127.0.0.1)
  shares its address with any local user, so no per-address rule can tell
  them apart, and it sends its head at once, so it is never the oldest
  waiting for long;
- a connection younger than ``fresh`` seconds is never dropped: its head
  may be in the socket already, not yet read (the loop accepts connections
  in batches before reading any); connections being answered are never
  dropped either (the endpoint bounds their time);
- only when ``ceiling`` connections are open and none may be dropped is
  the newcomer refused.

The per-peer rule never refuses, for the same reason as the room rule: it
would refuse the local scraper whenever a local user holds 127.0.0.1's
share of slots.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Limits:
    """The numbers of :class:`Slots`: connections by peer, in all, and the grace of the young.

    ``per_peer`` and ``room`` are where dropping starts; ``ceiling`` (at least
    ``room``) is where a newcomer is refused; ``fresh`` is in seconds.
    """

    per_peer: int = 4
    room: int = 64
    ceiling: int = 128
    fresh: float = 0.25


@dataclass(frozen=True)
class Admission(Generic[K]):
    """What to do with a newcomer: serve it or not, and the connections to drop first."""

    admitted: bool
    dropped: tuple[K, ...] = ()


@dataclass
class _Slot:
    peer: str
    opened: float
    answering: bool = False


class Slots(Generic[K]):
    """The open connections of the endpoint, by key, in the order they came.

    Keys are the endpoint's (any hashable); ``now`` values are seconds of
    one monotonic clock, given by the caller.
    """

    def __init__(self, limits: Limits) -> None:
        if limits.ceiling < limits.room or min(limits.per_peer, limits.room) < 1:
            raise ValueError(f"inconsistent limits: {limits}")
        self.limits = limits
        self._slots: dict[K, _Slot] = {}  # insertion order: oldest first

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        return key in self._slots

    def admit(self, key: K, peer: str, now: float) -> Admission[K]:
        """Decide on the newcomer ``key`` from ``peer`` at ``now``.

        Returns the admission; the dropped keys are already forgotten here
        (the caller closes their connections), and ``key`` is recorded when
        admitted. Raises ValueError when ``key`` is already open.
        """
        if key in self._slots:
            raise ValueError(f"connection {key!r} is already open")
        dropped: list[K] = []
        if self._count(peer) >= self.limits.per_peer:
            self._drop_oldest_waiting(now, dropped, peer=peer)
        if len(self._slots) >= self.limits.room:
            self._drop_oldest_waiting(now, dropped, peer=None)
        if len(self._slots) >= self.limits.ceiling:
            return Admission(False, tuple(dropped))
        self._slots[key] = _Slot(peer, now)
        return Admission(True, tuple(dropped))

    def answering(self, key: K) -> None:
        """``key`` sent its whole head: it is being answered and is no longer dropped."""
        slot = self._slots.get(key)
        if slot is not None:
            slot.answering = True

    def leave(self, key: K) -> None:
        """``key`` is closed (a key already dropped or unknown is ignored)."""
        self._slots.pop(key, None)

    def _count(self, peer: str) -> int:
        return sum(1 for slot in self._slots.values() if slot.peer == peer)

    def _drop_oldest_waiting(self, now: float, dropped: list[K], *, peer: str | None) -> None:
        """Forget the oldest connection (of ``peer``, or any when None) waiting for its head
        for ``fresh`` seconds or more, and add it to ``dropped``; nothing when there is none."""
        for key, slot in self._slots.items():
            if slot.answering or (peer is not None and slot.peer != peer):
                continue
            if now - slot.opened < self.limits.fresh:
                return  # every later one is younger still
            del self._slots[key]
            dropped.append(key)
            return
