"""Pure parsers of borg 1.4's JSON outputs (``BorgResult.json()``).

Times: borg prints archive times in its *local* zone, without an offset
(``"2024-03-31T01:30:00.000000"``). BorgEnvironment runs borg with ``TZ=UTC``,
so a time without an offset is UTC here; one with an offset (should a later
borg add it) is converted. Every time returned is timezone-aware, in UTC.

Malformed input raises ValueError naming what is wrong and where.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coffre.borg.records import LogRecord
from coffre.core.model import Archive, Item

_HEX_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class CreateStats:
    """What ``borg create --json`` reports of the archive it made.

    Sizes in bytes: ``original_size`` of the files read, ``compressed_size``
    after compression, ``deduplicated_size`` what this archive added to the
    repository. ``duration`` in seconds.
    """

    archive: Archive
    repository_id: str
    original_size: int
    compressed_size: int
    deduplicated_size: int
    nfiles: int
    duration: float
    #: Compressed size of every chunk the repository holds, or None if borg did not say.
    repository_size: int | None = None


def archives(list_json: Any) -> list[Archive]:
    """The archives of ``borg list --json`` output, in borg's order (oldest first).

    Checkpoint archives are included as borg lists them (``Archive.is_checkpoint``).
    """
    top = _object(list_json, "borg list output")
    entries = top.get("archives")
    if not isinstance(entries, list):
        raise ValueError("borg list output: 'archives' is missing or not a list")
    result = []
    for index, entry in enumerate(entries):
        where = f"borg list output: archives[{index}]"
        item = _object(entry, where)
        time_value = item.get("time", item.get("start"))
        result.append(
            Archive(
                time=parse_time(time_value, f"{where}.time"),
                name=_string(item, "name", where),
                id=_archive_id(item, where),
            )
        )
    return result


def create(create_json: Any) -> CreateStats:
    """The statistics of ``borg create --json`` output."""
    top = _object(create_json, "borg create output")
    archive = _object(top.get("archive"), "borg create output: archive")
    stats = _object(archive.get("stats"), "borg create output: archive.stats")
    where = "borg create output: archive"
    duration = archive.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0:
        raise ValueError(f"{where}.duration is not a number of seconds: {duration!r}")
    return CreateStats(
        archive=Archive(
            time=parse_time(archive.get("start"), f"{where}.start"),
            name=_string(archive, "name", where),
            id=_archive_id(archive, where),
        ),
        repository_id=repository_id(top),
        original_size=_count(stats, "original_size", f"{where}.stats"),
        compressed_size=_count(stats, "compressed_size", f"{where}.stats"),
        deduplicated_size=_count(stats, "deduplicated_size", f"{where}.stats"),
        nfiles=_count(stats, "nfiles", f"{where}.stats"),
        duration=float(duration),
        repository_size=_repository_size(top),
    )


def _repository_size(top: Mapping[str, Any]) -> int | None:
    cache = top.get("cache")
    stats = cache.get("stats") if isinstance(cache, Mapping) else None
    size = stats.get("unique_csize") if isinstance(stats, Mapping) else None
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None


_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
_DELETED = re.compile(r"^Deleted data:\s+(\S+ \S+)\s+(\S+ \S+)\s+(-?[\d.]+) (\w+)\s*$")


def deleted_bytes(logs: Sequence[LogRecord]) -> int | None:
    """Bytes a ``borg delete --stats`` freed in the repository (its "Deleted data" line).

    That is the deduplicated, compressed size of the chunks no archive uses any
    more: what ``borg compact`` can give back. None when no such line was logged.
    """
    for record in logs:
        match = _DELETED.match(record.message)
        if match and match.group(4) in _UNITS:
            return abs(round(float(match.group(3)) * _UNITS[match.group(4)]))
    return None


def contents(json_lines: str) -> list[Item]:
    """The items of ``borg list --json-lines REPO::ARCHIVE`` output, in borg's order.

    Raises ValueError naming the line for a line that is not a JSON object
    or lacks ``path``, ``type``, ``size`` or ``mtime``.
    """
    items = []
    for number, line in enumerate(json_lines.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"borg list line {number}"
        try:
            obj = _object(json.loads(line), where)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} is not JSON: {exc}") from None
        items.append(
            Item(
                path=_string(obj, "path", where),
                kind=_string(obj, "type", where),
                size=_count(obj, "size", where),
                mtime=parse_time(obj.get("mtime"), f"{where}.mtime"),
            )
        )
    return items


def repository_id(info_json: Any) -> str:
    """The repository id (64 hex digits) of ``borg info --json``, ``list`` or ``create`` output."""
    top = _object(info_json, "borg output")
    repository = _object(top.get("repository"), "borg output: repository")
    value = _string(repository, "id", "borg output: repository")
    if not _HEX_ID.fullmatch(value):
        raise ValueError(f"borg output: repository.id is not 64 hex digits: {value!r}")
    return value


def parse_time(value: Any, where: str = "time") -> datetime:
    """A time as borg prints it (ISO 8601, local time of TZ=UTC) -> aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError(f"{where} is not a string: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} is not a JSON object: {type(value).__name__}")
    return value


def _string(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}.{key} is missing or not a non-empty string: {value!r}")
    return value


def _archive_id(obj: Mapping[str, Any], where: str) -> str:
    value = _string(obj, "id", where)
    if not _HEX_ID.fullmatch(value):
        raise ValueError(f"{where}.id is not 64 hex digits: {value!r}")
    return value


def _count(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}.{key} is not a non-negative integer: {value!r}")
    return value
