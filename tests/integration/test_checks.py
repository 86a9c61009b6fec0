"""The scheduled checks against the real borg 1.4.5: a flipped byte, a rolling pass, the data.

One byte flipped in the middle of an object's data in a segment of the local
repository: the next rolling check reports it (the target, what to do), the
ledger keeps it, the exporter says ``coffre_check_last_attempt_success 0`` and
promtool fires ``CoffreCheckFailed`` on those very series. A rolling pass
goes slice by slice (borg's own clock sped up: see fast_clock_services) and
only its end is a success; a damaged slice taints its pass. A data check
archive by archive names the archive whose chunk was altered.
"""

from __future__ import annotations

import asyncio
import configparser
import json
import logging
import os
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coffre.borg import argv
from coffre.borg.env import BorgEnvironment
from coffre.borg.repository import read_repository_id
from coffre.borg.runner import BorgRunner
from coffre.core.config_types import LocalTarget, PathsConfig
from coffre.jobs.checking import check_at
from coffre.jobs.services import Services
from coffre.observe.facts import Observer
from coffre.observe.metrics import Exporter
from coffre.proof.check_ledger import CheckKind, CheckLedger, CheckRecord
from coffre.storage.state import State
from coffre.targets.checking import check_target
from tests.exposition import parse, value
from tests.fakes import Clock, config
from tests.integration.harness import daemon_running, fill_share, wait_for
from tests.integration.observing import ObservedPractice
from tests.integration.rule_tests import expected_alert
from tests.integration.usb import LoopDisk, ensure_udevd, settle
from tests.parts import binary, libfaketime, needs_root

pytestmark = pytest.mark.borg

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
RULES = Path(__file__).resolve().parents[2] / "packaging" / "prometheus" / "coffre-rules.yml"
LOG = logging.getLogger("coffre.test.checks")
#: A segment entry's header: crc32, size, tag; a PUT's then carries the object's 32-byte id.
HEADER = struct.Struct("<IIB")
PUT = 0
MAGIC = b"BORG_SEG"


class Box:
    """A local target's repository made by the real borg, with the services of its jobs."""

    @staticmethod
    def passphrase() -> bytes:
        return b"correct horse battery staple"

    def __init__(self, root: Path) -> None:
        self.repo = root / "depots" / "local"
        env = BorgEnvironment(binary("borg"), root / "borg-base", root / "borg-cache")
        self.runner = BorgRunner(env, self.passphrase, lock_wait=5, stop_timeout=30.0, logger=LOG)
        practice = config(
            root,
            LocalTarget("local", self.repo),
            paths=PathsConfig(state=root / "state", cache=root / "cache"),
        )
        self.state = State.open(root / "state.db", logger=LOG, now=NOW)
        self.services = Services(practice, self.state, self.runner, Clock(NOW), LOG)
        self.share = root / "share"
        self.run(argv.init(str(self.repo), encryption="repokey-blake2"))
        self.state.record_repository("local", read_repository_id(self.repo), str(self.repo), NOW)

    def run(self, command: tuple[str, ...]) -> None:
        asyncio.run(self.runner.run(command))

    def backup(self, name: str, files: int = 4, size: int = 400_000) -> None:
        """One archive of ``files`` new random files (incompressible: each is its own chunks)."""
        for n in range(files):
            (self.share / f"{name}-{n}.bin").write_bytes(os.urandom(size))
        self.run(
            argv.create(
                str(self.repo),
                name,
                [str(self.share)],
                compression="none",
                checkpoint_interval=1800,
                progress=False,
            )
        )

    def segments(self) -> list[Path]:
        """The segment files, by number."""
        found = [p for p in (self.repo / "data").glob("*/*") if p.name.isdigit()]
        return sorted(found, key=lambda p: int(p.name))


def largest_put(segment: Path) -> tuple[int, int]:
    """(offset, size) of the largest PUT entry of ``segment`` ((0, 0): none), by its headers."""
    data = segment.read_bytes()
    assert data.startswith(MAGIC)
    offset, best = len(MAGIC), (0, 0)
    while offset + HEADER.size <= len(data):
        _crc, size, tag = HEADER.unpack_from(data, offset)
        if tag == PUT and size > best[1]:
            best = (offset, size)
        offset += max(size, HEADER.size)
    return best


def holding_data(segments: list[Path]) -> list[Path]:
    """The segments holding an object of at least 100 kB (a chunk of a file)."""
    return [s for s in segments if largest_put(s)[1] >= 100_000]


def flip_a_data_byte(segment: Path) -> None:
    """Flip one byte in the middle of the data of the segment's largest object (not a header)."""
    offset, size = largest_put(segment)
    assert size, f"no PUT entry in {segment}"
    data_start = offset + HEADER.size + 32
    where = data_start + (offset + size - data_start) // 2
    with open(segment, "r+b") as file:
        file.seek(where)
        byte = file.read(1)
        file.seek(where)
        file.write(bytes([byte[0] ^ 0x01]))


