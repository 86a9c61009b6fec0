"""Disaster recovery: a new box gets the practice's data back from an offsite host.

After a fire or a theft, all that is left is the offsite repository (Borg over
SSH, ``borg serve --append-only`` on the HDS host), the passphrase and the
paper key. ``coffre recover`` (``coffre.cli.recover``) runs these steps in the
CLI process, without the daemon and without trusting anything of a previous
box:

1. the paper key is read and checked line by line before any network
   (:mod:`coffre.core.paper_key`);
2. the host key the HDS host shows must have the fingerprint its operator
   gave: :func:`verify_host_key` (nothing of ours is sent before; never trust
   on first use), then :func:`ssh_command` pins it for borg's ssh;
3. :func:`open_repository`: the repository's key is read (``borg key
   export``, no passphrase needed), the paper key must be the key of this
   repository (its id's first 18 hex digits), then the archives are listed
   with the passphrase;
4. when the repository's key is missing or unreadable (the ``key`` entry of
   the repository's ``config`` emptied or damaged on the host), the paper key
   is imported (``borg key import --paper``, its lines fed to borg's prompts)
   and the listing tried again;
5. :func:`recover`: the archive asked (default the latest complete one),
   restored with :func:`coffre.support.restore.restore_archive`, as
   :func:`plan` decides where.

Everything borg keeps (security dir, cache, and the key of a ``keyfile``
repository) lives in a private temporary directory given by the caller, so
nothing of a previous box is used and nothing is left behind.

What borg 1.4.5 says when the repository's key is gone: an empty or missing
``key =`` entry gives ``RepoKeyNotFoundError`` (exit code 44, "No key entry
found in the config of repository ..."), from ``borg key export`` and from
every command that needs the key; key data that is not base64/msgpack gives
``KeyfileInvalidError`` (40); a ``keyfile`` repository whose key file is
absent gives ``KeyfileNotFoundError`` (42). Key data damaged in a way that
still parses fails its HMAC and looks exactly like a wrong passphrase
(``PassphraseWrong``, 52): the repository's key is then compared with the
paper key to tell the two apart (see :func:`open_repository`).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

from coffre.borg import argv, parse, passphrase
from coffre.borg.passphrase import PassphraseHints
from coffre.borg.protocol import StdinBorg
from coffre.borg.records import Progress
from coffre.core import paper_key, restore_plan
from coffre.core.errors import (
    BorgError,
    BorgWrongPassphrase,
    CoffreError,
    HostKeyMismatch,
    OffsiteUnreachable,
    PassphraseUnavailable,
    UsageError,
    WouldOverwrite,
)
from coffre.core.model import Archive, Item
from coffre.core.paper_key import PaperKey, PaperKeyMismatch
from coffre.core.restore_plan import Wanted
from coffre.core.sshkeys import HOST_KEY_TYPES, PublicKey, SshUrl, parse_url
from coffre.support.restore import RestoreReport, list_items, restore_archive
from coffre.targets.offsite import ssh

__all__ = [
    "RECOVER_KEY_NAME",
    "Plan",
    "Repository",
    "RepositoryKeyUnusable",
    "Source",
    "archive_roots",
    "check_fingerprint",
    "choose_archive",
    "import_paper_key",
    "in_the_way",
    "open_repository",
    "parse_source",
    "plan",
    "read_paper_keys",
    "read_passphrase",
    "recover",
    "ssh_command",
    "verify_host_key",
]

#: File name of the new box's SSH key for the recovery (under ``<state>/ssh/``).
RECOVER_KEY_NAME = "recover_ed25519"

#: Seconds to reach the host (TCP, SSH handshake), for paramiko and for borg's ssh.
CONNECT_TIMEOUT = 30

#: borg's msgids (1.4.5) for a key that is not there: empty ``key =`` entry of a
#: repokey repository, or no key file of a keyfile one (see the module doc).
KEY_MISSING = frozenset({"RepoKeyNotFoundError", "KeyfileNotFoundError"})
#: ... and for key data that no passphrase can open: nobody loses anything when
#: the paper key replaces it.
KEY_UNREADABLE = frozenset({"KeyfileInvalidError"})

_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
# A coffre archive name: "<prefix>-<local date and time>", "-N" when made twice in a second.
_COFFRE_NAME = re.compile(r"(?P<prefix>.+)-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:-\d+)?")


class RepositoryKeyUnusable(CoffreError):
    """The passphrase does not open the repository's key, which differs from the paper key."""

    kind = "repository_key_unusable"


