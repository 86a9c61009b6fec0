"""What root can do to the audit log that ``coffre audit verify`` cannot see: the tests'
attacker, who rewrites lines, chains every later line again and writes a matching head."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coffre.storage.audit import GENESIS, head_path


def rewrite_consistently(
    log: Path, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
) -> None:
    """Replace the entries of ``log`` by ``change(entries)`` (JSON objects, oldest first),
    renumbered from 1, chained again from the first, and a head file to match, written as
    coffre writes them (canonical JSON): what root without a key can forge."""
    entries = [json.loads(line) for line in log.read_bytes().splitlines()]
    prev, lines, seq = GENESIS, [], 0
    for seq, entry in enumerate(change(entries), start=1):
        entry["seq"], entry["prev"] = seq, prev
        line = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        lines.append(line.encode())
        prev = hashlib.sha256(lines[-1]).hexdigest()
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    head_path(log).write_text(json.dumps({"hash": prev, "seq": seq}, sort_keys=True) + "\n")


def edit_entry(index: int, **fields: Any) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """A ``change`` that sets ``fields`` on the entry at ``index`` (0-based)."""

    def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        entries[index].update(fields)
        return entries

    return change


def drop_entry(index: int) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """A ``change`` that removes the entry at ``index`` (0-based); later ones are renumbered."""

    def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return entries[:index] + entries[index + 1 :]

    return change
