"""The repository passphrase, read from its file for each borg run that needs it.

The daemon reads ``encryption.passphrase_file``; ``coffre recover`` reads the
file typed from the paper copy. Both read it the same way (the bytes, without
the final newline an editor or ``echo`` adds), and refuse an empty one rather
than hand borg an empty passphrase; only the advice differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coffre.core.errors import PassphraseUnavailable

__all__ = ["ON_THE_BOX", "PassphraseHints", "read_passphrase"]


@dataclass(frozen=True)
class PassphraseHints:
    """What to do when the file cannot be read (``unreadable``) or is ``empty``."""

    unreadable: str
    empty: str


#: The daemon's: the file belongs on the box, its copy is escrowed.
ON_THE_BOX = PassphraseHints(
    unreadable="put it back (0600, root) from the escrowed copy; backups resume by themselves",
    empty="write the repository passphrase in it (from the escrowed copy)",
)


def read_passphrase(path: Path, hints: PassphraseHints = ON_THE_BOX) -> bytes:
    """The passphrase file's content, without its final newline (``\\n`` or ``\\r\\n``).

    Raises PassphraseUnavailable, with ``hints``' advice, when it cannot be
    read or is empty: borg is then not started (in the daemon, the job fails
    with that kind and the daemon goes on).
    """
    try:
        passphrase = path.read_bytes().rstrip(b"\r\n")
    except OSError as error:
        raise PassphraseUnavailable(
            f"cannot read the passphrase file {path}: {error.strerror or error}",
            hint=hints.unreadable,
        ) from error
    if not passphrase:
        raise PassphraseUnavailable(f"the passphrase file {path} is empty", hint=hints.empty)
    return passphrase