# --- the inputs, checked before any network --------------------------------------------


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


#: Where the recovery's passphrase comes from: the paper copy, typed into a file.
_FROM_PAPER = PassphraseHints(
    unreadable="type the passphrase from the paper copy into a file "
    "(umask 077; printf '%s' 'PASSPHRASE' > FILE) and give it with --passphrase-file",
    empty="type the passphrase in it",
)


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


# --- the host ------------------------------------------------------------------------


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
    Raises OSError when it cannot be written.
    """
    known_hosts = workdir / "known_hosts"
    ssh.write_known_hosts(known_hosts, url.host, url.port, [host_key])
    return ssh.borg_rsh(key_file, known_hosts, connect_timeout=CONNECT_TIMEOUT)


# --- the repository and its key ----------------------------------------------------------


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


def key_export_argv(location: str) -> tuple[str, ...]:
    """``borg key export REPO -``: the repository's key as borg stores it, on stdout.

    No passphrase is needed: the key stays encrypted. (``location`` comes
    from :func:`parse_source`, already checked.)
    """
    return ("key", "export", location, "-")


def key_import_paper_argv(location: str) -> tuple[str, ...]:
    """``borg key import --paper REPO``: borg asks the paper key's lines on stdin."""
    return ("key", "import", "--paper", location)


async def _repository_key(borg: StdinBorg, location: str) -> _FoundKey | None:
    """The repository's id and key as stored (None when it has no key); BorgError otherwise."""
    try:
        result = await borg.run(key_export_argv(location), use_passphrase=False)
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
                key_import_paper_argv(location), use_passphrase=False, stdin=key.stdin()
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
    key: PaperKey | None = None
    current: bool | None = None
    if found is not None:
        key = paper_key.for_repository(keys, found.id)
        current = key.key == found.blob
        on_step(
            f"repository {found.id}: the paper key is its key"
            + ("" if current else " (but not the copy the repository holds now)")
        )
    else:
        on_step("the repository has no key: importing the paper key")
    imported = False
    if found is None or replace_key:
        if found is not None:
            on_step("replacing the repository's key with the paper key (--replace-key)")
        key = await import_paper_key(borg, location, keys if key is None else [key])
        imported = True
    assert key is not None
    try:
        listing = await borg.run(argv.list_archives(location))
    except BorgError as error:
        if imported:
            raise _after_import(error) from None
        if error.msgid in KEY_MISSING | KEY_UNREADABLE:
            on_step(f"the repository's key cannot be used ({error.message}): importing it")
            key = await import_paper_key(borg, location, [key])
            imported = True
            try:
                listing = await borg.run(argv.list_archives(location))
            except BorgError as again:
                raise _after_import(again) from None
        elif current:
            raise _wrong_passphrase(error) from None
        elif isinstance(error, BorgWrongPassphrase) or error.msgid == "Exception":
            raise RepositoryKeyUnusable(
                f"the passphrase does not open the repository's key ({error.message}), and that "
                "key is not the paper key: it is damaged, or was re-encrypted after the paper "
                "key was printed (a passphrase change)",
                hint="if the passphrase is the one written with the paper key, run again with "
                "--replace-key: the paper key then replaces the repository's key (borg checks "
                "it belongs to this repository)",
            ) from None
        else:
            raise
    data = listing.json()
    repository_id = parse.repository_id(data)
    paper_key.check_belongs(key, repository_id)
    return Repository(
        id=repository_id,
        archives=tuple(parse.archives(data)),
        paper_key=key,
        key_imported=imported,
        paper_key_current=current,
    )


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


# --- what to restore, and where --------------------------------------------------------


