"""coffre.core.messages: each request line parses to its type, and back to the same keys."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from coffre.core.errors import UsageError
from coffre.core.messages import (
    ArchivesRequest,
    BackupRequest,
    BrowseRequest,
    DiskEnrollRequest,
    DiskForgetRequest,
    FindRequest,
    InitRequest,
    KeyExportRequest,
    OffsiteEnrollRequest,
    Person,
    PingRequest,
    PruneRequest,
    Request,
    RestoreRequest,
    StatusRequest,
    parse_day,
    parse_request,
)

PERSON = Person(user="lea", login="root", uid=0, ssh="192.0.2.7 1 192.0.2.1 22")


@pytest.mark.parametrize(
    "request_",
    [
        PingRequest(),
        StatusRequest(),
        ArchivesRequest(targets=("local",)),
        BackupRequest(targets=("local", "hds1"), wait=False),
        PruneRequest(dry_run=True),
        InitRequest(targets=("local",), adopt=True),
        DiskForgetRequest(name="disque-a"),
        DiskEnrollRequest(name="disque-a", device="/dev/sdb1", format=True, yes=True),
        OffsiteEnrollRequest(name="hds1", accept="SHA256:abc"),
        RestoreRequest(paths=("Patients/DUPONT",), date="2026-11-27", to="/srv/x", person=PERSON),
        FindRequest(pattern="dupont", since="2026-11-01", person=PERSON),
        BrowseRequest(target="local", archive="cabinet-2026-11-29T01:30:00"),
        KeyExportRequest(targets=("local",), person=PERSON),
    ],
)
def test_every_request_comes_back_from_its_json(request_: Request) -> None:
    assert parse_request(request_.to_json()) == request_


def test_the_wire_keys_are_those_the_cli_always_sent() -> None:
    assert RestoreRequest(paths=("a",), overwrite=True, progress=True).to_json() == {
        "op": "restore",
        "paths": ["a"],
        "target": None,
        "archive": None,
        "date": None,
        "to": None,
        "overwrite": True,
        "progress": True,
    }
    assert FindRequest(pattern="x").to_json() == {
        "op": "find",
        "pattern": "x",
        "target": None,
        "since": None,
    }
    assert DiskEnrollRequest(name="d", device="/dev/sdb1").to_json() == {
        "op": "disk_enroll",
        "device": "/dev/sdb1",
        "name": "d",
        "format": False,
        "yes": False,
        "adopt": False,
    }


def test_what_older_clients_send_still_parses() -> None:
    # Targets as one name or null, flags absent, empty strings for "not given", extra keys.
    assert parse_request({"op": "archives", "targets": "local"}) == ArchivesRequest(("local",))
    assert parse_request({"op": "backup", "targets": None}) == BackupRequest((), wait=True)
    assert parse_request({"op": "ping", "pad": "xxx"}) == PingRequest()
    assert parse_request({"op": "restore", "paths": ["a"], "archive": ""}) == RestoreRequest(
        paths=("a",)
    )


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ({"op": "disk_forget"}, "bad request disk_forget: name is missing"),
        ({"op": "disk_enroll", "name": "d"}, "bad request disk_enroll: device is missing"),
        ({"op": "offsite_enroll", "name": ""}, "bad request offsite_enroll: name is missing"),
        (
            {"op": "backup", "wait": "yes"},
            "bad request backup: wait must be true or false, not str",
        ),
        (
            {"op": "restore", "paths": ["a"], "overwrite": 1},
            "bad request restore: overwrite must be true or false, not int",
        ),
        (
            {"op": "find", "pattern": "x", "person": "root"},
            "bad request find: person must be an object, not str",
        ),
        ({"op": "frobnicate"}, "unknown request 'frobnicate'"),
        ({"op": 3}, "bad request: expected one JSON object with an op per line"),
        ({"op": "restore", "paths": ["tab\tname"]}, "path 'tab\\tname' contains a tab"),
        ({"op": "restore", "paths": [1]}, "bad request: paths must be a list of strings"),
    ],
)
def test_a_malformed_request_is_a_usage_error_naming_its_field(
    line: dict[str, Any], said: str
) -> None:
    with pytest.raises(UsageError) as raised:
        parse_request(line)
    assert raised.value.message == said
    assert raised.value.exit_code == 2


def test_the_person_keeps_its_claims_bounded_and_the_kernel_has_the_last_word() -> None:
    claimed = Person.from_json({"user": "x" * 500, "login": 3, "uid": True, "ssh": None})
    assert claimed == Person(user="x" * Person.MAX_FIELD)
    assert PERSON.audited(uid=1000, pid=42) == {
        "user": "lea",
        "login": "root",
        "ssh": "192.0.2.7 1 192.0.2.1 22",
        "uid": 1000,
        "pid": 42,
    }
    assert Person().audited(uid=0, pid=1) == {"uid": 0, "pid": 1}


def test_a_day_is_written_yyyy_mm_dd() -> None:
    assert parse_day("2026-11-27") == date(2026, 11, 27)
    assert parse_day(None) is None and parse_day("") is None
    with pytest.raises(UsageError, match="'27/11/2026' is not a date"):
        parse_day("27/11/2026")


def test_a_status_from_a_daemon_of_another_version_is_a_clear_error() -> None:
    from coffre.core.errors import DaemonUnavailable
    from coffre.core.reports import disks_from_json, status_from_json

    with pytest.raises(DaemonUnavailable, match=r"lacks status \(disks, problems\)"):
        status_from_json(
            {
                "event": "result",
                "ok": True,
                "status": {
                    key: None
                    for key in (
                        "key_escrow",
                        "now",
                        "timezone",
                        "next_nightly",
                        "running",
                        "queued",
                        "uploading",
                        "reading",
                        "targets",
                    )
                },
            }
        )
    with pytest.raises(DaemonUnavailable, match="lacks disks"):
        disks_from_json({"event": "result", "ok": True})


def test_a_client_reads_the_events_before_the_final_line_typed_and_skips_the_unknown() -> None:
    from coffre.core.job_events import stream_event

    progress = {"job": 1, "event": "progress", "target": "local", "nfiles": 3}
    assert stream_event(progress) == progress
    assert stream_event({"event": "result", "ok": True}) is None
    assert stream_event({"event": "something_newer"}) is None


def test_a_job_result_is_read_with_its_outcomes_checked() -> None:
    from coffre.core.errors import DaemonUnavailable
    from coffre.core.job_events import result_from_json

    line = {"event": "result", "ok": True, "targets": {"local": {"ok": True, "archive": "a"}}}
    assert result_from_json(line) == line
    with pytest.raises(DaemonUnavailable, match="lacks a result"):
        result_from_json({"event": "progress", "target": "local"})
    with pytest.raises(DaemonUnavailable, match="lacks targets"):
        result_from_json({"event": "result", "ok": False, "targets": {"local": {"okay": 1}}})
