"""The pure parsers of borg's JSON, on outputs captured from borg 1.4.5 (run with TZ=UTC)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from coffre.borg import parse
from coffre.core.model import Archive

REPO_ID = "fd5d1b98ba6f0e6f06533c387526c80220cb8fe931b0769733607faec0aa6624"
ID_1 = "2353c10e705f4bdcf503edc8963c9246300471a256b13f469d730517b64a8cbe"
ID_2 = "98619dfbe8397a3c19a5424e928de275111a8bffcd1bfeed9097d155f59e49e8"

LIST_OUTPUT = f"""
{{
    "archives": [
        {{
            "archive": "cabinet-1.checkpoint",
            "barchive": "cabinet-1.checkpoint",
            "id": "{ID_2}",
            "name": "cabinet-1.checkpoint",
            "start": "2024-03-31T01:30:00.000000",
            "time": "2024-03-31T01:30:00.000000"
        }},
        {{
            "archive": "cabinet-2",
            "barchive": "cabinet-2",
            "id": "{ID_1}",
            "name": "cabinet-2",
            "start": "2024-10-27T01:30:00.250000",
            "time": "2024-10-27T01:30:00.250000"
        }}
    ],
    "encryption": {{"mode": "repokey-blake2"}},
    "repository": {{
        "id": "{REPO_ID}",
        "last_modified": "2026-11-29T14:56:10.000000",
        "location": "/tmp/exp/a/b/repo"
    }}
}}
"""

CREATE_OUTPUT = f"""
{{
    "archive": {{
        "command_line": ["/usr/bin/borg", "--log-json", "create", "--json", "r::t1", "src"],
        "duration": 0.008384,
        "end": "2024-03-31T01:30:00.008384",
        "id": "{ID_1}",
        "limits": {{"max_archive_size": 2.5796940692642612e-05}},
        "name": "t1",
        "start": "2024-03-31T01:30:00.000000",
        "stats": {{
            "compressed_size": 100089,
            "deduplicated_size": 100089,
            "nfiles": 2,
            "original_size": 100003
        }}
    }},
    "cache": {{"path": "/cache/borg/x", "stats": {{"total_chunks": 4}}}},
    "encryption": {{"mode": "repokey-blake2"}},
    "repository": {{
        "id": "{REPO_ID}",
        "last_modified": "2026-11-29T15:56:10.000000",
        "location": "/tmp/exp/a/b/repo"
    }}
}}
"""

INFO_OUTPUT = f"""
{{
    "cache": {{"path": "/cache/borg/x", "stats": {{"total_chunks": 4}}}},
    "encryption": {{"mode": "repokey-blake2"}},
    "repository": {{
        "id": "{REPO_ID}",
        "last_modified": "2026-11-29T14:56:10.000000",
        "location": "/tmp/exp/a/b/repo"
    }},
    "security_dir": "/var/lib/coffre/borg/security/{REPO_ID}"
}}
"""


def test_archives() -> None:
    result = parse.archives(json.loads(LIST_OUTPUT))
    assert result == [
        Archive(datetime(2024, 3, 31, 1, 30, tzinfo=UTC), "cabinet-1.checkpoint", ID_2),
        Archive(datetime(2024, 10, 27, 1, 30, 0, 250000, tzinfo=UTC), "cabinet-2", ID_1),
    ]
    assert result[0].is_checkpoint
    assert all(a.time.tzinfo is UTC for a in result)


def test_archives_empty_repository() -> None:
    assert parse.archives({"archives": [], "repository": {"id": REPO_ID}}) == []


def test_archives_falls_back_to_start() -> None:
    data: Any = json.loads(LIST_OUTPUT)
    del data["archives"][0]["time"]
    assert parse.archives(data)[0].time == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)


def test_time_with_offset_is_converted() -> None:
    got = parse.parse_time("2024-03-31T03:30:00+02:00")
    assert got == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    assert got.utcoffset() == timedelta(0)
    assert parse.parse_time("2024-03-31T01:30:00") == datetime(
        2024, 3, 31, 3, 30, tzinfo=timezone(timedelta(hours=2))
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("archives"), "archives"),
        (lambda d: d.__setitem__("archives", {}), "archives"),
        (lambda d: d["archives"].append("x"), r"archives\[2\]"),
        (lambda d: d["archives"][0].pop("name"), "name"),
        (lambda d: d["archives"][0].__setitem__("id", "xyz"), "hex"),
        (lambda d: d["archives"][1].__setitem__("time", "yesterday"), r"archives\[1\]\.time"),
        (lambda d: d["archives"][1].__setitem__("time", 1711848600), "time"),
    ],
)
def test_archives_malformed(mutate: Any, message: str) -> None:
    data = json.loads(LIST_OUTPUT)
    mutate(data)
    with pytest.raises(ValueError, match=message):
        parse.archives(data)


@pytest.mark.parametrize("value", [None, [], "text", 3])
def test_archives_not_an_object(value: Any) -> None:
    with pytest.raises(ValueError, match="JSON object"):
        parse.archives(value)


def test_create() -> None:
    stats = parse.create(json.loads(CREATE_OUTPUT))
    assert stats == parse.CreateStats(
        archive=Archive(datetime(2024, 3, 31, 1, 30, tzinfo=UTC), "t1", ID_1),
        repository_id=REPO_ID,
        original_size=100003,
        compressed_size=100089,
        deduplicated_size=100089,
        nfiles=2,
        duration=0.008384,
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("archive"), "archive"),
        (lambda d: d["archive"].pop("stats"), "stats"),
        (lambda d: d["archive"]["stats"].__setitem__("nfiles", -1), "nfiles"),
        (lambda d: d["archive"]["stats"].__setitem__("original_size", 1.5), "original_size"),
        (lambda d: d["archive"]["stats"].__setitem__("nfiles", True), "nfiles"),
        (lambda d: d["archive"].__setitem__("duration", "1s"), "duration"),
        (lambda d: d["archive"].pop("start"), "start"),
        (lambda d: d.pop("repository"), "repository"),
    ],
)
def test_create_malformed(mutate: Any, message: str) -> None:
    data = json.loads(CREATE_OUTPUT)
    mutate(data)
    with pytest.raises(ValueError, match=message):
        parse.create(data)


def test_repository_id() -> None:
    assert parse.repository_id(json.loads(INFO_OUTPUT)) == REPO_ID
    assert parse.repository_id(json.loads(LIST_OUTPUT)) == REPO_ID


@pytest.mark.parametrize(
    "data",
    [{}, {"repository": []}, {"repository": {}}, {"repository": {"id": "abc"}}, []],
)
def test_repository_id_malformed(data: Any) -> None:
    with pytest.raises(ValueError, match="borg output"):
        parse.repository_id(data)