def choose_archive(
    archives: Sequence[Archive], *, name: str | None, day: date | None, tz: ZoneInfo
) -> Archive:
    """The archive asked: by ``name``, else the latest complete one (of ``day`` when given).

    The old box's archive prefix is not known on a new box (it defaults to
    the hostname): every coffre archive (``<prefix>-<date>T<time>``) counts,
    whatever its prefix. Raises UsageError saying what the repository holds
    when there is no such archive.
    """
    prefixes = sorted({m["prefix"] for a in archives if (m := _COFFRE_NAME.fullmatch(a.name))})
    if name is not None:
        prefixes = prefixes or [""]
    picks = [
        pick
        for prefix in prefixes
        if (pick := restore_plan.pick_archive(archives, prefix, name=name, day=day, tz=tz))
    ]
    if picks:
        return max(picks)
    what = (
        f"no archive named {name}"
        if name is not None
        else f"no complete archive of {day.isoformat()}"
        if day is not None
        else "no complete archive"
    )
    return _none(what, archives, tz)


def _none(what: str, archives: Sequence[Archive], tz: ZoneInfo) -> Archive:
    latest = sorted(archives)[-3:]
    shown = ", ".join(f"{a.name} ({a.time.astimezone(tz):%Y-%m-%d %H:%M})" for a in latest)
    raise UsageError(
        f"the repository holds {what}"
        + (f" (the latest: {shown})" if shown else " (it holds no archive at all)"),
        hint="see them all with --list",
    )


def archive_roots(items: Sequence[Item]) -> list[PurePosixPath]:
    """The paths the old box backed up: the archive's items no other item contains.

    ``borg create /srv/coffre/partage`` stores ``srv/coffre/partage`` and what
    is under it, not ``srv`` nor ``srv/coffre``: the items without an
    archived parent are the old box's ``[source] paths``, in borg's order
    (the order of the configuration). Returned absolute.
    """
    present = {item.path for item in items}
    roots: list[PurePosixPath] = []
    for item in items:
        path = PurePosixPath(item.path)
        if not any(str(parent) in present for parent in path.parents):
            root = PurePosixPath("/") / path
            if root not in roots:
                roots.append(root)
    return roots


@dataclass(frozen=True)
class Plan:
    """What to restore (``wanted``) and where: into ``to``, or each root into itself."""

    wanted: tuple[Wanted, ...]
    to: Path | None
    into_root: bool


def plan(
    roots: Sequence[PurePosixPath],
    asked: Sequence[str],
    *,
    to: Path | None,
    share_paths: Sequence[Path],
) -> Plan:
    """Where the recovery writes, from the archive's ``roots`` and the new box's configuration.

    ``asked``: the paths given (relative to the first root, or absolute;
    none: everything). ``to``: ``--to``. ``share_paths``: the ``[source]
    paths`` of the new box's configuration (empty when there is none).

    - With ``to``: the paths land in it with the share's folders stripped
      (``/srv/coffre/partage/Patients/x`` -> ``TO/Patients/x``); with
      several roots each keeps its whole path instead (``TO/srv/a/...``),
      so that two roots never mix.
    - Without: a root the configuration backs up goes back into itself;
      the one root of an archive whose path the new configuration does not
      back up goes into the configuration's share (the share moved).

    Raises UsageError for a path outside the roots, and when nothing says
    where to write (no ``to`` and no configuration, or several roots the
    configuration does not know).
    """
    if not roots:
        raise UsageError("the archive is empty: there is nothing to recover")
    wanted = (
        [restore_plan.resolve(path, roots) for path in asked]
        if asked
        else [Wanted(root=root, stored=str(root)[1:]) for root in roots]
    )
    if to is not None:
        if len(roots) > 1:
            whole = PurePosixPath("/")  # strip nothing: Wanted.strip is then 0
            wanted = [Wanted(root=whole, stored=w.stored) for w in wanted]
        return Plan(tuple(wanted), to=to, into_root=False)
    shown = ", ".join(str(r) for r in roots)
    if not share_paths:
        raise UsageError(
            "no configuration says where the share is: give --to",
            hint=f"the archive holds {shown}; e.g. --to /srv/coffre/partage (the share of a new "
            "box) or --to /root/recovered to look first",
        )
    shares = {PurePosixPath(p) for p in share_paths}
    used = {w.root for w in wanted}
    if used <= shares:
        if len(used) == 1:
            return Plan(tuple(wanted), to=Path(next(iter(used))), into_root=False)
        return Plan(tuple(wanted), to=None, into_root=True)
    if len(roots) == 1:
        return Plan(tuple(wanted), to=share_paths[0], into_root=False)
    raise UsageError(
        f"the archive holds {shown}, which the configuration does not all back up "
        f"({', '.join(str(p) for p in share_paths)})",
        hint="give --to DIR: each path is then restored under DIR with its whole path",
    )


