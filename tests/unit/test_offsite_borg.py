"""coffre.targets.offsite.repository: borg over SSH, upload limits, preflight gate, retention."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coffre.borg.records import Progress
from coffre.core.config_types import Config, OffsiteTarget, PathsConfig, UploadWindow
from coffre.core.errors import HostKeyMismatch, OffsiteNotEnrolled
from coffre.core.model import Archive
from coffre.core.reports import StatusReport
from coffre.core.sshkeys import PublicKey, parse_public_key
from coffre.daemon.executor import Executor
from coffre.jobs.queue import Job, JobRequest, JobResult
from coffre.jobs.services import Services
from coffre.storage.state import State
from coffre.targets.offsite import repository as offsite
from tests.fakes import REPO_ID, Clock, FakeBorg, Made, config

PARIS = ZoneInfo("Europe/Paris")
KEY = parse_public_key(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGDZVecCWCspFaV+Zd4qzvRnRK6uNLFeZxPIf+JmGKTK"
)
OFFICE = UploadWindow(frozenset(range(7)), 8 * 60, 19 * 60, 2000)


def _config(tmp_path: Path, windows: tuple[UploadWindow, ...] = ()) -> Config:
    hds1 = OffsiteTarget(
        name="hds1",
        user="u",
        host="hds1.example.fr",
        port=2222,
        path="/srv/r",
        upload_windows=windows,
    )
    return config(
        tmp_path, hds1, paths=PathsConfig(state=tmp_path / "state", cache=tmp_path / "cache")
    )


def _borg(*, block: bool = False) -> FakeBorg:
    """borg over SSH: ``block`` makes the first create wait until cancelled."""
    made = Made(1000, 900, 700, 3, "2026-03-02T00:29:00.000000", Progress(500, 450, 400, 2, False))
    return FakeBorg(made=made, freed="-1.00 GB", block_create=block)


def _services(tmp_path: Path, runner: FakeBorg, clock: Clock, **kw: Any) -> Services:
    state = State.open(tmp_path / "state.db", logger=logging.getLogger("t"), now=clock.upcoming)
    return Services(_config(tmp_path, **kw), state, runner, clock, logging.getLogger("t"))


def _target(services: Services) -> OffsiteTarget:
    target = services.config.targets[0]
    assert isinstance(target, OffsiteTarget)
    return target


def _enroll(services: Services) -> None:
    target, paths = _target(services), services.config.paths
    offsite.key_file(target, paths).parent.mkdir(parents=True)
    offsite.key_file(target, paths).write_text("key")
    offsite.pin_host_key(target, paths, KEY, datetime(2026, 3, 1, tzinfo=UTC))


def test_borg_goes_through_ssh_with_the_pinned_keys_only(tmp_path: Path) -> None:
    runner = _borg()
    services = _services(tmp_path, runner, Clock(datetime(2026, 3, 2, 12, tzinfo=PARIS)))
    borg = offsite.OffsiteBorg(runner, _target(services), services)
    asyncio.run(borg.run(("list", "--json", "ssh://x")))
    argv, env = runner.calls[0], runner.envs[0]
    assert argv == ("list", "--json", "ssh://x")
    rsh = env["BORG_RSH"]
    ssh_dir = tmp_path / "state" / "ssh"
    for option in (
        f"-i {ssh_dir / 'hds1_ed25519'}",
        "-F none",
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={ssh_dir / 'known_hosts_hds1'}",
        "GlobalKnownHostsFile=/dev/null",
        "BatchMode=yes",
        "ServerAliveInterval=15",
        "ServerAliveCountMax=4",
        "IdentitiesOnly=yes",
    ):
        assert option in rsh


def test_an_upload_gets_the_limit_of_its_window(tmp_path: Path) -> None:
    runner = _borg()
    clock = Clock(datetime(2026, 3, 2, 12, tzinfo=PARIS))
    services = _services(tmp_path, runner, clock, windows=(OFFICE,))
    borg = offsite.OffsiteBorg(runner, _target(services), services)
    asyncio.run(borg.run(("create", "--json", "ssh://x::a", "/srv/share")))
    assert runner.calls[0][:2] == ("create", "--upload-ratelimit=2000")
    assert offsite.status_of(services.state, "hds1")["bytes_sent"] == 700


def test_an_upload_running_into_a_window_stops_at_a_checkpoint_and_goes_on_limited(
    tmp_path: Path,
) -> None:
    runner = _borg(block=True)
    before = datetime(2026, 3, 2, 7, 59, 59, 500000, tzinfo=PARIS)
    clock = Clock(before, before + timedelta(seconds=2))
    services = _services(tmp_path, runner, clock, windows=(OFFICE,))
    borg = offsite.OffsiteBorg(runner, _target(services), services)
    result = asyncio.run(borg.run(("create", "--json", "ssh://x::a", "/srv/share")))
    assert runner.stopped == 1
    assert [c[1] for c in runner.calls] == ["--json", "--upload-ratelimit=2000"]
    assert result.json()["archive"]["name"] == "a"
    # 400 bytes before the stop, 700 in the run that finished.
    assert offsite.status_of(services.state, "hds1")["bytes_sent"] == 1100


def test_jobs_refuse_a_target_not_enrolled_and_record_the_preflight(tmp_path: Path) -> None:
    runner = _borg()
    services = _services(tmp_path, runner, Clock(datetime(2026, 3, 2, 12, tzinfo=PARIS)))
    seen: list[dict[str, Any]] = []

    def mismatch(**kwargs: Any) -> PublicKey:
        seen.append(kwargs)
        raise HostKeyMismatch("host key mismatch (possible interception): not sending anything")

    repo = offsite.OffsiteRepository(_target(services), services, preflight=mismatch)
    with pytest.raises(OffsiteNotEnrolled, match="not enrolled: no host key is pinned"):
        asyncio.run(repo.check_host())
    _enroll(services)
    with pytest.raises(HostKeyMismatch):
        asyncio.run(repo.check_host())
    assert seen[0]["pinned"] == (KEY,) and seen[0]["port"] == 2222
    known = (tmp_path / "state" / "ssh" / "known_hosts_hds1").read_text()
    assert known == f"[hds1.example.fr]:2222 {KEY.openssh}\n"
    status = offsite.status_of(services.state, "hds1")
    assert status["reachable"] is True and status["preflight_error"] == "host_key_mismatch"
    assert runner.calls == []


def test_retention_on_an_offsite_target_deletes_but_never_compacts(tmp_path: Path) -> None:
    runner = _borg()
    now = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    services = _services(tmp_path, runner, Clock(now))
    _enroll(services)
    services.state.record_repository("hds1", REPO_ID, "ssh://x", now)
    old = [
        Archive(now - timedelta(days=d), f"cabinet-2026-02-{28 - d:02d}T01:30:00", f"{d:02d}" * 32)
        for d in range(1, 6)
    ]
    services.state.replace_archives("hds1", old, now)
    repo = offsite.OffsiteRepository(_target(services), services, preflight=lambda **kw: KEY)
    executor = Executor(services, {"hds1": repo})

    async def go() -> JobResult:
        return await executor(Job(id=1, request=JobRequest("backup", ("hds1",))))

    result = asyncio.run(go())
    assert result["ok"] is True, result
    assert [c[0] for c in runner.calls] == ["create", "delete"]
    assert all("BORG_RSH" in env for env in runner.envs)


def test_status_gives_the_hosts_last_check_in_the_boxs_timezone(tmp_path: Path) -> None:
    from coffre.jobs.queue import JobQueue
    from coffre.observe import status

    checked = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)
    clock = Clock(checked)
    services = _services(tmp_path, _borg(), clock)
    offsite.record_preflight(services, "hds1", checked, None)

    async def build() -> StatusReport:
        async def idle(job: Job) -> JobResult:
            return {"event": "result", "ok": True}

        return status.build(services.config, services.state, JobQueue(idle), checked, None)

    report = asyncio.run(build())
    # 00:30 UTC is 01:30 in Paris: the time support reads beside the archive names.
    assert report["targets"]["hds1"]["offsite"]["checked_at"] == "2026-11-29T01:30:00+01:00"


def test_each_kind_of_repository_tells_the_jobs_what_differs(tmp_path: Path) -> None:
    from coffre.core.config_types import LocalTarget
    from coffre.targets.local import LocalRepository
    from coffre.targets.usb.repository import UsbRepository

    services = _services(tmp_path, _borg(), Clock(datetime(2026, 3, 2, tzinfo=UTC)))
    hds = offsite.OffsiteRepository(_target(services), services, preflight=lambda **kw: KEY)
    local = LocalRepository(LocalTarget(name="local", path=tmp_path / "repo"))
    disk = UsbRepository("disque-a", services.state.disk, tmp_path / "mnt")

    assert (hds.compacts, local.compacts, disk.compacts) == (False, True, True)
    assert (hds.as_disk(), local.as_disk(), disk.as_disk()) == (None, None, disk)
    assert hds.job_services(services) is hds.services and hds.services.borg is not services.borg
    assert local.job_services(services) is services and disk.job_services(services) is services
    with pytest.raises(OffsiteNotEnrolled):
        hds.require_ready()  # nothing pinned yet
    local.require_ready()
    disk.require_ready()
