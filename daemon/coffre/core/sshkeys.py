"""Pure: SSH URLs, public keys in OpenSSH form, fingerprints, known_hosts lines.

No I/O and no paramiko here, so that the configuration checks and the CLI
can use them cheaply; ``coffre.targets.offsite.ssh`` does the talking to hosts.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

__all__ = [
    "HOST_KEY_TYPES",
    "PublicKey",
    "SshUrl",
    "authorized_keys_line",
    "fingerprint",
    "known_hosts_line",
    "parse_public_key",
    "parse_url",
]

#: Host key algorithms a pinned key may have (OpenSSH names).
HOST_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "ssh-rsa",
    }
)

# User names and hosts as OpenSSH takes them, nothing a shell or borg would read twice.
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
_PATH_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f{}\"'\\ ]|::")


@dataclass(frozen=True)
class SshUrl:
    """The parts of ``ssh://user@host:port/path`` (``host`` without IPv6 brackets)."""

    user: str
    host: str
    port: int
    path: str


@dataclass(frozen=True)
class PublicKey:
    """An SSH public key: its algorithm name and its blob (OpenSSH's base64, decoded)."""

    type: str
    blob: bytes

    @property
    def openssh(self) -> str:
        """``"type base64"``, as in authorized_keys and known_hosts files."""
        return f"{self.type} {base64.b64encode(self.blob).decode('ascii')}"

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` as ``ssh-keygen -lf`` prints it."""
        return fingerprint(self.blob)


def parse_url(text: str) -> SshUrl:
    """The parts of ``ssh://user@host[:port]/absolute/path``; ValueError saying what is wrong.

    The user is required (the HDS host gives each box its own account or
    key), the port defaults to 22, the path must be absolute (``/~/...`` for
    one under the account's home, as borg reads it) and plain: no spaces,
    quotes, braces (borg placeholders) or ``::``, since it also goes into the
    host's forced command.
    """
    if not text.startswith("ssh://"):
        raise ValueError(f"expected ssh://user@host:port/path, got {text!r}")
    parts: SplitResult = urlsplit(text)
    if parts.query or parts.fragment:
        raise ValueError(f"{text!r}: an SSH repository URL has no '?' or '#' part")
    if parts.password is not None:
        raise ValueError(f"{text!r}: no password in the URL (the box uses its SSH key)")
    user = parts.username or ""
    if not _USER.fullmatch(user):
        raise ValueError(f"{text!r}: expected a user name before '@' (ssh://user@host/path)")
    netloc_host = parts.netloc.rpartition("@")[2]
    host_part = netloc_host.rsplit(":", 1)[0] if not netloc_host.endswith("]") else netloc_host
    if not _HOST.fullmatch(host_part):
        raise ValueError(f"{text!r}: {host_part!r} is not a host name or address")
    try:
        port = parts.port or 22
    except ValueError:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535") from None
    path = parts.path
    if not path.startswith("/") or path.rstrip("/") in ("", "/~", "/."):
        raise ValueError(f"{text!r}: expected the repository's path after the host, e.g. /srv/x")
    if _PATH_FORBIDDEN.search(path):
        raise ValueError(
            f"{text!r}: the path may not hold spaces, quotes, backslashes, braces or '::'"
        )
    return SshUrl(user=user, host=host_part.strip("[]"), port=port, path=path)


def parse_public_key(text: str) -> PublicKey:
    """A key from ``"type base64 [comment]"``; ValueError unless it is a well-formed one.

    The blob must decode and start with its own type name, as every SSH
    public key does: a key pasted cut short or with the wrong type is caught here.
    """
    fields = text.split()
    if len(fields) not in (2, 3):
        raise ValueError(f'expected "type base64" (e.g. "ssh-ed25519 AAAA..."), got {text!r}')
    kind, encoded = fields[0], fields[1]
    if kind not in HOST_KEY_TYPES:
        known = ", ".join(sorted(HOST_KEY_TYPES))
        raise ValueError(f"unknown key type {kind!r}; expected one of {known}")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the key of type {kind} is not valid base64") from None
    parts = _fields(blob)
    if parts is None or len(parts) != _FIELDS[kind]:
        raise ValueError(f"the {kind} key is cut short or damaged")
    if parts[0] != kind.encode("ascii"):
        raise ValueError(f"the key's data is not a {kind} key (mislabelled?)")
    return PublicKey(kind, blob)


#: How many length-prefixed fields the blob of each key type holds (RFC 4253, 5656, 8709).
_FIELDS = {
    "ssh-ed25519": 2,
    "ecdsa-sha2-nistp256": 3,
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "ssh-rsa": 3,
}


def _fields(blob: bytes) -> list[bytes] | None:
    """The length-prefixed fields of a key blob, or None unless they fill it exactly."""
    fields = []
    offset = 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            return None
        (length,) = struct.unpack(">I", blob[offset : offset + 4])
        offset += 4
        if offset + length > len(blob):
            return None
        fields.append(blob[offset : offset + length])
        offset += length
    return fields


def fingerprint(blob: bytes) -> str:
    """The SHA256 fingerprint of a public key blob: ``SHA256:`` + base64 without padding."""
    import hashlib  # loads OpenSSL: only when a fingerprint is shown

    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def known_hosts_line(host: str, port: int, key: PublicKey) -> str:
    """The known_hosts line pinning ``key`` for ``host:port`` (OpenSSH's ``[host]:port`` form)."""
    name = host if port == 22 and ":" not in host else f"[{host}]:{port}"
    return f"{name} {key.openssh}"


def authorized_keys_line(key: PublicKey, repository_path: str, comment: str) -> str:
    """The line the HDS host puts in the box's ``authorized_keys``.

    ``restrict`` turns off forwarding, pty and user rc; the forced command
    lets the key run only an append-only ``borg serve`` confined to the
    repository: whatever the box asks, it can add archives but never erase
    history. ``repository_path`` is the URL's path; one under the home
    (``/~/x``) is written ``~/x``, which the account's shell expands.
    """
    path = repository_path
    if path.startswith("/~/"):
        path = path[1:]
    command = f"borg serve --append-only --restrict-to-repository {path}"
    return f'restrict,command="{command}" {key.openssh} {comment}'