@dataclass(frozen=True)
class Recovered:
    """A recovery done: from which archive, and what :func:`restore_archive` wrote."""

    archive: Archive
    roots: tuple[PurePosixPath, ...]
    plan: Plan
    report: RestoreReport


def in_the_way(
    items: Sequence[Item],
    chosen: Plan,
    exists: Callable[[PurePosixPath], str | None],
) -> list[PurePosixPath]:
    """The places the recovery would write that something already holds (folders merge).

    ``exists(path)`` says what is there: None, ``"d"`` (a folder) or ``"-"``
    (anything else). Pure, from the listing: :func:`recover` refuses before
    borg downloads anything, where ``restore_archive`` would find the same
    clashes only after extracting the whole archive into its staging folder.
    """
    found = []
    for item in items:
        owner = next((w for w in chosen.wanted if _under(item.path, w.stored)), None)
        if owner is None:
            continue
        parts = PurePosixPath(item.path).parts[owner.strip :]
        if not parts:
            continue  # the root itself: never written, its place is the destination
        base = owner.root if chosen.into_root else PurePosixPath(chosen.to or owner.root)
        place = base.joinpath(*parts)
        there = exists(place)
        if there is None or (there == "d" and item.kind == "d"):
            continue
        found.append(place)
    return found


def _under(item_path: str, stored: str) -> bool:
    return item_path == stored or item_path.startswith(stored.rstrip("/") + "/")


def _exists(path: PurePosixPath) -> str | None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    return "d" if stat.S_ISDIR(mode) else "-"


async def recover(
    borg: StdinBorg,
    location: str,
    archive: Archive,
    asked: Sequence[str],
    *,
    to: Path | None,
    share_paths: Sequence[Path],
    overwrite: bool,
    on_progress: Callable[[Progress], None] | None = None,
) -> Recovered:
    """Restore ``asked`` (everything when empty) of ``archive`` where :func:`plan` says.

    The archive is listed once to find its roots (the old box's source
    paths, unknown on a new box), and to refuse at once, without
    ``overwrite``, what would replace files. Raises UsageError as
    :func:`plan` does, WouldOverwrite (nothing written), and what
    :func:`coffre.support.restore.restore_archive` raises: NotInArchive,
    WouldOverwrite, BorgError, OSError.
    """
    items = await list_items(borg, location, archive.name, ())
    roots = archive_roots(items)
    chosen = plan(roots, asked, to=to, share_paths=share_paths)
    clashes = [] if overwrite else in_the_way(items, chosen, _exists)
    if clashes:
        raise WouldOverwrite(
            f"{len(clashes)} file(s) exist already: {restore_plan.describe_paths(clashes)}",
            hint="nothing was written; recover elsewhere with --to DIR, "
            "or replace them with --overwrite",
        )
    if chosen.into_root:
        report = await restore_archive(
            borg,
            location,
            archive.name,
            chosen.wanted,
            to=None,
            overwrite=overwrite,
            on_progress=on_progress,
            into_root=True,
        )
    else:
        report = await restore_archive(
            borg,
            location,
            archive.name,
            chosen.wanted,
            to=chosen.to,
            overwrite=overwrite,
            on_progress=on_progress,
        )
    return Recovered(archive=archive, roots=tuple(roots), plan=chosen, report=report)
