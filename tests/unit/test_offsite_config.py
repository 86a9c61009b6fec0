"""Offsite targets in the configuration, and the pure SSH helpers they rest on."""

from __future__ import annotations

import socket
import subprocess
import threading
import tomllib
from pathlib import Path

import pytest

from coffre.config import loader as config
from coffre.core import sshkeys
from coffre.core.config_types import OffsiteTarget, UploadWindow
from coffre.core.errors import ConfigError
from coffre.targets.offsite import ssh

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGDZVecCWCspFaV+Zd4qzvRnRK6uNLFeZxPIf+JmGKTK"

BASE = """
[source]
paths = ["/srv/share"]

[encryption]
passphrase_file = "/etc/coffre/passphrase"

[[target]]
name = "local"
kind = "local"
path = "/var/backups/coffre"
"""


def parse(target: str) -> OffsiteTarget:
    parsed = config.parse(tomllib.loads(BASE + target), hostname="nas")
    found = parsed.targets[1]
    assert isinstance(found, OffsiteTarget)
    return found


def problems(target: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        config.parse(tomllib.loads(BASE + target), hostname="nas")
    return [str(p) for p in raised.value.problems]


def test_an_offsite_target_with_every_key() -> None:
    target = parse(f"""
[[target]]
name = "hds1"
kind = "offsite"
url = "ssh://cabinet@hds1.example.fr:2222/srv/borg/cabinet"
host_keys = ["{KEY} host@hds1"]
retry_for = 120
retry_delay = 30
connect_timeout = 10
ssh_key = "/var/lib/coffre/ssh/other"
[[target.upload_window]]
days = "mon-fri"
from = "08:00"
to = "19:00"
limit_kbps = 2000
[[target.upload_window]]
days = "sat"
from = "22:00"
to = "06:00"
limit_kbps = 500
""")
    assert target == OffsiteTarget(
        name="hds1",
        user="cabinet",
        host="hds1.example.fr",
        port=2222,
        path="/srv/borg/cabinet",
        host_keys=(KEY,),
        upload_windows=(
            UploadWindow(frozenset(range(5)), 8 * 60, 19 * 60, 2000),
            UploadWindow(frozenset({5}), 22 * 60, 6 * 60, 500),
        ),
        retry_for=120,
        retry_delay=30,
        connect_timeout=10,
        ssh_key=Path("/var/lib/coffre/ssh/other"),
    )
    assert target.location == "ssh://cabinet@hds1.example.fr:2222/srv/borg/cabinet"


def test_the_defaults_of_an_offsite_target() -> None:
    target = parse('[[target]]\nname = "hds1"\nkind = "offsite"\nurl = "ssh://u@h/~/repo"\n')
    assert (target.port, target.path, target.host_keys, target.upload_windows) == (
        22,
        "/~/repo",
        (),
        (),
    )
    assert (target.retry_for, target.retry_delay, target.ssh_key) == (360, 60, None)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("hds1:/srv/repo", "expected ssh://user@host:port/path"),
        ("ssh://hds1/srv/repo", "expected a user name"),
        ("ssh://u:secret@hds1/srv/repo", "no password"),
        ("ssh://u@hds1:99999/srv/repo", "the port must be a number"),
        ("ssh://u@hds1", "expected the repository's path"),
        ("ssh://u@hds1/srv/my repo", "may not hold spaces"),
        ("ssh://u@hds1/srv/{now}", "braces"),
        ("ssh://u@hds1/srv/x?y=1", "no '?' or '#'"),
        ("ssh://u@hd_s1/srv/x", "is not a host name"),
    ],
)
def test_bad_urls_are_named(url: str, says: str) -> None:
    found = problems(f'[[target]]\nname = "hds1"\nkind = "offsite"\nurl = "{url}"\n')
    assert len(found) == 1 and found[0].startswith("target[1].url: ") and says in found[0]


