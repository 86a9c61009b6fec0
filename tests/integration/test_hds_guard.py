"""The HDS host's guard against a real sshd host and real borg (packaging/hds).

A repository is created and filled through the box's forced, append-only command (the
line of authorized_keys.template), as a box would; then, on the host's side:
(a) the box's key deletes every archive: coffre-hds-compact refuses (exit 3) without
touching a segment, and coffre-hds-rollback brings every archive back, byte for byte;
(b) a month of nightly archives thinned as the box's retention does: compaction runs and
frees space; (c) the exporter's textfile for both, and promtool fed with its values.
The alert rules themselves are checked and unit-tested with promtool.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import PASSPHRASE
from tests.integration.rule_tests import alerts_tested, expected_alert
from tests.integration.sshd import Host, running_host
from tests.parts import binary

ROOT = Path(__file__).resolve().parents[2]
HDS = ROOT / "packaging" / "hds"
RULES_DIR = ROOT / "packaging" / "prometheus"
RULES = RULES_DIR / "coffre-hds-rules.yml"
RULES_TESTS = RULES_DIR / "coffre-hds-rules.test.yml"


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=600, cwd=cwd)


def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A packaging/hds tool, with the venv's Python (it has borg, for the rollback's lock)."""
    env = {**os.environ, "BORG": binary("borg"), "COFFRE_HDS_LOCK_WAIT": "30"}
    return subprocess.run(
        [binary("python"), str(HDS / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


class Box:
    """A box's side: its key, authorized on ``host`` with the shipped template's line."""

    def __init__(self, root: Path, host: Host) -> None:
        self.root, self.host = root, host
        root.mkdir()
        self.key = root / "box_ed25519"
        subprocess.run(
            [binary("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)],
            check=True,
        )
        template = (HDS / "authorized_keys.template").read_text().splitlines()[-1]
        public = Path(f"{self.key}.pub").read_text().split()
        line = template.replace("REPOSITORY_PATH", str(host.repo))
        line = line.replace("BOX_PUBLIC_KEY", f"{public[0]} {public[1]}")
        host.authorize(line.replace("BOX_HOSTNAME", "cabinet-test"))
        self.share = root / "share"
        self.share.mkdir()

    def borg(self, *args: str) -> subprocess.CompletedProcess[str]:
        rsh = (
            f"ssh -F none -i {self.key} -o IdentitiesOnly=yes -o BatchMode=yes "
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "BORG_BASE_DIR": str(self.root / "borg"),
            "BORG_RSH": rsh,
            "BORG_PASSPHRASE": PASSPHRASE,
            "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING": "YES",
            "TZ": "UTC",
        }
        result = subprocess.run(
            [binary("borg"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=self.root,
        )
        assert result.returncode == 0, f"borg {args[0]}: {result.stderr}"
        return result

    def write(self, index: int, size: int = 20_000) -> None:
        (self.share / f"dossier-{index:03}.bin").write_bytes(os.urandom(size))

    def backup(self, name: str, *extra: str) -> None:
        self.borg("create", *extra, f"{self.host.url}::{name}", "share")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    yield from running_host(tmp_path, "hds1")


@pytest.fixture
def box(tmp_path: Path, host: Host) -> Box:
    made = Box(tmp_path / "box", host)
    made.borg("init", "-e", "repokey-blake2", host.url)
    return made


def segments(host: Host) -> dict[str, bytes]:
    return {
        str(p.relative_to(host.repo)): p.read_bytes()
        for p in (host.repo / "data").rglob("*")
        if p.is_file()
    }


def digests(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def exported(host: Host, out: Path) -> dict[str, float]:
    """The exporter's textfile for the host's repositories: series (with labels) -> value."""
    result = tool("coffre-hds-exporter", "--parent", str(host.repo.parent), "--output", str(out))
    assert result.returncode == 0, result.stderr
    values = {}
    for line in out.read_text().splitlines():
        if not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            values[series] = float(value)
    return values


def expected(alert: str, severity: str) -> str:
    """promtool's exp_alerts entry for ``alert`` on the repository "coffre"."""
    labels = {"severity": severity, "job": "node", "instance": "hds-1:9100", "repository": "coffre"}
    return expected_alert(RULES, alert, labels)


def promtool_case(values: dict[str, float], now: float) -> str:
    """A promtool test whose input series are the exporter's real values, time() = 0 being
    ``now`` (the export): a timestamp series becomes its age, negative."""
    last = next(v for k, v in values.items() if k.startswith("coffre_hds_last_transaction"))
    refused = next(v for k, v in values.items() if k.startswith("coffre_hds_compaction_refused"))
    labels = '{job="node",instance="hds-1:9100",repository="coffre"}'
    suspicious = expected("CoffreHdsDeletionsSuspicious", "critical") if refused else "[]"
    return f"""rule_files: ["{RULES}"]
evaluation_interval: 5m
tests:
  - interval: 5m
    input_series:
      - series: 'coffre_hds_last_transaction_timestamp_seconds{labels}'
        values: "{last - now:.0f}x600"
      - series: 'coffre_hds_compaction_refused{labels}'
        values: "{refused:.0f}x600"
    alert_rule_test:
      - eval_time: 1h
        alertname: CoffreHdsBoxSilent
        exp_alerts: []
      - eval_time: 37h
        alertname: CoffreHdsBoxSilent
        exp_alerts: {expected("CoffreHdsBoxSilent", "warning")}
      - eval_time: 1h
        alertname: CoffreHdsDeletionsSuspicious
        exp_alerts: {suspicious}
"""


def run_promtool_case(tmp_path: Path, values: dict[str, float], now: float) -> None:
    case = tmp_path / "case.test.yml"
    case.write_text(promtool_case(values, now), encoding="utf-8")
    result = _run(binary("promtool"), "test", "rules", str(case))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.borg
def test_a_mass_deletion_is_refused_then_rolled_back(box: Box, host: Host, tmp_path: Path) -> None:
    for n in range(20):
        box.write(n)
    names = []
    for night in range(3):
        box.write(night)
        names.append(f"cabinet-2026-11-0{night + 1}")
        box.backup(names[-1])
    originals = digests(box.share)
    good = host.transactions()[-1]

    box.borg("delete", f"{host.url}::{names[0]}", *names[1:])
    assert host.archives(tmp_path / "admin-before") == []
    before = segments(host)
    compact = tool("coffre-hds-compact", str(host.repo))
    assert compact.returncode == 3, compact.stdout + compact.stderr
    assert "REFUSED" in compact.stderr and "--accept-deletions" in compact.stderr
    assert segments(host) == before

    values = exported(host, tmp_path / "coffre-hds.prom")
    assert values['coffre_hds_compaction_refused{repository="coffre"}'] == 1
    run_promtool_case(tmp_path, values, (tmp_path / "coffre-hds.prom").stat().st_mtime)

    listed = tool("coffre-hds-rollback", str(host.repo))
    assert listed.returncode == 0, listed.stderr
    deleting = [line for line in listed.stdout.splitlines() if "100 % of the live" in line]
    assert len(deleting) == 1 and int(deleting[0].split()[0]) > good, listed.stdout
    rolled = tool("coffre-hds-rollback", str(host.repo), "--to", str(good), "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    admin = tmp_path / "admin-after"
    assert [a["name"] for a in host.archives(admin)] == names
    restore = tmp_path / "restore"
    restore.mkdir()
    host.admin_borg(admin, "extract", f"{host.url}::{names[-1]}", cwd=restore)
    assert digests(restore / "share") == originals


def _month(box: Box) -> list[str]:
    """30 nightly archives (2026-10-05 .. 11-03) of a 100-file share changing 1 % a day."""
    for n in range(100):
        box.write(n)
    names = []
    for day in range(30):
        box.write(day % 100)
        stamp = f"2026-{10 + (day + 4) // 31:02}-{(day + 4) % 31 + 1:02}T01:30:00"
        names.append(f"cabinet-{stamp}")
        box.backup(names[-1], "--timestamp", stamp)
    return names


@pytest.mark.borg
def test_a_month_of_retention_is_compacted(box: Box, host: Host, tmp_path: Path) -> None:
    names = _month(box)
    kept = {names[0], names[27], names[28], names[29]}  # M-1, M = J-2, J-1, J
    box.borg("delete", f"{host.url}::{names[1]}", *(n for n in names[2:] if n not in kept))
    values = exported(host, tmp_path / "before.prom")
    text = (tmp_path / "before.prom").read_text()
    assert not re.search(r"cabinet-|dossier", text)
    assert set(re.findall(r"\{([^}]*)\}", text)) == {'repository="coffre"'}
    pending = values['coffre_hds_pending_deletion_bytes{repository="coffre"}']
    live = values['coffre_hds_live_bytes{repository="coffre"}']
    assert 0 < pending < 0.5 * live
    assert values['coffre_hds_pending_deletions{repository="coffre"}'] >= 26
    assert values['coffre_hds_compaction_refused{repository="coffre"}'] == 0
    assert values['coffre_hds_measure_ok{repository="coffre"}'] == 1
    disk = values['coffre_hds_repository_bytes{repository="coffre"}']
    assert disk == sum(len(b) for b in segments(host).values())
    run_promtool_case(tmp_path, values, (tmp_path / "before.prom").stat().st_mtime)

    compact = tool("coffre-hds-compact", str(host.repo))
    assert compact.returncode == 0, compact.stdout + compact.stderr
    after = exported(host, tmp_path / "after.prom")
    assert after['coffre_hds_repository_bytes{repository="coffre"}'] < disk - 0.8 * pending
    assert after['coffre_hds_pending_deletion_bytes{repository="coffre"}'] == 0
    assert sorted(a["name"] for a in host.archives(tmp_path / "admin")) == sorted(kept)


def test_promtool_checks_the_hds_rules() -> None:
    result = _run(binary("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_promtool_runs_the_hds_rules_unit_tests() -> None:
    result = _run(binary("promtool"), "test", "rules", RULES_TESTS.name, cwd=RULES_DIR)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_every_hds_alert_is_tested_firing_and_not_firing() -> None:
    alerts, firing, quiet = alerts_tested(RULES, RULES_TESTS)
    assert {"CoffreHdsBoxSilent", "CoffreHdsDeletionsSuspicious"} <= alerts
    assert firing == alerts and quiet == alerts
