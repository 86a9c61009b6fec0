"""packaging/samba: a real smbd serves the shipped share; a workstation writes, coffre backs up.

smbd runs as root on a free loopback port with a test smb.conf: the
test-only globals (its own directories, the port, loopback only), the shipped
global options and share section included unmodified, and only the share's
``path`` overridden after the include (testparm shows that nothing else
changed). ``smbclient`` plays the workstation.

Needs root: smbd switches to the user's uid to write. The test creates a Unix
user (in the group ``coffre-partage``, created too when missing) and a user
outside it, and removes what it created.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.consistency.smb_activity import open_for_writing
from coffre.core.errors import SmbStatusUnavailable
from tests.integration.btrfs_snapshots import (
    gmt_token,
    make_subvolume,
    take_previous_version,
    versions_folder,
)
from tests.integration.btrfs_volume import btrfs_volume
from tests.integration.harness import Practice, running_daemon, wait_for
from tests.integration.smb_session import held_for_reading, held_for_writing
from tests.parts import binary, needs_root

SAMBA = Path(__file__).resolve().parents[2] / "packaging" / "samba"
SHARE_CONF = SAMBA / "coffre-share.conf"
GLOBAL_CONF = SAMBA / "coffre-global.conf"
SHARE = "cabinet"
GROUP = "coffre-partage"
PASSWORD = "Mot de passe du cabinet, 2 fois"
#: The file the workstation drops: a name with a space and accents, and bytes.
REMOTE_NAME = "Compte rendu é.txt"


def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def accepts(port: int) -> bool:
    with socket.socket() as client:
        client.settimeout(1)
        return client.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def unix_group(name: str) -> Iterator[None]:
    """The group ``name``; created (and removed afterwards) when missing."""
    try:
        grp.getgrnam(name)
        yield
        return
    except KeyError:
        pass
    run(binary("groupadd"), "--system", name)
    try:
        yield
    finally:
        run(binary("groupdel"), name)


@contextlib.contextmanager
def unix_user(name: str, *groups: str) -> Iterator[pwd.struct_passwd]:
    """A new system user without home, in ``groups``; removed afterwards."""
    extra = ["--groups", ",".join(groups)] if groups else []
    run(
        binary("useradd"),
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        *extra,
        name,
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        run(binary("userdel"), name)


@dataclass
class Smbd:
    """A running smbd and what a client needs to reach it."""

    conf: Path
    port: int
    member: str
    outsider: str

    def client_argv(self, user: str | None = None, auth: tuple[str, ...] = ("-N",)) -> list[str]:
        """smbclient's command line on the share, as ``user`` with the password, else
        with ``auth`` (default: anonymous); SMB3 (the only protocol the share speaks)."""
        if user is not None:
            auth = ("-U", f"{user}%{PASSWORD}")
        return [
            binary("smbclient"),
            f"//127.0.0.1/{SHARE}",
            "-p",
            str(self.port),
            # The client's own smb.conf is not the machine's.
            "--configfile=/dev/null",
            *auth,
        ]

    def client(
        self, *args: str, user: str | None = None, auth: tuple[str, ...] = ("-N",)
    ) -> subprocess.CompletedProcess[str]:
        """smbclient on the share, as ``user`` with the password, else with ``auth``
        (default: anonymous)."""
        return subprocess.run(
            [*self.client_argv(user, auth), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )


def shadow_lines(share: Path) -> str:
    """The shipped share's ``shadow:`` lines, its folders moved to ``share``'s, as the
    shipped file's header tells a practice that moves the share to write them (Samba
    drops a section's ``shadow:`` lines when the section is declared again)."""
    moved = {
        "shadow:snapdir": str(versions_folder(share)),
        "shadow:basedir": str(share),
    }
    lines = []
    for line in SHARE_CONF.read_text(encoding="utf-8").splitlines():
        key, _, value = line.strip().partition(" = ")
        if key.startswith("shadow:"):
            lines.append(f"   {key} = {moved.get(key, value)}\n")
    return "".join(lines)


