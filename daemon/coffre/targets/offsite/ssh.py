"""The SSH side of offsite targets, before borg: the box's key, host keys, the preflight.

borg itself goes over OpenSSH (``borg_rsh``); this module uses paramiko to
look at a host first, so that each way of failing has its own clear error:
the host does not answer (:class:`OffsiteUnreachable`), it shows a key that
is not pinned (:class:`HostKeyMismatch`: nothing is sent, not even the user
name), or it refuses the box's key (:class:`OffsiteAuthRefused`).

Every function here blocks (sockets, files): the daemon calls them through
``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coffre.core.errors import (
    HostKeyMismatch,
    OffsiteAuthRefused,
    OffsiteUnreachable,
    StateError,
)
from coffre.core.sshkeys import PublicKey, known_hosts_line, parse_public_key
from coffre.storage.atomic import write_atomically

if TYPE_CHECKING:
    import paramiko

# paramiko and cryptography are imported where they are used: they weigh about
# 15 MiB, and an idle daemon (or one without offsite target) never needs them.

__all__ = [
    "borg_rsh",
    "ensure_key",
    "fetch_host_key",
    "preflight",
    "read_public_key",
    "write_known_hosts",
    "write_state_file",
]

#: Seconds between keep-alives, and how many may go unanswered: a dead link
#: is noticed within a minute, and the upload is retried.
KEEPALIVE_INTERVAL = 15
KEEPALIVE_COUNT = 4

#: paramiko's names of the host key algorithms that show each OpenSSH key type.
_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    # An RSA host key signs with SHA-2 (paramiko 5 no longer offers SHA-1 "ssh-rsa").
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
}


# --- the box's key -------------------------------------------------------------


def ensure_key(path: Path, comment: str) -> tuple[PublicKey, bool]:
    """The box's ed25519 key at ``path``, created when missing; returns (public key, created).

    The private key is written 0600 (its directory 0700), unencrypted: the
    daemon must use it unattended; its power is only the host's forced
    command. ``path.pub`` gets the public key with ``comment``. Raises
    OSError when the file cannot be read or written, ValueError when the
    file there is not an OpenSSH private key.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if path.exists():
        return read_public_key(path), False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    # O_EXCL: two enrollments at once must not mix their keys.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "wb") as out:
        out.write(private)
        out.flush()
        os.fsync(out.fileno())
    public = parse_public_key(
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode("ascii")
    )
    write_state_file(path.with_name(path.name + ".pub"), f"{public.openssh} {comment}\n", 0o644)
    return public, True


def read_public_key(path: Path) -> PublicKey:
    """The public half of the OpenSSH private key file at ``path`` (OSError, ValueError)."""
    from cryptography.hazmat.primitives import serialization

    loaded = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    text = (
        loaded.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode("ascii")
    )
    return parse_public_key(text)


# --- host keys -------------------------------------------------------------------


@contextlib.contextmanager
def _transport(
    host: str, port: int, timeout: float, key_types: Sequence[str] = ()
) -> Iterator[paramiko.Transport]:
    """An SSH transport to ``host:port`` past the key exchange; OffsiteUnreachable if not."""
    import paramiko

    where = f"{host}:{port}"
    hint = (
        "check the box's internet link and the host's address in the configuration; "
        "the upload is retried, then tried again at the next nightly run"
    )
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as error:
        raise OffsiteUnreachable(f"{host}: unknown host ({error.strerror})", hint=hint) from None
    except TimeoutError:
        raise OffsiteUnreachable(
            f"{where} did not answer within {timeout:g} s", hint=hint
        ) from None
    except OSError as error:
        raise OffsiteUnreachable(
            f"{where} cannot be reached: {error.strerror or error}", hint=hint
        ) from None
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        if key_types:
            algorithms = [a for t in key_types for a in _ALGORITHMS.get(t, ())]
            # Ask for the pinned kinds of key only, so that a host holding several
            # keys shows one we can compare.
            transport.get_security_options().key_types = algorithms
        try:
            transport.start_client(timeout=timeout)
        except (paramiko.SSHException, OSError, EOFError) as error:
            raise OffsiteUnreachable(
                f"{where} answers but the SSH handshake failed: {error}", hint=hint
            ) from None
        yield transport
    finally:
        transport.close()


def fetch_host_key(
    host: str, port: int, *, timeout: float, key_types: Sequence[str] = ()
) -> PublicKey:
    """The host key ``host:port`` shows (of one of ``key_types`` when given).

    Only the key exchange happens: no user name and no key are sent. Raises
    OffsiteUnreachable.
    """
    with _transport(host, port, timeout, key_types) as transport:
        key = transport.get_remote_server_key()
        return PublicKey(key.get_name(), key.asbytes())


