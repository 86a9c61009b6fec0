"""Opening the offsite repository on a new box: its key checked against the paper key.

:func:`open_repository` reads the repository's key (``borg key export``, no
passphrase needed), makes sure the paper key is the key of this repository
(its id's first 18 hex digits), imports the paper key when the repository's
key is missing or unreadable (``borg key import --paper``, its lines fed to
borg's prompts), then lists the archives with the passphrase.

What borg 1.4.5 says when the repository's key is gone: an empty or missing
``key =`` entry gives ``RepoKeyNotFoundError`` (exit code 44, "No key entry
found in the config of repository ..."), from ``borg key export`` and from
every command that needs the key; key data that is not base64/msgpack gives
``KeyfileInvalidError`` (40); a ``keyfile`` repository whose key file is
absent gives ``KeyfileNotFoundError`` (42). Key data damaged in a way that
still parses fails its HMAC and looks exactly like a wrong passphrase
(``PassphraseWrong``, 52): the repository's key is then compared with the
paper key to tell the two apart.

Everything borg keeps (security dir, cache, and the key of a ``keyfile``
repository) lives in the private temporary directory of the caller's runner.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from coffre.borg import argv, parse
from coffre.borg.protocol import StdinBorg
from coffre.borg.runner import BorgResult
from coffre.core import paper_key
from coffre.core.errors import BorgError, BorgWrongPassphrase, CoffreError
from coffre.core.model import Archive
from coffre.core.paper_key import PaperKey, PaperKeyMismatch

__all__ = [
    "KEY_MISSING",
    "KEY_UNREADABLE",
    "Repository",
    "RepositoryKeyUnusable",
    "import_paper_key",
    "open_repository",
]

#: borg's msgids (1.4.5) for a key that is not there: empty ``key =`` entry of a
#: repokey repository, or no key file of a keyfile one (see the module doc).
KEY_MISSING = frozenset({"RepoKeyNotFoundError", "KeyfileNotFoundError"})
#: ... and for key data that no passphrase can open: nobody loses anything when
#: the paper key replaces it.
KEY_UNREADABLE = frozenset({"KeyfileInvalidError"})


class RepositoryKeyUnusable(CoffreError):
    """The passphrase does not open the repository's key, which differs from the paper key."""

    kind = "repository_key_unusable"


@dataclass(frozen=True)
class Repository:
    """The offsite repository as opened for the recovery.

    ``id``: its full id (64 hex); ``archives``: every archive, checkpoints too,
    oldest first; ``paper_key``: the key of the text that belongs to it;
    ``key_imported``: whether the paper key was written into the repository;
    ``paper_key_current``: whether the repository's key (as found) is the
    paper key byte for byte (False: the key was re-encrypted since the paper
    was printed, e.g. a passphrase change, or is damaged; None: the
    repository had no key).
    """

    id: str
    archives: tuple[Archive, ...]
    paper_key: PaperKey
    key_imported: bool
    paper_key_current: bool | None


@dataclass(frozen=True)
class _FoundKey:
    id: str
    blob: bytes


async def open_repository(
    borg: StdinBorg,
    location: str,
    keys: Sequence[PaperKey],
    *,
    replace_key: bool = False,
    on_step: Callable[[str], None] = lambda _: None,
) -> Repository:
    """Check the paper key against the repository, import it if needed, list the archives.

    ``keys`` are the paper keys given (several when the text is the printout
    of several repositories); ``replace_key`` writes the paper key into the
    repository even when it has a key (for damage borg takes for a wrong
    passphrase); ``on_step`` receives one sentence per step, for people.

    Order: the repository's key is read without the passphrase; a paper key
    of another repository is refused there. A repository without a key (or
    with unreadable key data) gets the paper key. Then the archives are
    listed with the passphrase. When the passphrase does not open the
    repository's key: if that key is the paper key, the passphrase is wrong
    (BorgWrongPassphrase); if it differs, it is damaged or was re-encrypted
    after the paper was printed, and borg cannot tell which:
    RepositoryKeyUnusable says to run again with ``replace_key``.

    Raises PaperKeyMismatch, BorgWrongPassphrase, RepositoryKeyUnusable and
    the BorgError of any other failure (unreachable host, no repository...).
    """
    found = await _repository_key(borg, location)
    current: bool | None = None
    if found is None:
        on_step("the repository has no key: importing the paper key")
        key = await import_paper_key(borg, location, keys)
    else:
        key = paper_key.for_repository(keys, found.id)
        current = key.key == found.blob
        on_step(
            f"repository {found.id}: the paper key is its key"
            + ("" if current else " (but not the copy the repository holds now)")
        )
        if replace_key:
            on_step("replacing the repository's key with the paper key (--replace-key)")
            key = await import_paper_key(borg, location, [key])
    imported = found is None or replace_key
    try:
        listing = await borg.run(argv.list_archives(location))
    except BorgError as error:
        if imported or error.msgid not in KEY_MISSING | KEY_UNREADABLE:
            raise _not_opened(error, imported=imported, paper_key_current=current) from None
        # The key export found a key, but borg cannot use it: the paper key replaces it.
        on_step(f"the repository's key cannot be used ({error.message}): importing it")
        key = await import_paper_key(borg, location, [key])
        imported = True
        try:
            listing = await borg.run(argv.list_archives(location))
        except BorgError as again:
            raise _after_import(again) from None
    return _opened(listing, key, key_imported=imported, paper_key_current=current)


