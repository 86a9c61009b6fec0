"""The offsite host, checked before borg connects: its key, then the command borg's ssh runs.

Never trust on first use: the host key must have the fingerprint the host's
operator read out (:func:`verify_host_key`; only key exchanges happen before,
nothing of ours is sent), and borg's ssh then knows that key and no other
(:func:`ssh_command`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from coffre.core.errors import HostKeyMismatch, OffsiteUnreachable
from coffre.core.sshkeys import HOST_KEY_TYPES, PublicKey, SshUrl
from coffre.targets.offsite import ssh

__all__ = ["CONNECT_TIMEOUT", "RECOVER_KEY_NAME", "ssh_command", "verify_host_key"]

#: File name of the new box's SSH key for the recovery (under ``<state>/ssh/``).
RECOVER_KEY_NAME = "recover_ed25519"

#: Seconds to reach the host (TCP, SSH handshake), for paramiko and for borg's ssh.
CONNECT_TIMEOUT = 30


def verify_host_key(
    url: SshUrl,
    expected: str,
    *,
    timeout: float = CONNECT_TIMEOUT,
    fetch: Callable[..., PublicKey] = ssh.fetch_host_key,
) -> PublicKey:
    """The host key of ``url``'s host whose fingerprint is ``expected``.

    Only key exchanges happen (no user name, no key of ours is sent). The
    host's preferred key is asked first, then each other key type in turn,
    since the operator may read the fingerprint of any of the host's keys.
    ``fetch`` is :func:`coffre.targets.offsite.ssh.fetch_host_key` (a fake in tests).

    Raises HostKeyMismatch (exit code 1: possible interception) naming what
    the host showed, OffsiteUnreachable when it cannot be reached.
    """
    shown: list[PublicKey] = []
    first = fetch(url.host, url.port, timeout=timeout)
    if first.fingerprint == expected:
        return first
    shown.append(first)
    for kind in sorted(HOST_KEY_TYPES - {first.type}):
        try:
            key = fetch(url.host, url.port, timeout=timeout, key_types=(kind,))
        except OffsiteUnreachable:
            continue  # the host has no key of this type: the handshake fails
        except ValueError:
            # paramiko 5 refuses to even ask for a type it dropped ("ssh-rsa",
            # which coffre.targets.offsite.ssh asks for an RSA key): that key cannot be checked.
            continue
        if key.fingerprint == expected:
            return key
        if key not in shown:
            shown.append(key)
    showed = ", ".join(f"{k.type} {k.fingerprint}" for k in shown)
    raise HostKeyMismatch(
        "host key mismatch (possible interception): not sending anything",
        hint=f"{url.host}:{url.port} shows {showed}, not {expected}. Check the fingerprint "
        "with the host's operator (on the host: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub); "
        "if the host key really changed, run again with the new one they read you",
    )


def ssh_command(workdir: Path, url: SshUrl, host_key: PublicKey, key_file: Path) -> str:
    """``BORG_RSH`` for the recovery: the new box's key, ``host_key`` as the only known host.

    Writes ``workdir/known_hosts`` (0600) pinning ``host_key`` for the host.
    Raises StateError when it cannot be written.
    """
    known_hosts = workdir / "known_hosts"
    ssh.write_known_hosts(known_hosts, url.host, url.port, [host_key])
    return ssh.borg_rsh(key_file, known_hosts, connect_timeout=CONNECT_TIMEOUT)
