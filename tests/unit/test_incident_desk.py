"""``coffre incident show|clear`` in the daemon: audited, refused when it makes no sense."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coffre.core.errors import UsageError
from coffre.core.messages import Client, IncidentClearRequest, Person
from coffre.core.model import Archive
from coffre.guard import freeze
from coffre.guard.incidents import CLOCK, RANSOMWARE, IncidentStore
from coffre.jobs.change_watch import CANARIES_KEY, CLEARED_KEY
from coffre.jobs.services import Services
from coffre.storage.audit import AuditLog, read_entries
from coffre.storage.state import State
from coffre.support.incident_desk import IncidentDesk
from tests.fakes import LOCAL, Clock, FakeBorg, config

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
LOGGER = logging.getLogger("test-incident-desk")
SUPPORT = Person(user="amelie", login="support", uid=1000, ssh="10.0.0.9 5123 10.0.0.2 22")


def _desk(tmp_path: Path) -> tuple[IncidentDesk, Services, Path]:
    state = State.open(tmp_path / "state.db", logger=LOGGER, now=NOW)
    services = Services(config(tmp_path, LOCAL), state, FakeBorg(), Clock(NOW), LOGGER)
    log = tmp_path / "audit.log"
    return IncidentDesk(services, AuditLog(log, LOGGER)), services, log


def _client() -> Client:
    return Client(uid=0, pid=4242, gone=asyncio.Event(), pinged=asyncio.Event())


def _ask(call: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(event: dict[str, Any]) -> None:
        sent.append(event)

    asyncio.run(call(send))
    return sent


def test_clearing_ransomware_is_audited_with_who_and_why_and_resets_the_baseline(
    tmp_path: Path,
) -> None:
    desk, services, log = _desk(tmp_path)
    IncidentStore(services.state).sight(
        RANSOMWARE, at=NOW - timedelta(days=2), target="local", reasons=("canary",), figures={}
    )
    why = "share restored from the archive of Dec 3, checked with the practice"
    sent = _ask(lambda send: desk.clear(IncidentClearRequest(why, person=SUPPORT), send, _client()))
    assert sent[-1]["ok"] and sent[-1]["cleared"] == RANSOMWARE
    assert IncidentStore(services.state).open_incidents() == ()
    asked, done = read_entries(log)
    assert (asked.op, asked.outcome, done.outcome) == ("incident_clear", "asked", "ok")
    assert asked.person["user"] == "amelie" and asked.person["pid"] == 4242
    assert asked.details is not None
    assert asked.details["why"] == why and asked.details["kind"] == RANSOMWARE
    assert services.state.get_time(CLEARED_KEY) == NOW
    # The canaries are planted again (here: for the first time) in the share.
    assert services.state.get_meta(CANARIES_KEY)
    assert any(
        p.name.startswith("!COFFRE-TEMOIN") for p in services.config.source.paths[0].iterdir()
    )


def test_clearing_the_clock_acknowledges_the_archives_dated_in_the_future(tmp_path: Path) -> None:
    desk, services, _ = _desk(tmp_path)
    ahead = Archive(NOW + timedelta(days=364), "cabinet-2027-12-05T01:30:00")
    services.state.replace_archives(LOCAL.name, [ahead, Archive(NOW, "cabinet-now")], NOW)
    IncidentStore(services.state).sight(
        CLOCK, at=NOW, target="local", reasons=("future",), figures={"future_archives": 1}
    )
    sent = _ask(
        lambda send: desk.clear(
            IncidentClearRequest("NTP fixed", kind="clock", person=SUPPORT), send, _client()
        )
    )
    assert sent[-1]["done"] == "1 archive(s) dated in the future acknowledged"
    assert freeze.acknowledged(services.state) == {ahead.name}
    assert services.state.get_time(freeze.LAST_SANE) == NOW


@pytest.mark.parametrize(
    ("open_kinds", "kind", "message"),
    [
        ((), None, "no incident is open"),
        ((RANSOMWARE, CLOCK), None, "both open"),
        ((RANSOMWARE,), "clock", "no clock incident is open"),
        ((RANSOMWARE,), "meteor", "unknown incident kind"),
    ],
)
def test_a_clear_that_names_nothing_open_is_refused_and_not_audited(
    tmp_path: Path, open_kinds: tuple[str, ...], kind: str | None, message: str
) -> None:
    desk, services, log = _desk(tmp_path)
    for open_kind in open_kinds:
        IncidentStore(services.state).sight(
            open_kind, at=NOW, target="local", reasons=("x",), figures={}
        )
    with pytest.raises(UsageError, match=message):
        _ask(lambda send: desk.clear(IncidentClearRequest("why", kind=kind), send, _client()))
    assert not log.exists() or read_entries(log) == []
    assert len(IncidentStore(services.state).open_incidents()) == len(open_kinds)


def test_a_clear_the_audit_log_cannot_record_changes_nothing(tmp_path: Path) -> None:
    desk, services, log = _desk(tmp_path)
    IncidentStore(services.state).sight(
        RANSOMWARE, at=NOW, target="local", reasons=("canary",), figures={}
    )
    log.mkdir()  # the log cannot be opened for writing
    from coffre.storage.audit import AuditUnavailable

    with pytest.raises(AuditUnavailable, match="nothing was done"):
        _ask(lambda send: desk.clear(IncidentClearRequest("why"), send, _client()))
    assert IncidentStore(services.state).get(RANSOMWARE) is not None


def test_a_clear_whose_outcome_line_fails_is_still_said_done_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The request line was written and the incident closed: "nothing was done" would lie."""
    _, services, log = _desk(tmp_path)

    class OutcomeLost(AuditLog):
        def record(self, **entry: Any) -> Any:
            if entry["outcome"] == "ok":
                raise OSError(28, "No space left on device")
            return super().record(**entry)

    desk = IncidentDesk(services, OutcomeLost(log, LOGGER))
    IncidentStore(services.state).sight(
        RANSOMWARE, at=NOW, target="local", reasons=("canary",), figures={}
    )
    with caplog.at_level(logging.ERROR, logger=LOGGER.name):
        sent = _ask(lambda send: desk.clear(IncidentClearRequest("restored"), send, _client()))
    assert sent[-1]["ok"] is True and sent[-1]["cleared"] == RANSOMWARE
    assert IncidentStore(services.state).get(RANSOMWARE) is None
    assert [e.outcome for e in read_entries(log)] == ["asked"]
    assert "the clear itself was done and its request recorded" in caplog.text


