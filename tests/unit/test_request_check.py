"""coffre.core.request_check: what a control-socket client sends, refused before any job."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from coffre.core.errors import UsageError
from coffre.core.messages import Client, RestoreRequest
from coffre.core.request_check import check_request
from coffre.jobs.queue import JobRequest
from coffre.support.desk import SupportDesk


def refusal(request: dict[str, Any]) -> UsageError:
    with pytest.raises(UsageError) as raised:
        check_request(request)
    assert raised.value.exit_code == 2 and raised.value.kind == "usage"
    return raised.value


# --- what goes on ---------------------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        {"op": "status"},
        {
            "op": "restore",
            "paths": ["Patients/MARTIN Léa/bilan.odt", "C:\\Partage\\Scans", "/srv/x y/z"],
            "target": None,
            "archive": "cabinet-2026-11-29T01:30:00",
            "date": None,
            "to": "/srv/share/ici",
            "overwrite": False,
            "person": {"user": "lea\tx", "ssh": "192.0.2.7 1 192.0.2.1 22"},
        },
        {"op": "restore", "paths": ["a"], "archive": "", "date": "2026-11-29"},
        {"op": "find", "pattern": "Patients/*/[a-z]*.pdf", "since": "2026-11-01", "target": "usb"},
        {"op": "browse", "target": "local", "archive": None, "date": None},
        {"op": "backup", "targets": ["local", "hds1"], "wait": True},
        {"op": "archives", "targets": "local"},
        {"op": "disk_enroll", "device": "/dev/sdb1", "name": "disque-a", "format": True},
        {"op": "offsite_enroll", "name": "hds1", "accept": "SHA256:abc+/="},
    ],
)
def test_what_a_client_sends_as_typed_goes_on(request_: dict[str, Any]) -> None:
    check_request(request_)  # the person's claims are the audit's business, not checked here


# --- control characters ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("tab\tname.txt", "a tab"),
        ("Patients/DUPONT/ordonnance.pdf\r", "a carriage return (CR)"),
        ("a\nb", "a line feed"),
        ("a\0b", "a NUL"),
        ("a\x1bb", "the control character U+001B"),
        ("a\x7fb", "the control character U+007F"),
        ("a\x85b", "the control character U+0085"),
        ("a\x9fb", "the control character U+009F"),
    ],
)
def test_a_restore_path_with_a_control_character_is_refused_shown_escaped(
    value: str, named: str
) -> None:
    error = refusal({"op": "restore", "paths": ["Patients", value]})
    assert error.message == f"path {value!r} contains {named}"
    assert "\\" in error.message and not any(ch in error.message for ch in "\t\r\n\0\x7f\x85")
    assert error.hint == "a path pasted with a tab or a trailing CR? retype it"


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("pattern", "the pattern"),
        ("to", "--to"),
        ("target", "--target"),
        ("date", "--date"),
        ("since", "--since"),
        ("name", "the name"),
        ("device", "the device"),
        ("accept", "--accept-host-key"),
        ("archive", "--archive"),
    ],
)
def test_every_text_field_with_a_control_character_is_refused_by_its_name(
    key: str, field: str
) -> None:
    error = refusal({"op": "restore", key: "2026-11-29\r"})
    assert error.message == f"{field} '2026-11-29\\r' contains a carriage return (CR)"
    assert error.hint


@pytest.mark.parametrize("targets", ["local\r", ["local", "hds1\t"]])
def test_target_names_in_a_list_or_alone_are_checked(targets: object) -> None:
    assert refusal({"op": "backup", "targets": targets}).message.startswith("--target ")


# --- archive names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("archive", "said"),
    [
        ("{now}", "contains a brace: borg would expand it as a placeholder"),
        ("cabinet-{hostname}", "contains a brace"),
        ("cabinet}", "contains a brace"),
        ("repo::cabinet", "contains '::' or '/'"),
        ("local/cabinet-2026", "contains '::' or '/'"),
        ("-cabinet", "starts with '-': borg would read it as an option"),
    ],
)
def test_an_archive_name_borg_would_misread_is_refused(archive: str, said: str) -> None:
    error = refusal({"op": "browse", "archive": archive})
    assert error.message.startswith(f"--archive {archive!r} {said}")
    assert "coffre archives" in error.hint


# --- malformed requests --------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "said"),
    [
        ({"op": "restore", "paths": "Patients"}, "bad request: paths must be a list of strings"),
        ({"op": "restore", "paths": ["a", 3]}, "bad request: paths must be a list of strings"),
        ({"op": "backup", "targets": {"a": 1}}, "bad request: targets must be a list of strings"),
        ({"op": "find", "pattern": 7}, "bad request: pattern must be a string, not int"),
        ({"op": "browse", "archive": ["{now}"]}, "bad request: archive must be a string, not list"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_bad_request(request_: dict[str, Any], said: str) -> None:
    assert refusal(request_).message == said


# --- where the daemon calls it ---------------------------------------------------------


def test_the_support_desk_refuses_before_recording_or_queueing_anything() -> None:
    recorded: list[dict[str, Any]] = []
    submitted: list[JobRequest] = []

    class Audit:
        path = Path("/var/lib/coffre/audit.log")

        def record(self, **entry: Any) -> None:
            recorded.append(entry)

    def submit(request: JobRequest) -> Any:
        submitted.append(request)
        raise AssertionError("a refused request was queued")

    async def send(message: Mapping[str, object]) -> None:
        raise AssertionError(f"a refused request got an answer of its own: {message}")

    desk = SupportDesk(
        cast(Any, None),  # config, state and clock: never reached
        cast(Any, None),
        cast(Any, None),
        cast(Any, Audit()),
        submit,
        disk_busy=lambda _: False,
    )

    async def ask() -> None:
        client = Client(uid=0, pid=1, gone=asyncio.Event(), pinged=asyncio.Event())
        await desk.handle(RestoreRequest(paths=("tab\tname.txt",)), send, client)

    with pytest.raises(UsageError, match=r"path 'tab\\tname.txt' contains a tab"):
        asyncio.run(ask())
    # Nothing was asked that could be done: no "asked" line looks like an access.
    assert recorded == [] and submitted == []
