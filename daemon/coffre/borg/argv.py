"""Pure builders of borg command lines.

Each function returns the arguments that follow ``borg`` and its common
options (the runner prepends ``borg --log-json --lock-wait N``). Nothing here
does I/O. Values that borg would misread are refused with ValueError rather
than passed on: a name starting with ``-`` would be taken for an option, and
``{...}`` is expanded by borg as a placeholder (``{now}``, ``{hostname}``) in
repository and archive locations.

Options that take a value are written ``--option=value`` so that a value
starting with ``-`` (an exclude pattern, say) can never be taken for an option.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

#: Encryption modes ``borg init`` 1.4 accepts.
ENCRYPTION_MODES = frozenset(
    {
        "none",
        "authenticated",
        "authenticated-blake2",
        "keyfile",
        "keyfile-blake2",
        "repokey",
        "repokey-blake2",
    }
)

#: The format borg 1.4's ``--timestamp`` reads as UTC (it has no zone and no fraction).
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"


def init(repo: str, *, encryption: str) -> tuple[str, ...]:
    """``borg init``: create the repository at ``repo``, with its parent directories.

    Raises ValueError for an invalid location or an encryption mode borg does not know.
    """
    _check_repo(repo)
    if encryption not in ENCRYPTION_MODES:
        known = ", ".join(sorted(ENCRYPTION_MODES))
        raise ValueError(f"unknown borg encryption mode {encryption!r} (known: {known})")
    return ("init", f"--encryption={encryption}", "--make-parent-dirs", repo)


def create(
    repo: str,
    archive: str,
    paths: Sequence[str],
    *,
    excludes: Sequence[str] = (),
    exclude_if_present: Sequence[str] = (),
    compression: str,
    checkpoint_interval: int,
    timestamp: datetime | None = None,
    progress: bool = True,
    list_changed: bool = False,
    comment: str = "",
) -> tuple[str, ...]:
    """``borg create --json``: back ``paths`` up into ``repo::archive``.

    The final statistics come as JSON on stdout (see ``parse.create``). Each
    run stays on the filesystems of ``paths``; no ``--exclude-caches``: anyone
    on the share could drop a CACHEDIR.TAG in its root. ``timestamp``, if
    given, must be timezone-aware: it is written in UTC, the only zone borg's
    ``--timestamp`` knows, to the second (borg takes no fraction). ``comment``,
    if any, is the archive's comment (how the share was read: from a snapshot
    or live). ``paths`` may be relative (a snapshot's view: the caller runs
    borg in the view's folder, and the archive keeps the share's paths).
    ``list_changed`` adds
    ``--list --filter=AMCE``: one ``file_status`` record per regular file
    whose content is new to the files cache (A added, M modified, C changed
    while read) or could not be read (E); the runner keeps them in
    ``BorgResult.file_statuses`` (see ``records.FileStatus``); a folder
    holding a file named in ``exclude_if_present``, left out.

    Raises ValueError for an invalid location or archive name, no path, a path
    starting with ``-``, an empty compression or exclude, a negative
    checkpoint interval, or a naive timestamp.
    """
    _check_create(repo, archive, paths, compression, checkpoint_interval)
    if not all((*excludes, *exclude_if_present)):
        raise ValueError("an exclude pattern is empty")
    args = ["create", "--json"]
    if progress:
        args.append("--progress")
    if list_changed:
        args += ["--list", "--filter=AMCE"]
    args += [
        "--one-file-system",
        f"--compression={compression}",
        f"--checkpoint-interval={checkpoint_interval}",
    ]
    args += [f"--exclude={pattern}" for pattern in excludes] + [
        f"--exclude-if-present={name}" for name in exclude_if_present
    ]
    if timestamp is not None:
        args.append(f"--timestamp={format_timestamp(timestamp)}")
    if comment:
        _check_text("comment", comment)
        args.append(f"--comment={comment}")
    args.append(f"{repo}::{archive}")
    args += paths
    return tuple(args)


def _check_create(
    repo: str, archive: str, paths: Sequence[str], compression: str, checkpoint_interval: int
) -> None:
    """Raise ValueError for what ``create`` refuses (see its docstring)."""
    _check_repo(repo)
    check_archive_name(archive)
    if not paths:
        raise ValueError("borg create needs at least one path to back up")
    for path in paths:
        _check_positional("path", path)
    if not compression:
        raise ValueError("borg create needs a compression (e.g. 'zstd,3')")
    if checkpoint_interval < 0:
        raise ValueError(f"checkpoint interval must be >= 0 seconds, not {checkpoint_interval}")


def list_archives(repo: str) -> tuple[str, ...]:
    """``borg list --json``: every archive of ``repo``, checkpoints included.

    Parse its output with ``parse.archives``.

    Raises ValueError for an invalid location.
    """
    _check_repo(repo)
    return ("list", "--json", "--consider-checkpoints", repo)


def delete(repo: str, archives: Sequence[str]) -> tuple[str, ...]:
    """``borg delete REPO NAME...``: delete several archives in one borg run (one commit).

    Duplicates are dropped. borg reports a name it does not find as a warning
    (exit code 1), not an error. Raises ValueError for an invalid location or
    name, and for an empty list: ``borg delete REPO`` alone would delete the
    whole repository.
    """
    _check_repo(repo)
    if not archives:
        raise ValueError("no archive to delete (borg delete without names deletes the repository)")
    names = tuple(dict.fromkeys(archives))
    for name in names:
        check_archive_name(name)
    # --stats: the "Deleted data" line says how much space a compact would free.
    return ("delete", "--stats", repo, *names)


def compact(repo: str) -> tuple[str, ...]:
    """``borg compact``: give back the space of deleted archives.

    Raises ValueError for an invalid location.
    """
    _check_repo(repo)
    return ("compact", repo)


def check(
    repo: str, *, repository_only: bool = False, max_duration: int | None = None
) -> tuple[str, ...]:
    """``borg check``: verify the repository (and, unless ``repository_only``, the archives).

    ``max_duration`` (seconds) makes a partial check that resumes where the
    last one stopped; borg allows it only with ``repository_only``. Raises
    ValueError for an invalid location, a non-positive duration, or a duration
    without ``repository_only``.
    """
    _check_repo(repo)
    args = ["check"]
    if repository_only:
        args.append("--repository-only")
    if max_duration is not None:
        if not repository_only:
            raise ValueError("borg check --max-duration needs repository_only=True")
        if max_duration <= 0:
            raise ValueError(f"max_duration must be > 0 seconds, not {max_duration}")
        args.append(f"--max-duration={max_duration}")
    args.append(repo)
    return tuple(args)


# --- the scheduled checks (coffre.proof, coffre.jobs.checking) -----------------
#
# What borg 1.4.5 does, read in its source (repository.py ``Repository.check``,
# archive.py ``ArchiveChecker``, archiver.py ``do_check``) and tried on a real
# repository (tests/integration/test_checks.py):
#
# - ``check --repository-only --max-duration=N`` reads segment files in order
#   (size and CRC32 of every object) for about N seconds, then writes the last
#   segment it read into the repository's own ``config`` file
#   (``[repository] last_segment_checked``) and logs "finished partial segment
#   check, last segment checked is S". The next partial check starts after S.
#   The run that reaches the last segment logs "finished segment check at
#   segment S" and removes the option: that pass is complete, every segment
#   present then was read since the pass began (new segments only ever get
#   higher numbers, a compaction too). A check without ``--max-duration`` reads
#   every segment, checks the index as well, and forgets any partial position.
#   The slice is only as fine as one segment file (up to 500 MiB by default):
#   N is a lower bound, a slice ends after the segment during which N ran out.
# - Damage found (a CRC mismatch, a segment cut short, an index that does not
#   match) is logged at ERROR and borg ends with rc 1 (a *warning* code: borg
#   reached its end), never with an error code; "Finished partial repository
#   check, errors found." closes it.
# - ``--archives-only`` reads the manifest and every archive's metadata and
#   checks that each chunk an item refers to exists (no data read); errors are
#   logged at ERROR (naming the archive where borg knows it), rc 1.
# - ``--verify-data`` decrypts and authenticates *every chunk in the
#   repository*, whatever the archive filters say (``-a``, ``--first``,
#   ``--last`` only narrow the metadata part; tried: ``--archives-only
#   --verify-data -a one`` "verified 7 chunks with 1 integrity errors", the
#   damaged chunk being archive two's): it can be neither bounded by archives
#   nor resumed. Without ``--archives-only`` the whole repository check (with
#   the index) runs first, and borg stops there when it finds damage.
# - ``extract --dry-run`` of one archive fetches and authenticates every chunk
#   of that archive's files; a damaged one stops it with rc 90
#   (``IntegrityError``, "Segment entry checksum mismatch" or a MAC error): the
#   data check of a budgeted pass (a USB disk at its plug) goes archive by
#   archive with it, and remembers which archives a pass has verified.


def check_repository(repo: str, *, max_duration: int | None = None) -> tuple[str, ...]:
    """``borg check --repository-only``: the segments' CRCs, a slice of ``max_duration`` s.

    Without ``max_duration`` the whole repository is read and its index checked
    too. ``--info``: borg says at INFO level whether the slice reached the last
    segment (its default level, WARNING, would hide it). Raises ValueError for an
    invalid location or a non-positive duration.
    """
    plain = check(repo, repository_only=True, max_duration=max_duration)
    return (plain[0], "--info", *plain[1:])


def check_archives(repo: str, *, last: int | None = None) -> tuple[str, ...]:
    """``borg check --archives-only``: archive metadata, every referenced chunk present.

    ``last`` limits it to the newest ``last`` archives (all when None);
    ``--info`` makes borg name each archive as it reads it. Raises ValueError
    for an invalid location or a ``last`` below 1.
    """
    _check_repo(repo)
    args = ["check", "--info", "--archives-only"]
    if last is not None:
        if last < 1:
            raise ValueError(f"last must be >= 1, not {last}")
        args.append(f"--last={last}")
    args.append(repo)
    return tuple(args)


def check_data(repo: str) -> tuple[str, ...]:
    """``borg check --verify-data``: the whole repository check (segments and index), then
    every chunk decrypted and authenticated, then the archives.

    Reads all the repository's data in one run (no resume: see above);
    ``--info`` as for the archives check. Raises ValueError for an invalid location.
    """
    _check_repo(repo)
    return ("check", "--info", "--verify-data", repo)


def verify_archive(repo: str, archive: str) -> tuple[str, ...]:
    """``borg extract --dry-run REPO::ARCHIVE``: every chunk of the archive read and
    authenticated, nothing written.

    Damage ends it with borg's IntegrityError (an error code). Raises ValueError
    for an invalid location or archive name.
    """
    _check_repo(repo)
    check_archive_name(archive)
    return ("extract", "--dry-run", f"{repo}::{archive}")


def extract(
    repo: str,
    archive: str,
    paths: Sequence[str] = (),
    *,
    progress: bool = False,
    list_items: bool = False,
    strip_components: int = 0,
) -> tuple[str, ...]:
    """``borg extract``: restore ``paths`` (all when empty) of ``repo::archive``.

    ``progress`` (a percentage) makes borg read the archive's items twice
    (once for the total); ``list_items`` only logs each item as it is
    written (logger ``borg.output.list``), a cheaper sign of life.

    borg writes into its current directory: run it with the runner's ``cwd=``.
    ``paths`` are as stored in the archive (no leading ``/``); each selects
    that file or directory tree. They are passed as ``pp:PATH`` so that a name
    such as ``re:x`` or ``-x`` is taken literally, not as a pattern style or an
    option. ``strip_components`` drops that many leading folders of every
    path written (``srv/partage/a`` with 2 -> ``a``). Raises ValueError for an
    invalid location or archive name, an empty path or one with a control
    character, or a negative ``strip_components``.
    """
    _check_repo(repo)
    check_archive_name(archive)
    for path in paths:
        _check_text("path", path)
    if strip_components < 0:
        raise ValueError(f"strip_components must be >= 0, not {strip_components}")
    args = ["extract"]
    if progress:
        args.append("--progress")
    if list_items:
        args.append("--list")
    if strip_components:
        args.append(f"--strip-components={strip_components}")
    args.append(f"{repo}::{archive}")
    args += [f"pp:{path}" for path in paths]
    return tuple(args)


def list_contents(
    repo: str, archive: str, paths: Sequence[str] = (), *, keys: Sequence[str] = ()
) -> tuple[str, ...]:
    """``borg list --json-lines REPO::ARCHIVE``: the items of one archive, one JSON per line.

    ``paths`` (as stored, no leading ``/``) limit the listing to those files
    and trees, passed as ``pp:PATH`` like ``extract``'s. ``keys`` are
    ``--format`` keys borg adds to each line (``ctime``; ``xxh64``, which
    reads every chunk of the files listed). Parse the output with
    ``parse.contents``. Raises ValueError as ``extract`` does, and for a key
    that is not a plain name.
    """
    _check_repo(repo)
    check_archive_name(archive)
    for path in paths:
        _check_text("path", path)
    args = ["list", "--json-lines"]
    if keys:
        if not all(k.isidentifier() for k in keys):
            raise ValueError(f"borg list keys must be plain names: {list(keys)!r}")
        args.append("--format=" + "".join(f"{{{k}}}" for k in keys))
    return (*args, f"{repo}::{archive}", *(f"pp:{p}" for p in paths))


def mount(repo: str, archive: str | None, mountpoint: str) -> tuple[str, ...]:
    """``borg mount --foreground``: ``repo`` (or one archive) as a read-only FUSE tree.

    borg stays in the foreground until the tree is unmounted (``umount``) or
    it is stopped. ``-o ro`` makes the kernel refuse writes before they reach
    borg. Raises ValueError for an invalid location, archive name or mount point.
    """
    _check_repo(repo)
    if archive is not None:
        check_archive_name(archive)
    _check_positional("mount point", mountpoint)
    where = repo if archive is None else f"{repo}::{archive}"
    return ("mount", "--foreground", "-o", "ro", where, mountpoint)


def umount(mountpoint: str) -> tuple[str, ...]:
    """``borg umount``: end a ``borg mount`` (raises ValueError for an invalid mount point)."""
    _check_positional("mount point", mountpoint)
    return ("umount", mountpoint)


def info_repository(repo: str) -> tuple[str, ...]:
    """``borg info --json REPO``: the repository's id, encryption and cache statistics.

    Raises ValueError for an invalid location.
    """
    _check_repo(repo)
    return ("info", "--json", repo)


def key_export(repo: str) -> tuple[str, ...]:
    """``borg key export REPO -``: the repository's key as borg stores it, on stdout.

    No passphrase is needed: the key stays encrypted. Raises ValueError for
    an invalid location.
    """
    _check_repo(repo)
    return ("key", "export", repo, "-")


def key_import_paper(repo: str) -> tuple[str, ...]:
    """``borg key import --paper REPO``: borg asks the paper key's lines on stdin.

    Raises ValueError for an invalid location.
    """
    _check_repo(repo)
    return ("key", "import", "--paper", repo)


def key_export_paper(repo: str) -> tuple[str, ...]:
    """``borg key export --paper``: the repository key as text to print, on stdout.

    Raises ValueError for an invalid location.
    """
    _check_repo(repo)
    return ("key", "export", "--paper", repo)


def check_archive_name(name: str) -> None:
    """Raise ValueError unless ``name`` is an archive name borg takes verbatim.

    borg itself refuses an empty name, ``/`` and ``::``; we also refuse a
    leading ``-`` (an option to borg's parser), ``{`` and ``}`` (placeholders
    borg would expand), and control characters.
    """
    if not name:
        raise ValueError("archive name is empty")
    if "::" in name or "/" in name:
        raise ValueError(f"archive name {name!r} contains '::' or '/'")
    _check_positional("archive name", name)


def format_timestamp(when: datetime) -> str:
    """``when`` (timezone-aware) as borg's ``--timestamp`` reads it: UTC, to the second.

    Raises ValueError for a naive datetime: its instant is unknown.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"timestamp {when.isoformat()} has no timezone")
    return when.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def _check_repo(repo: str) -> None:
    if not repo:
        raise ValueError("repository location is empty")
    if "::" in repo:
        raise ValueError(f"repository location {repo!r} contains '::' (an archive separator)")
    _check_positional("repository location", repo)


def _check_positional(what: str, value: str) -> None:
    _check_text(what, value)
    if value.startswith("-"):
        raise ValueError(f"{what} {value!r} starts with '-': borg would read it as an option")
    if what != "path" and ("{" in value or "}" in value):
        raise ValueError(f"{what} {value!r} contains '{{' or '}}': borg would expand it")


def _check_text(what: str, value: str) -> None:
    if not value:
        raise ValueError(f"{what} is empty")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{what} {value!r} contains a control character")