def test_show_gives_the_evidence_and_is_audited(tmp_path: Path) -> None:
    desk, services, log = _desk(tmp_path)
    IncidentStore(services.state).sight(
        RANSOMWARE,
        at=NOW,
        target="local",
        reasons=("encrypted_sample",),
        figures={"suspects": 12},
        evidence=("looks encrypted: Patients/DUPONT Jean/lettre.docx.locked",),
    )
    sent = _ask(lambda send: desk.show(send, _client()))
    (incident,) = sent[-1]["incidents"]
    assert incident["evidence"] == ["looks encrypted: Patients/DUPONT Jean/lettre.docx.locked"]
    (entry,) = read_entries(log)
    assert entry.op == "incident_show"


def test_a_clear_while_the_share_cannot_be_read_clears_and_says_the_canaries_wait(
    tmp_path: Path,
) -> None:
    desk, services, log = _desk(tmp_path)
    IncidentStore(services.state).sight(
        RANSOMWARE, at=NOW, target="local", reasons=("canary",), figures={}
    )
    services.config.source.paths[0].rmdir()  # its volume not mounted
    sent = _ask(lambda send: desk.clear(IncidentClearRequest("restored"), send, _client()))
    assert "canaries NOT planted again" in sent[-1]["done"]
    assert IncidentStore(services.state).open_incidents() == ()
    assert [e.outcome for e in read_entries(log)] == ["asked", "ok"]