def check(box: Box, kind: CheckKind, budget: float | None) -> CheckRecord:
    return asyncio.run(check_target(box.services, "local", kind, budget=budget))


def alert_fires(tmp_path: Path, scraped: str, labels: dict[str, str]) -> None:
    """promtool evaluates the shipped rules over the exporter's own check series (as the box's
    agent writes them, labelled with the box): CoffreCheckFailed fires for ``labels``."""
    box = {"box": "cabinet-test", "job": "coffre", "instance": "127.0.0.1:9851"}
    inputs = ""
    for (name, pairs), number in parse(scraped).items():
        if name.startswith("coffre_check_"):
            text = ",".join(f'{k}="{v}"' for k, v in sorted({**dict(pairs), **box}.items()))
            inputs += f"      - series: '{name}{{{text}}}'\n        values: \"{number:.0f}x20\"\n"
    expected = expected_alert(RULES, "CoffreCheckFailed", {**box, **labels, "severity": "critical"})
    case = tmp_path / "check-failed.test.yml"
    case.write_text(
        f'rule_files: ["{RULES}"]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n'
        f"    input_series:\n{inputs}    alert_rule_test:\n      - eval_time: 15m\n"
        f"        alertname: CoffreCheckFailed\n        exp_alerts: {expected}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [binary("promtool"), "test", "rules", str(case)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr + case.read_text()


def test_a_flipped_byte_in_a_segment_is_reported_by_the_next_rolling_check(
    tmp_path: Path,
) -> None:
    box = Box(tmp_path)
    box.backup("cabinet-2026-12-05T01:30:00")
    sound = check(box, "repository", 600)
    assert sound.ok and sound.complete, sound

    flip_a_data_byte(holding_data(box.segments())[-1])
    found = check(box, "repository", 600)
    assert not found.ok and found.damage, found
    sentence = found.error or ""
    assert "repository check (segments read, CRC) of local found damage" in sentence
    assert "call support" in sentence and "docs/repair.md" in sentence
    ledger = CheckLedger(box.state)
    assert ledger.damage("local", "repository") == found
    assert ledger.last_success("local", "repository") == sound.at

    exporter = Exporter(
        Observer(box.services.config, box.state, Clock(NOW)), box.services.config, LOG
    )
    scraped = exporter.exposition().decode()
    labels = {"target": "local", "kind": "repository"}
    assert value(parse(scraped), "coffre_check_last_attempt_success", **labels) == 0
    assert value(parse(scraped), "coffre_check_last_success_timestamp_seconds", **labels) == (
        NOW.timestamp()
    )
    assert sentence not in scraped  # borg's words stay in status and the journal
    alert_fires(tmp_path, scraped, labels)


def fast_clock_services(box: Box, root: Path) -> Services:
    """The box's services with a borg whose clocks run 2000 times fast (libfaketime).

    borg ends a ``--max-duration`` slice at the first segment boundary past
    its time, and reading these small segments takes milliseconds: with
    ``--max-duration=1`` seen through this clock, a slice ends after one
    segment or a few, as a 600 s slice ends on a practice's repository.
    """
    wrapper = root / "borg-fast-clock"
    wrapper.write_text(
        f'#!/bin/sh\nexec env LD_PRELOAD={libfaketime()} FAKETIME="+0 x2000" '
        f'{binary("borg")} "$@"\n'
    )
    wrapper.chmod(0o755)
    env = BorgEnvironment(str(wrapper), root / "borg-base", root / "borg-cache")
    runner = BorgRunner(env, box.passphrase, lock_wait=5, stop_timeout=30.0, logger=LOG)
    return replace(box.services, borg=runner)


def rolling_pass(services: Services) -> list[CheckRecord]:
    """Slices of the rolling check (a 1 s budget each) until one completes the pass."""
    slices: list[CheckRecord] = []
    while not slices or not slices[-1].complete:
        assert len(slices) < 200, "the pass never completed"
        slices.append(asyncio.run(check_target(services, "local", "repository", budget=1)))
    return slices


def test_a_rolling_pass_goes_slice_by_slice_and_its_end_is_the_success(tmp_path: Path) -> None:
    box = Box(tmp_path)
    for day in range(6):  # each create commits: segments of its own
        box.backup(f"cabinet-2026-12-0{day + 1}T01:30:00", files=2, size=300_000)
    services = fast_clock_services(box, tmp_path)
    ledger = CheckLedger(box.state)

    clean = rolling_pass(services)
    assert len(clean) >= 3, "the repository took more than one slice"
    assert all(s.ok for s in clean) and not any(s.complete for s in clean[:-1])
    assert ledger.last_success("local", "repository") == NOW

    # A byte flipped in a segment of the middle: the slice that reads it says so,
    # and the end of that pass is no success.
    data = holding_data(box.segments())
    flip_a_data_byte(data[len(data) // 2])
    damaged = rolling_pass(replace(services, clock=Clock(NOW + timedelta(days=1))))
    assert [s.damage for s in damaged].count(True) == 1, damaged
    assert damaged[-1].complete
    assert ledger.last_success("local", "repository") == NOW
    found = ledger.damage("local", "repository")
    assert found is not None and "found damage" in (found.error or "")
    after = configparser.ConfigParser()
    after.read(box.repo / "config")
    assert not after.has_option("repository", "last_segment_checked")  # the next pass: from 0


def test_a_data_check_by_archive_names_the_archive_with_an_altered_chunk(
    tmp_path: Path,
) -> None:
    box = Box(tmp_path)
    box.backup("cabinet-2026-12-04T01:30:00")
    box.backup("cabinet-2026-12-05T01:30:00")  # new files: its own chunks, in the last segment
    whole = asyncio.run(check_target(box.services, "local", "data", budget=None))
    assert whole.ok and whole.complete, whole
    flip_a_data_byte(holding_data(box.segments())[-1])
    found = asyncio.run(check_at(box.services, "local", "usb", str(box.repo), "data", budget=600))
    assert found.damage and found.archive == "cabinet-2026-12-05T01:30:00", found
    assert found.error is not None and "replace this disk" in found.error
    assert CheckLedger(box.state).verified("local") == frozenset()


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[ObservedPractice]:
    ensure_udevd()
    practice = ObservedPractice(tmp_path / "box")
    fill_share(practice.share, files=30)
    (practice.share / "scan.pdf").write_bytes(os.urandom(400_000))  # one chunk of its own
    yield practice


def _flip_on_the_disk(practice: ObservedPractice, disk: LoopDisk) -> None:
    """Flip a byte of a file chunk in the disk's repository (its image mounted, as support)."""
    view = practice.root / "inspect"
    view.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", "loop", str(disk.image), str(view)], check=True)
    try:
        flip_a_data_byte(
            holding_data(
                sorted(
                    (p for p in (view / "coffre" / "data").glob("*/*") if p.name.isdigit()),
                    key=lambda p: int(p.name),
                )
            )[0]
        )
    finally:
        subprocess.run(["umount", str(view)], check=True)


def test_a_damaged_disk_shows_amber_at_its_next_plug_and_asks_to_be_replaced(
    observed: ObservedPractice,
) -> None:
    needs_root("loop devices, mounts and udev, as on the box")
    disk = LoopDisk(observed.root / "disque-a.img")
    try:
        with daemon_running(observed):
            observed.coffre("target", "init", "local", check=True)
            device = disk.plug()
            settle()
            observed.coffre("disk", "enroll", device, "--name", "disque-a", check=True)
            first = _wait_disk(observed, after=None)
            checks = {c["kind"]: c for c in observed.status()["checks"]["disque-a"]}
            # The first plug: a rolling slice and the data check, both whole on a small disk.
            assert checks["repository"]["last_success"] is not None, checks
            assert checks["data"]["last_success"] is not None, checks
            # And the disk's first restore drill, at its plug (the schedule never sees it).
            drilled = [
                json.loads(line)
                for line in (observed.state_dir / "audit.log").read_text().splitlines()
            ]
            assert [(e["op"], e["target"], e["outcome"]) for e in drilled] == [
                ("drill", "disque-a", "asked"),
                ("drill", "disque-a", "ok"),
            ]
            assert 'coffre_drill_last_success{target="disque-a"} 1.0' in observed.scrape()

            _flip_on_the_disk(observed, disk)
            disk.plug()
            _wait_disk(observed, after=first["last_seen"])
            shown = observed.coffre("status").stdout
            assert "CHECK FAILED" in shown and "replace this disk" in shown, shown
            assert observed.lights()["amber"] == "on", observed.lights()
            assert not disk.attached(), "a damaged disk is powered off all the same"
    finally:
        disk.unplug()


def _wait_disk(practice: ObservedPractice, after: str | None) -> dict[str, Any]:
    """The disk's row once its job ended and it is safe to remove (seen since ``after``)."""

    def done() -> bool:
        rows = json.loads(practice.coffre("disk", "list", "--json", check=True).stdout)
        row = rows[0] if rows else {}
        return bool(row.get("safe_to_remove")) and not row["busy"] and row["last_seen"] != after

    wait_for(done, timeout=180, what="the disk job to end")
    row: dict[str, Any] = json.loads(practice.coffre("disk", "list", "--json").stdout)[0]
    return row