def preflight(
    *,
    host: str,
    port: int,
    user: str,
    key_file: Path,
    pinned: Sequence[PublicKey],
    timeout: float,
    target: str,
) -> PublicKey:
    """Check that ``host:port`` is the pinned host and takes the box's key; returns its key.

    The host key is compared before anything of ours is sent; then the box's
    key is offered for ``user`` and the connection is closed (no command
    runs, so the forced ``borg serve`` does not start). ``target`` names the
    target in messages.

    Raises OffsiteUnreachable, HostKeyMismatch, OffsiteAuthRefused, and
    OSError/ValueError when the box's key file cannot be read.
    """
    import paramiko

    with _transport(host, port, timeout, sorted({k.type for k in pinned})) as transport:
        shown = transport.get_remote_server_key()
        key = PublicKey(shown.get_name(), shown.asbytes())
        if not any(key.blob == p.blob for p in pinned):
            known = ", ".join(p.fingerprint for p in pinned)
            raise HostKeyMismatch(
                "host key mismatch (possible interception): not sending anything",
                hint=f"{host}:{port} shows {key.type} {key.fingerprint}, pinned is {known}. "
                "Ask the host's operator whether the key changed; only if they confirm this "
                f"fingerprint, run `coffre offsite enroll {target} --accept-host-key "
                f"{key.fingerprint}`",
            )
        private = paramiko.Ed25519Key(filename=str(key_file))
        try:
            transport.auth_publickey(user, private)
        except paramiko.AuthenticationException:
            raise OffsiteAuthRefused(
                f"{user}@{host}:{port} refused the box's SSH key",
                hint=f"the host must hold the line printed by `coffre offsite enroll {target}` "
                "in that account's authorized_keys",
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as error:
            raise OffsiteUnreachable(
                f"{host}:{port}: the connection dropped during authentication: {error}",
                hint="the upload is retried",
            ) from None
        return key


# --- files for OpenSSH ---------------------------------------------------------------


def write_known_hosts(path: Path, host: str, port: int, keys: Sequence[PublicKey]) -> None:
    """Write ``path`` as a known_hosts file pinning ``keys`` for ``host:port``, and nothing else.

    Written atomically (a borg starting meanwhile reads the old or the new
    file, never half of one), 0600. Raises StateError when the state
    directory cannot take it (its disk full).
    """
    lines = "".join(known_hosts_line(host, port, key) + "\n" for key in keys)
    write_state_file(path, lines, 0o600)


def borg_rsh(key_file: Path, known_hosts: Path, *, connect_timeout: int) -> str:
    """``BORG_RSH``: OpenSSH with the box's key, the pinned host keys only, keep-alives.

    ``-F none``: no ssh_config of the box applies; borg's HOME is its base
    dir, so nothing may come from ``~/.ssh`` either: every option is here.
    ``GlobalKnownHostsFile=/dev/null`` and ``UpdateHostKeys=no``: a key
    trusted elsewhere on the box, or offered by the host, is never accepted.
    """
    options = (
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={known_hosts}",
        "GlobalKnownHostsFile=/dev/null",
        "UpdateHostKeys=no",
        "CheckHostIP=no",
        "HashKnownHosts=no",
        "BatchMode=yes",
        "PasswordAuthentication=no",
        "KbdInteractiveAuthentication=no",
        "ForwardAgent=no",
        "ForwardX11=no",
        "ClearAllForwardings=yes",
        "ControlMaster=no",
        "ControlPath=none",
        f"ConnectTimeout={connect_timeout}",
        f"ServerAliveInterval={KEEPALIVE_INTERVAL}",
        f"ServerAliveCountMax={KEEPALIVE_COUNT}",
        "LogLevel=ERROR",
    )
    words = ["ssh", "-F", "none", "-i", str(key_file)]
    for option in options:
        words += ["-o", option]
    return shlex.join(words)


def write_state_file(path: Path, text: str, mode: int) -> None:
    """Replace ``path`` (under the state dir) with ``text`` whole, or leave it as it was.

    Its directory is created (0700) when missing; the write is
    :func:`coffre.storage.atomic.write_atomically`'s (durable, mode set
    before the content). Raises StateError (nothing half-written left
    behind) when the state directory cannot take it: its disk full, read-only.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(path, text.encode("ascii"), mode=mode)
    except OSError as error:
        raise StateError(
            f"cannot write {path}: {error.strerror or error}",
            hint=f"free space in {path.parent} (df -h); the next backup tries again",
        ) from error