def smb_conf(root: Path, port: int, share: Path | None, *, more: str = "") -> str:
    """The test's smb.conf: test-only globals, the shipped files, the path override.

    ``share`` None: without the override, the shipped share as it is. The
    override moves the share to ``share`` (its path and its shadow: lines), then
    adds ``more``.
    """
    override = (
        f"[{SHARE}]\n   path = {share}\n{shadow_lines(share)}{more}" if share is not None else ""
    )
    return f"""
[global]
   server role = standalone server
   workgroup = CABINET
   netbios name = COFFRE-TEST
   disable netbios = yes
   interfaces = lo
   bind interfaces only = yes
   smb ports = {port}
   private dir = {root}/private
   lock directory = {root}/lock
   state directory = {root}/state
   cache directory = {root}/cache
   pid directory = {root}/pid
   ncalrpc dir = {root}/ncalrpc
   binddns dir = {root}/binddns
   usershare path = {root}/usershares
   passdb backend = tdbsam:{root}/private/passdb.tdb
   log file = {root}/log/smbd.log
   max log size = 0
   include = {GLOBAL_CONF}
include = {SHARE_CONF}
{override}"""


def effective_share(conf: Path) -> dict[str, str]:
    """The share's parameters as Samba reads them (those not left at the global value)."""
    out = run(binary("testparm"), "-s", f"--section-name={SHARE}", str(conf)).stdout
    pairs = (line.strip().partition(" = ") for line in out.splitlines() if " = " in line)
    return {key: value for key, _, value in pairs}


@pytest.fixture(scope="module")
def practice_root() -> Iterator[Path]:
    """A directory smbd's users can traverse (pytest's tmp dirs are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="coffre-samba-"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root)


@pytest.fixture(scope="module")
def practice(practice_root: Path) -> Practice:
    p = Practice(practice_root / "practice")
    p.root.chmod(0o711)
    return p


@dataclass
class Accounts:
    """The Unix users of the tests: one in the share's group, one outside it."""

    member: str
    outsider: str


@pytest.fixture(scope="module")
def accounts() -> Iterator[Accounts]:
    needs_root("smbd, Unix users")
    for tool in ("smbd", "smbclient", "smbpasswd", "smbstatus", "testparm", "useradd"):
        binary(tool)
    binary("groupadd")
    tag = f"{os.getpid() % 100000}"
    with (
        unix_group(GROUP),
        unix_user(f"coffre-smb-{tag}", GROUP) as member,
        unix_user(f"coffre-out-{tag}") as outsider,
    ):
        yield Accounts(member.pw_name, outsider.pw_name)


def samba_folders(samba_root: Path) -> None:
    """The private, lock, state... folders of a test smbd, under ``samba_root``."""
    for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc", "binddns", "log"):
        (samba_root / sub).mkdir(parents=True, mode=0o700)
    (samba_root / "usershares").mkdir(mode=0o700)


def as_the_package_makes_it(share: Path) -> None:
    """``share`` root:coffre-partage, mode 2770, as the package makes /srv/coffre/partage."""
    os.chown(share, 0, grp.getgrnam(GROUP).gr_gid)
    share.chmod(0o2770)