def _opened(
    listing: BorgResult, key: PaperKey, *, key_imported: bool, paper_key_current: bool | None
) -> Repository:
    """The repository of ``borg list --json``'s ``listing``; PaperKeyMismatch if not ``key``'s."""
    data = listing.json()
    repository_id = parse.repository_id(data)
    paper_key.check_belongs(key, repository_id)
    return Repository(
        id=repository_id,
        archives=tuple(parse.archives(data)),
        paper_key=key,
        key_imported=key_imported,
        paper_key_current=paper_key_current,
    )


async def import_paper_key(borg: StdinBorg, location: str, keys: Sequence[PaperKey]) -> PaperKey:
    """Write the paper key that belongs to ``location``'s repository into it; return that key.

    Each key of ``keys`` is offered in turn to ``borg key import --paper``,
    which refuses a key of another repository (``RepoIdMismatch``). For a
    repokey repository the key goes into the repository's ``config`` on the
    host (borg serve allows it even ``--append-only``); for a keyfile one,
    into borg's keys dir (the caller's temporary one).

    Raises PaperKeyMismatch when no key belongs to the repository, BorgError
    when borg fails or does not take the key.
    """
    for key in keys:
        try:
            result = await borg.run(
                argv.key_import_paper(location), use_passphrase=False, stdin=key.stdin()
            )
        except BorgError as error:
            if error.msgid == "RepoIdMismatch":
                continue
            raise
        # borg ends with exit code 0 when it gave up (" - aborted" after EOF on its
        # prompts): its stdout says so; our own checks should have made that impossible.
        if "aborted" in result.stdout:
            said = [
                line.strip()
                for line in result.stdout.replace("id:", "\n").splitlines()
                if line.strip() and not re.fullmatch(r"[\d:\s]*", line)
            ]
            raise BorgError(
                "borg key import did not take the paper key: "
                + ("; ".join(dict.fromkeys(said)) or "aborted"),
                rc=result.rc,
                hint="check the paper key text; run borg key import --paper by hand to see",
            )
        return key
    prefixes = ", ".join(f"{k.repository_prefix}..." for k in keys)
    raise PaperKeyMismatch(
        f"the paper key is not the key of this repository (borg refused "
        f"{'it' if len(keys) == 1 else f'all {len(keys)} keys'}: {prefixes})",
        hint="nothing was restored; find the paper key printed for this repository "
        "(its id line shows the repository id's first 18 digits)",
    )


async def _repository_key(borg: StdinBorg, location: str) -> _FoundKey | None:
    """The repository's id and key as stored (None when it has no key); BorgError otherwise."""
    try:
        result = await borg.run(argv.key_export(location), use_passphrase=False)
    except BorgError as error:
        if error.msgid in KEY_MISSING:
            return None
        raise
    first, _, rest = result.stdout.partition("\n")
    words = first.split()
    if len(words) != 2 or words[0] != "BORG_KEY" or not re.fullmatch(r"[0-9a-f]{64}", words[1]):
        raise BorgError(f"unexpected output of borg key export: {first[:80]!r}", rc=result.rc)
    try:
        blob = base64.b64decode("".join(rest.split()), validate=True)
    except (binascii.Error, ValueError):
        # The key entry holds something that is not base64: borg cannot use it either.
        blob = b""
    return _FoundKey(words[1], blob)


def _not_opened(error: BorgError, *, imported: bool, paper_key_current: bool | None) -> CoffreError:
    """What to raise when listing failed, with no key import left to try.

    Just imported: the passphrase does not open the paper key. The
    repository's key is the paper key: the passphrase is wrong. It differs
    and borg says "wrong passphrase" (or fails on the key's data): damaged or
    re-encrypted, RepositoryKeyUnusable. Anything else: ``error`` itself.
    """
    if imported:
        return _after_import(error)
    if paper_key_current:
        return _wrong_passphrase(error)
    if isinstance(error, BorgWrongPassphrase) or error.msgid == "Exception":
        return RepositoryKeyUnusable(
            f"the passphrase does not open the repository's key ({error.message}), and that "
            "key is not the paper key: it is damaged, or was re-encrypted after the paper "
            "key was printed (a passphrase change)",
            hint="if the passphrase is the one written with the paper key, run again with "
            "--replace-key: the paper key then replaces the repository's key (borg checks "
            "it belongs to this repository)",
        )
    return error


def _passphrase_hint(error: BorgError, hint: str) -> BorgError:
    """``error`` with ``hint`` when borg took the passphrase for wrong; other errors as they are."""
    if not isinstance(error, BorgWrongPassphrase):
        return error
    return BorgWrongPassphrase(error.message, rc=error.rc, msgid=error.msgid, hint=hint)


def _wrong_passphrase(error: BorgError) -> BorgError:
    return _passphrase_hint(
        error,
        "the repository's key is the paper key, so the passphrase file is wrong: "
        "check it against the paper copy (a missing or extra character, a space at the end)",
    )


def _after_import(error: BorgError) -> BorgError:
    return _passphrase_hint(
        error,
        "the paper key was imported (its checksums are right) but the passphrase file "
        "does not open it: check the passphrase against the paper copy",
    )
