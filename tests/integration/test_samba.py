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

import contextlib
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.harness import Practice, running_daemon, wait_for
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

    def client(
        self, *args: str, user: str | None = None, auth: tuple[str, ...] = ("-N",)
    ) -> subprocess.CompletedProcess[str]:
        """smbclient on the share, as ``user`` with the password, else with ``auth``
        (default: anonymous)."""
        if user is not None:
            auth = ("-U", f"{user}%{PASSWORD}")
        return subprocess.run(
            [
                binary("smbclient"),
                f"//127.0.0.1/{SHARE}",
                "-p",
                str(self.port),
                # The client's own smb.conf is not the machine's.
                "--configfile=/dev/null",
                *auth,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )


def smb_conf(root: Path, port: int, share: Path | None) -> str:
    """The test's smb.conf: test-only globals, the shipped files, the path override.

    ``share`` None: without the override, the shipped share as it is.
    """
    override = f"[{SHARE}]\n   path = {share}\n" if share is not None else ""
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


@pytest.fixture(scope="module")
def smbd(practice: Practice, practice_root: Path) -> Iterator[Smbd]:
    needs_root("smbd, Unix users")
    server = binary("smbd")
    for tool in ("smbclient", "smbpasswd", "testparm", "useradd", "groupadd"):
        binary(tool)
    samba_root = practice_root / "samba"
    for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc", "binddns", "log"):
        (samba_root / sub).mkdir(parents=True, mode=0o700)
    (samba_root / "usershares").mkdir(mode=0o700)
    port = free_port()
    conf = samba_root / "smb.conf"
    conf.write_text(smb_conf(samba_root, port, practice.share), encoding="utf-8")
    tag = f"{os.getpid() % 100000}"
    with (
        unix_group(GROUP),
        unix_user(f"coffre-smb-{tag}", GROUP) as member,
        unix_user(f"coffre-out-{tag}") as outsider,
    ):
        # As the package makes /srv/coffre/partage.
        os.chown(practice.share, 0, grp.getgrnam(GROUP).gr_gid)
        practice.share.chmod(0o2770)
        for user in (member, outsider):
            run(
                binary("smbpasswd"),
                "-c",
                str(conf),
                "-s",
                "-a",
                user.pw_name,
                stdin=f"{PASSWORD}\n{PASSWORD}\n",
            )
        process = subprocess.Popen(
            [server, "--foreground", "--no-process-group", f"--configfile={conf}"],
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
            yield Smbd(conf, port, member.pw_name, outsider.pw_name)
        finally:
            # smbd and the children it forked per connection: their own session.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_the_shipped_share_is_served_unchanged_but_for_its_path(smbd: Smbd) -> None:
    alone = smbd.conf.parent / "alone.conf"
    alone.write_text(smb_conf(smbd.conf.parent, smbd.port, None), encoding="utf-8")
    shipped = effective_share(alone)
    served = effective_share(smbd.conf)
    assert shipped.pop("path") == "/srv/coffre/partage"
    assert served.pop("path") == str(Path(smbd.conf).parents[1] / "practice" / "share")
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