def test_bad_host_keys_and_windows_are_each_named() -> None:
    found = problems(f"""
[[target]]
name = "hds1"
kind = "offsite"
url = "ssh://u@h/r"
host_keys = ["ssh-ed25519 AAAA", "{KEY[:40]}", "ssh-dss AAAAB3"]
[[target.upload_window]]
days = "lun-ven"
from = "8h"
to = "19:00"
limit_kbps = 0
[[target.upload_window]]
from = "10:00"
to = "10:00"
limit_kbps = 10
speed = 3
""")
    assert found == [
        "target[1].host_keys[0]: the ssh-ed25519 key is cut short or damaged",
        "target[1].host_keys[1]: the ssh-ed25519 key is cut short or damaged",
        "target[1].host_keys[2]: unknown key type 'ssh-dss'; expected one of "
        "ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, ssh-ed25519, ssh-rsa",
        "target[1].upload_window[0].days: 'lun-ven': 'lun' is not a day; use mon, tue, wed, "
        'thu, fri, sat, sun, ranges such as "mon-fri", lists such as "sat,sun", or "all"',
        "target[1].upload_window[0].from: expected a time \"HH:MM\" (00:00 to 24:00), got '8h'",
        "target[1].upload_window[0].limit_kbps: expected an integer >= 1, got 0",
        'target[1].upload_window[1].speed: unknown key; known keys are "days", "from", "to", '
        '"limit_kbps"',
        'target[1].upload_window[1].to: equals "from": the window is empty '
        "(00:00 to 24:00 is a whole day)",
    ]


def test_fingerprints_are_those_of_ssh_keygen(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    printed = subprocess.run(
        ["ssh-keygen", "-lf", f"{key}.pub"], check=True, capture_output=True, text=True
    ).stdout.split()[1]
    assert sshkeys.parse_public_key(key.with_suffix(".pub").read_text()).fingerprint == printed


def test_the_authorized_keys_line_forces_an_append_only_borg_serve() -> None:
    key = sshkeys.parse_public_key(KEY)
    assert sshkeys.authorized_keys_line(key, "/srv/borg/x", "coffre@nas") == (
        'restrict,command="borg serve --append-only --restrict-to-repository /srv/borg/x" '
        f"{KEY} coffre@nas"
    )
    home = sshkeys.authorized_keys_line(key, "/~/x", "c")
    assert "--restrict-to-repository ~/x" in home
    assert sshkeys.known_hosts_line("h", 22, key) == f"h {KEY}"
    assert sshkeys.known_hosts_line("::1", 2222, key) == f"[::1]:2222 {KEY}"


#: ssh-keygen's options for a host key of each kind a pin may have.
KEYGEN = {
    "ssh-ed25519": ("-t", "ed25519"),
    "ecdsa-sha2-nistp256": ("-t", "ecdsa", "-b", "256"),
    "ecdsa-sha2-nistp384": ("-t", "ecdsa", "-b", "384"),
    "ecdsa-sha2-nistp521": ("-t", "ecdsa", "-b", "521"),
    "ssh-rsa": ("-t", "rsa", "-b", "2048"),
}


def _serve_key_exchange(listener: socket.socket, host_key: Path) -> None:
    """An SSH server showing ``host_key`` to one client, up to the end of the key exchange."""
    import paramiko

    connection, _ = listener.accept()
    transport = paramiko.Transport(connection)
    try:
        transport.add_server_key(paramiko.PKey.from_path(host_key))
        transport.start_server(server=paramiko.ServerInterface())
    except (paramiko.SSHException, EOFError, OSError):
        pass  # the client hangs up once it has the key, or refused the exchange
    finally:
        transport.close()


@pytest.mark.parametrize("kind", sorted(sshkeys.HOST_KEY_TYPES))
def test_a_host_key_of_every_kind_a_pin_may_have_is_fetched(kind: str, tmp_path: Path) -> None:
    """A pinned RSA key once asked paramiko for SHA-1 "ssh-rsa", which paramiko 5 refuses:
    asking for the pinned kind only, the key exchange must still get the host's key."""
    assert set(KEYGEN) == sshkeys.HOST_KEY_TYPES
    host_key = tmp_path / "host_key"
    keygen = ["ssh-keygen", "-q", *KEYGEN[kind], "-N", "", "-f", str(host_key)]
    subprocess.run(keygen, check=True)
    shown = sshkeys.parse_public_key(host_key.with_suffix(".pub").read_text())
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(30)  # a client that never connects fails the test, not hangs it
        server = threading.Thread(target=_serve_key_exchange, args=(listener, host_key))
        server.start()
        try:
            port = listener.getsockname()[1]
            fetched = ssh.fetch_host_key("127.0.0.1", port, timeout=30, key_types=(kind,))
        finally:
            server.join(timeout=60)
    assert fetched == shown