@contextlib.contextmanager
def serving(samba_root: Path, share: Path, accounts: Accounts, *, more: str = "") -> Iterator[Smbd]:
    """smbd serving ``share`` (the shipped share, its path and ``more`` overridden)
    on a free port, with the passwords of ``accounts``; stopped on exit."""
    samba_folders(samba_root)
    port = free_port()
    conf = samba_root / "smb.conf"
    conf.write_text(smb_conf(samba_root, port, share, more=more), encoding="utf-8")
    for user in (accounts.member, accounts.outsider):
        run(
            binary("smbpasswd"),
            "-c",
            str(conf),
            "-s",
            "-a",
            user,
            stdin=f"{PASSWORD}\n{PASSWORD}\n",
        )
    process = subprocess.Popen(
        [binary("smbd"), "--foreground", "--no-process-group", f"--configfile={conf}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def listening() -> bool:
            if process.poll() is not None:
                log = samba_root / "log" / "smbd.log"
                text = log.read_text(errors="replace") if log.exists() else ""
                raise AssertionError(f"smbd exited {process.returncode}:\n{text}")
            return accepts(port)

        wait_for(listening, timeout=30, what=f"smbd on port {port}")
        yield Smbd(conf, port, accounts.member, accounts.outsider)
    finally:
        # smbd and the children it forked per connection: their own session.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def smbd(practice: Practice, practice_root: Path, accounts: Accounts) -> Iterator[Smbd]:
    as_the_package_makes_it(practice.share)
    with serving(practice_root / "samba", practice.share, accounts) as server:
        yield server


def test_the_shipped_share_is_served_unchanged_but_for_its_path(smbd: Smbd) -> None:
    alone = smbd.conf.parent / "alone.conf"
    alone.write_text(smb_conf(smbd.conf.parent, smbd.port, None), encoding="utf-8")
    shipped = effective_share(alone)
    served = effective_share(smbd.conf)
    share = Path(smbd.conf).parents[1] / "practice" / "share"
    assert shipped.pop("path") == "/srv/coffre/partage"
    assert served.pop("path") == str(share)
    # The Previous Versions' folders move with the share (shadow_lines).
    assert shipped.pop("shadow:snapdir") == "/srv/coffre/.coffre-versions/partage"
    assert served.pop("shadow:snapdir") == str(share.parent / ".coffre-versions" / "share")
    assert shipped.pop("shadow:basedir") == "/srv/coffre/partage"
    assert served.pop("shadow:basedir") == str(share)
    assert served == shipped
    assert shipped["valid users"] == "@coffre-partage"
    assert shipped["force group"] == "coffre-partage"
    # Left at their global values, which are these (test_globals_are_strict):
    assert "guest ok" not in shipped and "printable" not in shipped


def test_globals_are_strict(smbd: Smbd) -> None:
    alone = smbd.conf.parent / "globals.conf"
    alone.write_text(f"[global]\ninclude = {GLOBAL_CONF}\n", encoding="utf-8")
    out = run(binary("testparm"), "-s", "-v", str(alone)).stdout
    settings = {
        key.strip(): value.strip()
        for key, _, value in (line.partition(" = ") for line in out.splitlines())
    }
    assert settings["server min protocol"] == "SMB3"
    assert settings["server signing"] == "required"
    assert settings["server smb encrypt"] == "required"
    assert settings["map to guest"] == "Never"
    assert settings["restrict anonymous"] == "2"
    assert settings["load printers"] == "No"
    assert settings["disable spoolss"] == "Yes"


def test_anonymous_and_guest_are_refused(smbd: Smbd) -> None:
    for auth in (("-N",), ("-U", "guest%"), ("-U", "nobody%")):
        result = smbd.client("-m", "SMB3", "-c", "ls", auth=auth)
        assert result.returncode != 0, (auth, result.stdout)
        out = result.stdout + result.stderr
        assert re.search(r"NT_STATUS_(ACCESS_DENIED|LOGON_FAILURE)", out), (auth, out)


def test_a_user_outside_the_group_is_refused(smbd: Smbd) -> None:
    result = smbd.client("-m", "SMB3", "-c", "ls", user=smbd.outsider)
    assert result.returncode != 0, result.stdout
    assert "NT_STATUS_ACCESS_DENIED" in result.stdout + result.stderr


def test_smb2_is_refused(smbd: Smbd) -> None:
    result = smbd.client("-m", "SMB2_10", "-c", "ls", user=smbd.member)
    assert result.returncode != 0, result.stdout
    # Refused at negotiation, before any share (whose encryption would refuse it too).
    assert "protocol negotiation failed" in result.stdout + result.stderr
    # The same user and client get in with SMB3: what refused it is the protocol.
    assert smbd.client("-m", "SMB3", "-c", "ls", user=smbd.member).returncode == 0


def test_sessions_are_encrypted_even_when_the_client_does_not_ask(smbd: Smbd) -> None:
    """smbclient gives in to a server that requires encryption (so it cannot show a
    refusal); its debug log shows that the server made it encrypt."""
    result = smbd.client(
        "-m", "SMB3", "--client-protection=off", "-d", "10", "-c", "ls", user=smbd.member
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Encrypted SMB2 message" in result.stdout + result.stderr


def test_a_file_dropped_by_a_workstation_is_in_the_next_backup(
    smbd: Smbd, practice: Practice, practice_root: Path
) -> None:
    content = f"Mme Dupont, séance du jour\n{secrets.token_hex(256)}\n"
    local = practice_root / "upload.txt"
    local.write_text(content, encoding="utf-8")
    put = smbd.client("-m", "SMB3", "-c", f'put "{local}" "{REMOTE_NAME}"', user=smbd.member)
    assert put.returncode == 0, put.stdout + put.stderr

    dropped = practice.share / REMOTE_NAME
    assert dropped.read_text(encoding="utf-8") == content
    status = dropped.stat()
    assert status.st_uid == pwd.getpwnam(smbd.member).pw_uid
    assert status.st_gid == grp.getgrnam(GROUP).gr_gid
    assert status.st_mode & 0o777 == 0o660

    for _ in running_daemon(practice):
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
    [archive] = practice.archive_names()
    location = f"{practice.repository()}::{archive}"
    member = str(dropped).lstrip("/")
    listed = practice.borg("list", "--format", "{path}{NL}", location).stdout.splitlines()
    assert member in listed
    extracted = practice.borg("extract", "--stdout", location, member).stdout
    assert extracted == content


def test_the_shipped_share_turns_previous_versions_on(smbd: Smbd) -> None:
    alone = smbd.conf.parent / "versions.conf"
    alone.write_text(smb_conf(smbd.conf.parent, smbd.port, None), encoding="utf-8")
    shipped = effective_share(alone)
    assert shipped["vfs objects"] == "shadow_copy2"
    assert shipped["shadow:snapdir"] == "/srv/coffre/.coffre-versions/partage"
    assert shipped["shadow:basedir"] == "/srv/coffre/partage"
    assert shipped["shadow:format"] == "@GMT-%Y.%m.%d-%H.%M.%S"
    assert shipped["shadow:localtime"] == "no"
    assert shipped["shadow:sort"] == "desc"
    assert shipped["shadow:fixinodes"] == "yes"
    assert shipped["shadow:snapdirseverywhere"] == "no"
    assert shipped["shadow:crossmountpoints"] == "no"


def test_a_section_declared_again_loses_its_shadow_lines_as_the_header_warns(smbd: Smbd) -> None:
    """Why the shipped file's header tells a practice to repeat every shadow: line."""
    again = smbd.conf.parent / "again.conf"
    again.write_text(
        f"[global]\ninclude = {SHARE_CONF}\n[{SHARE}]\n   path = /srv/autre/partage\n",
        encoding="utf-8",
    )
    served = effective_share(again)
    assert served["vfs objects"] == "shadow_copy2" and served["force group"] == GROUP
    assert not [key for key in served if key.startswith("shadow:")]


def writers(smbd: Smbd, *roots: Path) -> int:
    """coffre's count of SMB opens for writing under ``roots``, from the real smbstatus."""
    return asyncio.run(
        open_for_writing(list(roots), smbstatus=binary("smbstatus"), samba_config=str(smbd.conf))
    )


def put(smbd: Smbd, local_dir: Path, name: str, content: bytes) -> None:
    """``content`` written to the share's ``name`` by the member, over SMB."""
    local = local_dir / "upload.bin"
    local.write_bytes(content)
    result = smbd.client("-c", f'put "{local}" "{name}"', user=smbd.member)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_file_held_open_for_writing_counts_one_under_the_share_until_the_session_ends(
    smbd: Smbd, practice: Practice, practice_root: Path
) -> None:
    name = "Ordonnance en cours.docx"
    put(smbd, practice_root, name, b"brouillon\n")
    with held_for_writing(smbd, smbd.member, name):
        assert writers(smbd, practice.share) == 1
        assert writers(smbd, practice_root / "ailleurs") == 0
        # A folder whose name starts like the share's is another folder.
        assert writers(smbd, practice.share.with_name(practice.share.name + "2")) == 0
    assert writers(smbd, practice.share) == 0


def test_a_session_that_only_reads_a_file_counts_no_writer(smbd: Smbd, practice: Practice) -> None:
    name = "Lu seulement.txt"
    readable = practice.share / name
    readable.write_text("à lire\n", encoding="utf-8")
    # Readable by the group, writable by nobody: smbd refuses writing, smbclient reads.
    os.chown(readable, 0, grp.getgrnam(GROUP).gr_gid)
    readable.chmod(0o440)
    try:
        with held_for_reading(smbd, smbd.member, name):
            assert writers(smbd, practice.share) == 0
    finally:
        readable.unlink()


def test_without_a_running_smbd_nobody_writes_but_an_unloadable_configuration_is_an_error(
    practice: Practice, practice_root: Path, accounts: Accounts
) -> None:
    never = practice_root / "samba-never"
    samba_folders(never)
    conf = never / "smb.conf"
    conf.write_text(smb_conf(never, free_port(), practice.share), encoding="utf-8")
    stopped = Smbd(conf, 0, accounts.member, accounts.outsider)
    # Its lock directory has no locking database: smbd never ran there.
    assert writers(stopped, practice.share) == 0
    with pytest.raises(SmbStatusUnavailable, match="could not load"):
        writers(Smbd(never / "absent.conf", 0, "", ""), practice.share)


@pytest.fixture(scope="module")
def versioned(practice_root: Path, accounts: Accounts) -> Iterator[tuple[Smbd, Path]]:
    """smbd serving a share that is a btrfs subvolume, with Previous Versions beside it
    (the shipped layout: <parent>/partage and <parent>/.coffre-versions/partage)."""
    with btrfs_volume(256, under=practice_root) as volume:
        parent = volume / "coffre"
        parent.mkdir(mode=0o755)
        share = parent / "partage"
        make_subvolume(share)
        as_the_package_makes_it(share)
        with serving(practice_root / "samba-versions", share, accounts) as server:
            yield server, share


def test_yesterdays_version_is_listed_and_fetched_byte_identical_through_its_gmt_token(
    versioned: tuple[Smbd, Path], practice_root: Path
) -> None:
    server, share = versioned
    name = "Compte rendu é.txt"
    yesterday = f"Mme Dupont, hier\n{secrets.token_hex(512)}\n".encode()
    today = f"Mme Dupont, aujourd'hui\n{secrets.token_hex(512)}\n".encode()
    put(server, practice_root, name, yesterday)
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    take_previous_version(share, when)
    put(server, practice_root, name, today)
    token = gmt_token(when)

    info = server.client("-c", f'allinfo "{name}"', user=server.member)
    assert info.returncode == 0, info.stdout + info.stderr
    assert token in info.stdout, info.stdout

    old, new = practice_root / "fetched-yesterday", practice_root / "fetched-today"
    for remote, local in ((f"{token}/{name}", old), (name, new)):
        got = server.client("-c", f'get "{remote}" "{local}"', user=server.member)
        assert got.returncode == 0, got.stdout + got.stderr
    assert old.read_bytes() == yesterday
    assert new.read_bytes() == today
    assert (share / name).read_bytes() == today


def test_the_backup_views_are_out_of_reach_of_the_share_and_its_versions(
    versioned: tuple[Smbd, Path],
) -> None:
    """The views (root's, 0700) sit beside the versions folder, outside the share: no
    @GMT token leads there. smbclient collapses ".." itself, so the tries below are
    the paths a client sends, all ending in the share or its version."""
    server, share = versioned
    views = share.parent / ".coffre-versions" / ".vues"
    view = views / "local"
    view.mkdir(mode=0o700, parents=True, exist_ok=True)
    views.chmod(0o700)
    secret = "vue-de-sauvegarde-secrete.txt"
    (view / secret).write_text("root seulement\n", encoding="utf-8")
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    take_previous_version(share, when)
    token = gmt_token(when)
    tries = (
        "*",
        f"{token}/*",
        "../*",
        "../.coffre-versions/*",
        "../.coffre-versions/.vues/local/*",
        f"{token}/../*",
        f"{token}/../.vues/*",
        f"{token}/../../.coffre-versions/.vues/local/*",
        ".coffre-versions/*",
    )
    for pattern in tries:
        result = server.client("-c", f'ls "{pattern}"', user=server.member)
        out = result.stdout + result.stderr
        assert secret not in out, (pattern, out)
        if "NT_STATUS_" in out:
            continue  # refused (smbclient echoes the pattern it was refused)
        # Listed: what is listed is the share or its version, never the folders beside it.
        assert ".vues" not in out and ".coffre-versions" not in out, (pattern, out)
    # The version itself is served: what was refused above is only the way out.
    listed = server.client("-c", f'ls "{token}/*"', user=server.member)
    assert listed.returncode == 0, listed.stdout + listed.stderr


def test_a_file_held_open_for_writing_holds_the_backup_back_then_it_goes_on_and_says_so(
    smbd: Smbd, practice: Practice, practice_root: Path
) -> None:
    """The share on the test's filesystem (not btrfs): the quiet wait is all there is."""
    waiting = Practice(
        practice_root / "quiet",
        share_at=practice.share,
        quiescence=f'max_wait_seconds = 4\nquiet_seconds = 1\nsamba_config = "{smbd.conf}"',
    )
    name = "Base patients.fdb"
    put(smbd, practice_root, name, b"base en cours d'ecriture\n")
    for _ in running_daemon(waiting):
        waiting.coffre("target", "init", "local", check=True)
        with held_for_writing(smbd, smbd.member, name):
            began = time.monotonic()
            waiting.coffre("backup", "--wait", check=True)
            held = time.monotonic() - began
            read = waiting.status()["share"]["reads"]["local"]
        waiting.coffre("backup", "--wait", check=True)
        after = waiting.status()["share"]["reads"]["local"]
    assert held >= 4, "it waited the whole bound"
    assert read["method"] == "live" and not read["quiet"] and read["writers"] == 1
    assert read["waited"] >= 4
    assert after["quiet"] and after["writers"] == 0
    first = waiting.archive_names()[0]
    info = waiting.borg("info", "--json", f"{waiting.repository()}::{first}").stdout
    comment = json.loads(info)["archives"][0]["comment"]
    assert "NOT quiet after 4 s (1 file(s) open for writing over SMB" in comment
    assert name not in comment


def test_a_backup_s_snapshot_is_a_previous_version_the_workstation_fetches(
    practice_root: Path, accounts: Accounts
) -> None:
    """End to end: `coffre share setup`, the daemon's backup, smbd's Previous Versions."""
    with btrfs_volume(256, under=practice_root) as volume:
        (volume / "coffre").mkdir(mode=0o755)
        box = Practice(practice_root / "box", share_at=volume / "coffre" / "partage")
        box.coffre("share", "setup", check=True)
        as_the_package_makes_it(box.share)
        with serving(practice_root / "samba-box", box.share, accounts) as server:
            name = "Courrier Mme Martin.odt"
            before = f"Madame,\n{secrets.token_hex(512)}\n".encode()
            put(server, practice_root, name, before)
            for _ in running_daemon(box):
                box.coffre("target", "init", "local", check=True)
                box.coffre("backup", "--wait", check=True)
                [version] = box.status()["share"]["versions"]
            # The secretary overwrites the letter; Windows offers the backup's version.
            put(server, practice_root, name, b"ecrase par erreur\n")
            info = server.client("-c", f'allinfo "{name}"', user=server.member)
            assert version["name"] in info.stdout, info.stdout
            back = practice_root / "letter-back"
            got = server.client(
                "-c", f'get "{version["name"]}/{name}" "{back}"', user=server.member
            )
            assert got.returncode == 0, got.stdout + got.stderr
            assert back.read_bytes() == before
