"""What the person gives ``coffre recover``, checked before any network.

The repository's URL (:func:`parse_source`), the host key's fingerprint read
by the host's operator (:func:`check_fingerprint`), the passphrase file
(:func:`read_passphrase`) and the typed paper key (:func:`read_paper_keys`,
each line checked as borg's own reader does: :mod:`coffre.core.paper_key`).
A typo is reported here, naming the flag or the line, before anything is
sent to the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from coffre.borg import passphrase
from coffre.borg.passphrase import PassphraseHints
from coffre.core import paper_key
from coffre.core.errors import PassphraseUnavailable, UsageError
from coffre.core.paper_key import PaperKey
from coffre.core.sshkeys import SshUrl, parse_url

__all__ = ["Source", "check_fingerprint", "parse_source", "read_paper_keys", "read_passphrase"]

_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")

#: Where the recovery's passphrase comes from: the paper copy, typed into a file.
_FROM_PAPER = PassphraseHints(
    unreadable="type the passphrase from the paper copy into a file "
    "(umask 077; printf '%s' 'PASSPHRASE' > FILE) and give it with --passphrase-file",
    empty="type the passphrase in it",
)


@dataclass(frozen=True)
class Source:
    """The offsite repository: its URL's parts and the location borg takes."""

    url: SshUrl

    @property
    def location(self) -> str:
        """``ssh://user@host:port/path``, as borg takes it (IPv6 hosts in brackets)."""
        return f"ssh://{self.url.user}@{self._host}:{self.url.port}{self.url.path}"

    @property
    def public(self) -> str:
        """``ssh://host:port/path``: the URL without the account, for messages and the audit."""
        return f"ssh://{self._host}:{self.url.port}{self.url.path}"

    @property
    def _host(self) -> str:
        return f"[{self.url.host}]" if ":" in self.url.host else self.url.host


def parse_source(text: str) -> Source:
    """The offsite repository of ``--from ssh://user@host:port/path``; UsageError if malformed."""
    try:
        return Source(parse_url(text))
    except ValueError as error:
        raise UsageError(
            f"--from: {error}",
            hint="give the repository's URL as the host's operator wrote it, "
            "e.g. ssh://cabinet@hds1.example.fr:22/srv/borg/cabinet",
        ) from None


def check_fingerprint(text: str) -> str:
    """``text`` if it is an SSH key fingerprint ``SHA256:`` + 43 base64 characters.

    Raises UsageError otherwise (an MD5 ``aa:bb:...`` one included): the
    fingerprint must come from the host's operator, as ``ssh-keygen -lf`` prints it.
    """
    if not _FINGERPRINT.fullmatch(text):
        raise UsageError(
            f"--host-key {text!r} is not a fingerprint like SHA256:AbC... (43 characters after "
            "SHA256:)",
            hint="ask the host's operator for it: ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub on the host",
        )
    return text


def read_passphrase(path: Path) -> bytes:
    """The passphrase in the file ``path``, without its final newline (as the daemon reads it).

    Raises UsageError (exit code 2: a flag names a wrong file) when it cannot
    be read or is empty.
    """
    try:
        return passphrase.read_passphrase(path, _FROM_PAPER)
    except PassphraseUnavailable as error:
        raise UsageError(error.message, hint=error.hint) from None


def read_paper_keys(path: Path) -> tuple[PaperKey, ...]:
    """Every paper key in the text file ``path``, each checked line by line.

    Raises UsageError when the file cannot be read or is not text,
    PaperKeyInvalid (exit code 2) naming the line with a typo.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(
            f"cannot read the paper key file {path}: {error.strerror or error}",
            hint="type the paper key (the id line and every numbered line) into a text file",
        ) from None
    except UnicodeDecodeError:
        raise UsageError(
            f"the paper key file {path} is not text", hint="give the typed paper key"
        ) from None
    try:
        return paper_key.parse(text)
    except paper_key.PaperKeyInvalid as error:
        raise paper_key.PaperKeyInvalid(f"{path}: {error.message}", hint=error.hint) from None
