"""Disaster recovery: the box burns, a new one gets everything back from the offsite host.

One practice backs up (twice) to a real sshd host through a real daemon;
the host's operator exports the paper key; then the whole box is wiped
(state, configuration, borg's keys, security dir and cache, the share). A
new box, with nothing but the passphrase, the paper key, the URL and the
host key's fingerprint, runs ``coffre recover``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coffre.core.errors import HostKeyMismatch, OffsiteUnreachable, UsageError
from coffre.core.model import Archive, Item
from coffre.core.restore_plan import Wanted
from coffre.core.sshkeys import PublicKey, parse_url
from coffre.recovery import host, inputs, plan
from tests.integration.harness import PASSPHRASE, daemon_running, fill_share
from tests.integration.offsite_practice import OffsitePractice, enroll
from tests.integration.sshd import Host
from tests.parts import binary

pytestmark = pytest.mark.borg


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root``: relative path -> sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _stats(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``root``: relative path -> (mode, size, mtime in ns)."""
    return {
        str(p.relative_to(root)): (p.lstat().st_mode, p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@dataclass
class Burnt:
    """What is left after the fire: the host, the paper, and what the share held."""

    root: Path
    host: Host
    paper: str
    archives: list[str]
    first: dict[str, str]
    last: dict[str, str]
    ssh_key: Path
    n: int = 0

    def new_box(self) -> Path:
        """An empty directory standing for a freshly installed box."""
        self.n += 1
        box = self.root / f"newbox-{self.n}"
        box.mkdir()
        (box / "passphrase").write_text(PASSPHRASE + "\n", encoding="utf-8")
        (box / "passphrase").chmod(0o600)
        (box / "paper-key.txt").write_text(self.paper, encoding="utf-8")
        return box

    def recover(
        self, box: Path, *args: str, host_key: str | None = None, paper: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``coffre recover`` on ``box`` with every flag a technician gives, plus ``args``."""
        return _recover(
            box,
            "--from",
            self.host.url,
            "--passphrase-file",
            str(box / "passphrase"),
            "--paper-key",
            str(paper or box / "paper-key.txt"),
            "--host-key",
            host_key or self.host.fingerprint(),
            "--ssh-key",
            str(self.ssh_key),
            "--state-dir",
            str(box / "state"),
            *args,
        )


def _recover(box: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COFFRE_", "BORG_"))}
    # No configuration at all unless one is given: not even this machine's /etc/coffre.
    env["COFFRE_CONFIG"] = str(config or box / "no-such-coffre.toml")
    return subprocess.run(
        [binary("coffre"), "recover", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def burnt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Burnt]:
    binary("borg")
    root = tmp_path_factory.mktemp("fire")
    host = Host(root, "hds1").start()
    try:
        practice = OffsitePractice(root / "box", hosts={"hds1": host})
        fill_share(practice.share, files=40, size=5000)
        with daemon_running(practice):
            practice.coffre("target", "init", "local", check=True)
            enroll(practice, "hds1", host)
            practice.coffre("backup", "--wait", check=True)
            first = _tree(practice.share)
            # A day of work: a file changed, one added, one deleted.
            (practice.share / "dossier-1" / "patient-00001.txt").write_bytes(b"modifie\n" * 99)
            (practice.share / "dossier-2" / "nouveau patient é.txt").write_bytes(b"nouveau\n")
            (practice.share / "dossier-3" / "patient-00003.txt").unlink()
            practice.coffre("backup", "--wait", check=True)
            last = _tree(practice.share)
        admin = root / "operator"
        archives = [a["name"] for a in host.archives(admin)]
        assert len(archives) == 2, archives
        # The paper key, printed at set-up time and kept with the passphrase.
        paper = (
            "Cabinet Dupont: keep with the passphrase, away from the box.\n\n"
            + host.admin_borg(admin, "key", "export", "--paper", host.url).stdout
        )

        # The fire: nothing of the box is left (the daemon stopped first).
        shutil.rmtree(practice.root)
        assert not practice.root.exists()

        # A new box: its recovery key does not exist; coffre creates it and
        # prints the line for the host's operator, then stops.
        burnt = Burnt(root, host, paper, archives, first, last, ssh_key=root / "keys" / "rk")
        box = burnt.new_box()
        asked = burnt.recover(box, "--json")
        assert asked.returncode == 1, asked.stderr
        answer = json.loads(asked.stdout)
        assert answer["key_created"] == str(burnt.ssh_key) and burnt.ssh_key.exists()
        assert "ask the host's operator to install this line, then run again" in asked.stderr
        line = answer["authorized_keys"]
        assert line.startswith(
            f'restrict,command="borg serve --append-only --restrict-to-repository {host.repo}" '
        )
        # Not yet installed: a clear refusal that repeats the line.
        refused = burnt.recover(box, "--list")
        assert refused.returncode == 1
        assert "is not installed there" in refused.stderr and line in refused.stderr
        host.authorize(line)  # the operator installs it
        yield burnt
    finally:
        host.stop()


def test_the_latest_archive_comes_back_byte_identical(burnt: Burnt) -> None:
    box = burnt.new_box()
    listed = burnt.recover(box, "--list", "--json")
    assert listed.returncode == 0, listed.stderr
    answer = json.loads(listed.stdout)
    assert [a["name"] for a in answer["archives"]] == burnt.archives
    assert answer["key_imported"] is False and answer["paper_key_current"] is True

    share = box / "share"
    done = burnt.recover(box, "--to", str(share))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"recovered archive {burnt.archives[-1]}" in done.stdout
    assert _tree(share) == burnt.last  # every file, byte for byte; the deleted one is gone
    assert not [p for p in share.iterdir() if p.name.startswith(".coffre")]

    # Recorded, without the host's account name.
    entries = [json.loads(line) for line in (box / "state" / "audit.log").read_text().splitlines()]
    assert [(e["op"], e["outcome"]) for e in entries[-2:]] == [
        ("recover", "asked"),
        ("recover", "ok"),
    ]
    assert entries[-1]["archive"] == burnt.archives[-1]
    assert entries[-1]["target"] == burnt.host.url.replace("root@", "")

    # Again, without --overwrite: refused, nothing touched.
    before = _stats(share)
    again = burnt.recover(box, "--to", str(share))
    assert again.returncode == 6, again.stderr
    assert "exist already" in again.stderr and "--overwrite" in again.stderr
    assert _stats(share) == before
    entries = (box / "state" / "audit.log").read_text().splitlines()
    assert json.loads(entries[-1])["outcome"] == "failed: would_overwrite"

    # One folder of the first archive, elsewhere: only that folder, as it was then.
    older = box / "older"
    partial = burnt.recover(box, "--archive", burnt.archives[0], "--to", str(older), "dossier-1")
    assert partial.returncode == 0, partial.stderr
    assert _tree(older) == {k: v for k, v in burnt.first.items() if k.startswith("dossier-1/")}


def test_a_wrong_host_key_is_refused_before_anything_is_sent(burnt: Burnt) -> None:
    box = burnt.new_box()
    log_before = len(burnt.host.sshd_log())
    files_before = burnt.host.files()
    wrong = burnt.recover(box, "--to", str(box / "share"), host_key="SHA256:" + "A" * 43)
    assert wrong.returncode == 1, wrong.stderr
    assert "possible interception" in wrong.stderr
    assert burnt.host.fingerprint() in wrong.stderr  # what the host showed, for its operator
    # Only key exchanges: no user name, no key offered, nothing written.
    seen = burnt.host.sshd_log()[log_before:]
    assert "publickey" not in seen and "user" not in seen, seen
    assert burnt.host.files() == files_before
    assert not (box / "share").exists()


def test_a_paper_key_of_another_repository_is_refused(burnt: Burnt) -> None:
    box = burnt.new_box()
    other = box / "other-repo"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BORG_BASE_DIR": str(box / "other-base"),
        "BORG_PASSPHRASE": PASSPHRASE,
    }
    for args in (["init", "--encryption=repokey-blake2", str(other)], ["key", "export"]):
        if args[0] == "key":
            args = [*args, "--paper", str(other)]
        result = subprocess.run(
            [binary("borg"), *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
    wrong_paper = box / "other-paper.txt"
    wrong_paper.write_text(result.stdout, encoding="utf-8")
    config_before = (burnt.host.repo / "config").read_bytes()

    refused = burnt.recover(box, "--to", str(box / "share"), paper=wrong_paper)
    assert refused.returncode == 2, refused.stderr
    assert "the paper key is the key of another repository" in refused.stderr
    assert not (box / "share").exists()
    assert (burnt.host.repo / "config").read_bytes() == config_before


def test_a_damaged_repository_key_is_replaced_by_the_paper_key(burnt: Burnt) -> None:
    # The host's operator finds the repository's key entry emptied (disk damage,
    # or someone with the box's key: borg serve --append-only does not protect it).
    config_file = burnt.host.repo / "config"
    text = config_file.read_text(encoding="ascii")
    damaged = re.sub(r"^key = .*?(?=^\S|\Z)", "key = \n", text, flags=re.M | re.S)
    assert damaged != text and "key = \n" in damaged
    config_file.write_text(damaged, encoding="ascii")

    # A new box with the packaged configuration's shape: its share, no --to.
    box = burnt.new_box()
    share = box / "partage"
    share.mkdir()
    share.chmod(0o2770)  # as the package's postinst makes it
    config = box / "coffre.toml"
    config.write_text(
        f'[source]\npaths = ["{share}"]\n\n[encryption]\npassphrase_file = "{box / "passphrase"}"\n'
        f'\n[[target]]\nname = "local"\nkind = "local"\npath = "{box / "depots" / "local"}"\n',
        encoding="utf-8",
    )
    done = _recover(
        box,
        "--from",
        burnt.host.url,
        "--passphrase-file",
        str(box / "passphrase"),
        "--paper-key",
        str(box / "paper-key.txt"),
        "--host-key",
        burnt.host.fingerprint(),
        "--ssh-key",
        str(burnt.ssh_key),
        "--state-dir",
        str(box / "state"),
        config=config,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the repository has no key: importing the paper key" in done.stderr
    assert "the paper key was written into the repository" in done.stdout
    # Into the share itself (not _restaurations), byte for byte; the share keeps its mode.
    assert _tree(share) == burnt.last
    assert share.stat().st_mode & 0o7777 == 0o2770
    # The host's repository has its key again.
    assert re.search(r"^key = \S", config_file.read_text(encoding="ascii"), flags=re.M)
    audit: list[dict[str, Any]] = [
        json.loads(line) for line in (box / "state" / "audit.log").read_text().splitlines()
    ]
    assert audit[-1]["outcome"] == "ok" and audit[-1]["details"]["key_imported"] is True


def _key_entry(config_file: Path) -> bytes:
    """The key stored in a repository's ``config`` (``key = `` and its continuation lines)."""
    text = config_file.read_text(encoding="ascii")
    match = re.search(r"^key = (.*?)(?=^\S|\Z)", text, flags=re.M | re.S)
    assert match is not None
    return base64.b64decode("".join(match.group(1).split()))


def test_a_corrupted_repository_key_is_replaced_only_when_asked(burnt: Burnt) -> None:
    # One byte of the encrypted part of the key flipped on the host's disk: borg
    # cannot tell this from a wrong passphrase.
    config_file = burnt.host.repo / "config"
    good = config_file.read_text(encoding="ascii")
    key = bytearray(_key_entry(config_file))
    key[len(key) // 2] ^= 0x55
    encoded = base64.b64encode(bytes(key)).decode("ascii")
    config_file.write_text(
        re.sub(r"^key = .*?(?=^\S|\Z)", f"key = {encoded}\n", good, flags=re.M | re.S),
        encoding="ascii",
    )

    box = burnt.new_box()
    share = box / "share"
    refused = burnt.recover(box, "--to", str(share))
    assert refused.returncode == 1, refused.stderr
    assert "that key is not the paper key: it is damaged" in refused.stderr
    assert "--replace-key" in refused.stderr
    assert not share.exists()
    assert _key_entry(config_file) == bytes(key)  # not replaced unasked

    done = burnt.recover(box, "--to", str(share), "--replace-key")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replacing the repository's key with the paper key" in done.stderr
    assert _tree(share) == burnt.last
    assert _key_entry(config_file) != bytes(key)


# --- the decisions, without a host -------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")


def _item(path: str, kind: str = "-") -> Item:
    return Item(path=path, kind=kind, size=0, mtime=datetime(2026, 1, 1, tzinfo=UTC))


def test_the_old_boxs_roots_come_from_the_archive() -> None:
    items = [
        _item("srv/coffre/partage", "d"),
        _item("srv/coffre/partage/a", "d"),
        _item("srv/coffre/partage/a/x.pdf"),
        _item("etc/cabinet.conf"),
    ]
    roots = plan.archive_roots(items)
    assert roots == [PurePosixPath("/srv/coffre/partage"), PurePosixPath("/etc/cabinet.conf")]


def test_where_a_recovery_writes() -> None:
    share = PurePosixPath("/srv/coffre/partage")
    whole = Wanted(root=share, stored="srv/coffre/partage")
    # --to: the share's folders stripped.
    assert plan.plan([share], [], to=Path("/x"), share_paths=()) == plan.Plan(
        (whole,), Path("/x"), False
    )
    # No --to: into the configuration's share, even when it moved.
    assert plan.plan([share], [], to=None, share_paths=(Path(share),)).to == Path(share)
    moved = plan.plan([share], ["a/x.pdf"], to=None, share_paths=(Path("/srv/partage"),))
    assert moved.to == Path("/srv/partage")
    assert moved.wanted == (Wanted(root=share, stored="srv/coffre/partage/a/x.pdf"),)
    # Several roots: each into itself, or under --to with its whole path.
    other = PurePosixPath("/srv/scans")
    both = plan.plan([share, other], [], to=None, share_paths=(Path(share), Path(other)))
    assert both.into_root and both.to is None
    under = plan.plan([share, other], [], to=Path("/x"), share_paths=())
    assert [w.strip for w in under.wanted] == [0, 0]
    # Nothing says where: refused, saying what the archive holds.
    with pytest.raises(UsageError, match="give --to"):
        plan.plan([share], [], to=None, share_paths=())
    with pytest.raises(UsageError, match="does not all back up"):
        plan.plan([share, other], [], to=None, share_paths=(Path(share),))


def test_the_latest_complete_archive_whatever_the_old_prefix() -> None:
    def at(day: int, hour: int) -> datetime:
        return datetime(2026, 3, day, hour, tzinfo=UTC)

    archives = [
        Archive(at(1, 0), "ancien-nom-2026-03-01T01:00:00"),
        Archive(at(2, 0), "cabinet-2026-03-02T01:00:00"),
        Archive(at(3, 0), "cabinet-2026-03-03T01:00:00.checkpoint"),
        Archive(at(2, 23), "manuel-avant-mise-a-jour"),
    ]
    pick = plan.choose_archive
    assert pick(archives, name=None, day=None, tz=PARIS).name == "cabinet-2026-03-02T01:00:00"
    assert pick(archives, name=None, day=date(2026, 3, 1), tz=PARIS).name.startswith("ancien")
    assert pick(archives, name="manuel-avant-mise-a-jour", day=None, tz=PARIS) == archives[3]
    with pytest.raises(UsageError, match="no complete archive of 2026-03-03"):
        pick(archives, name=None, day=date(2026, 3, 3), tz=PARIS)


def test_the_host_key_asked_is_looked_for_among_the_hosts_keys() -> None:
    ed25519 = PublicKey("ssh-ed25519", b"\0\0\0\x0bssh-ed25519\0\0\0\x01e")
    ecdsa = PublicKey("ecdsa-sha2-nistp256", b"ecdsa blob")
    asked: list[tuple[str, ...]] = []

    def fetch(
        host: str, port: int, *, timeout: float, key_types: tuple[str, ...] = ()
    ) -> PublicKey:
        asked.append(key_types)
        if key_types == ():
            return ed25519
        if key_types == ("ecdsa-sha2-nistp256",):
            return ecdsa
        raise OffsiteUnreachable("no such key")

    url = parse_url("ssh://u@h:2222/r")
    assert host.verify_host_key(url, ecdsa.fingerprint, fetch=fetch) == ecdsa
    with pytest.raises(HostKeyMismatch) as caught:
        host.verify_host_key(url, "SHA256:" + "A" * 43, fetch=fetch)
    assert ed25519.fingerprint in caught.value.hint and ecdsa.fingerprint in caught.value.hint
    with pytest.raises(UsageError):
        inputs.check_fingerprint("aa:bb:cc")
