"""A Borg repository on an HDS host, over SSH: pinned host keys, a preflight, throttled uploads.

Files under ``<state>/ssh/`` (the daemon's own; ``/etc`` is the admin's and
read-only to the daemon):

- ``<name>_ed25519`` (and ``.pub``): the box's key for this host, unless the
  target's ``ssh_key`` names another;
- ``<name>.pinned``: the host keys ``coffre offsite enroll --accept-host-key``
  pinned, one ``type base64`` per line. A target's ``host_keys`` in the
  configuration, when given, replace them;
- ``known_hosts_<name>``: written before each job from the pinned keys only,
  the one known_hosts file borg's ssh reads.

Each job first runs the preflight (``coffre.targets.offsite.ssh.preflight``): borg starts only
when the host is the pinned one and takes the box's key. borg then runs with
``BORG_RSH`` (``coffre.targets.offsite.ssh.borg_rsh``) and, for uploads, the limit of the
target's upload windows at that time; when the limit changes during a long
``borg create``, borg is stopped at a checkpoint and started again with the
new one (the chunks already sent stay in the repository).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from coffre.borg import argv as borg_argv
from coffre.borg import parse
from coffre.borg.protocol import EnvBorg
from coffre.borg.records import Progress
from coffre.borg.runner import BorgResult
from coffre.core import upload_window
from coffre.core.config_types import OffsiteTarget, PathsConfig
from coffre.core.errors import CoffreError, OffsiteNotEnrolled
from coffre.core.sshkeys import PublicKey, parse_public_key
from coffre.jobs.services import Services
from coffre.storage.state import State
from coffre.targets.base import RemovableDisk
from coffre.targets.offsite import ssh

__all__ = [
    "OffsiteBorg",
    "OffsiteRepository",
    "key_file",
    "known_hosts_file",
    "pin_host_key",
    "pinned_file",
    "pinned_keys",
    "record_preflight",
    "status_of",
]

#: Borg commands that send archive data: they get the upload limit.
_UPLOADS = frozenset({"create"})


# --- files ---------------------------------------------------------------------


def ssh_dir(paths: PathsConfig) -> Path:
    """Where the daemon keeps its SSH keys and pins: under the state dir."""
    return paths.state / "ssh"


def key_file(target: OffsiteTarget, paths: PathsConfig) -> Path:
    """The box's private key for ``target``."""
    return target.ssh_key or ssh_dir(paths) / f"{target.name}_ed25519"


def pinned_file(target: OffsiteTarget, paths: PathsConfig) -> Path:
    """Where enrollment pins ``target``'s host keys."""
    return ssh_dir(paths) / f"{target.name}.pinned"


def known_hosts_file(target: OffsiteTarget, paths: PathsConfig) -> Path:
    """The known_hosts file borg's ssh reads for ``target``."""
    return ssh_dir(paths) / f"known_hosts_{target.name}"


def pinned_keys(target: OffsiteTarget, paths: PathsConfig) -> tuple[PublicKey, ...]:
    """The host keys ``target`` may show: the configuration's, else those enrollment pinned.

    An unreadable or malformed pin file counts as no pin (the job then
    refuses as not enrolled): never guess a host key.
    """
    if target.host_keys:
        return tuple(parse_public_key(text) for text in target.host_keys)
    try:
        lines = pinned_file(target, paths).read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return ()
    keys = []
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                keys.append(parse_public_key(line))
            except ValueError:
                return ()
    return tuple(keys)


def pin_host_key(target: OffsiteTarget, paths: PathsConfig, key: PublicKey, at: datetime) -> None:
    """Make ``key`` the one pinned host key of ``target`` (enrollment's file). StateError."""
    text = (
        f"# host key of {target.host}:{target.port} for target {target.name}, "
        f"{key.fingerprint}, pinned {at.isoformat(timespec='seconds')}\n{key.openssh}\n"
    )
    ssh.write_state_file(pinned_file(target, paths), text, 0o600)


# --- state ---------------------------------------------------------------------


def _meta(name: str, what: str) -> str:
    return f"offsite.{what}.{name}"


def record_preflight(
    services: Services, name: str, at: datetime, error: CoffreError | None
) -> None:
    """Remember the outcome of ``name``'s last preflight, for status and metrics."""
    state = services.state
    state.set_time(_meta(name, "checked_at"), at)
    state.set_meta(
        _meta(name, "reachable"), "0" if error is not None and _unreached(error) else "1"
    )
    state.set_meta(_meta(name, "preflight_error"), "" if error is None else error.kind)


def _unreached(error: CoffreError) -> bool:
    # A mismatched key or a refused key still means the host answered.
    return error.kind in ("unreachable",)


def _add_sent(services: Services, name: str, sent: int) -> None:
    if sent > 0:
        key = _meta(name, "bytes_sent")
        services.state.set_meta(key, str(int(services.state.get_meta(key) or 0) + sent))


def status_of(state: State, name: str) -> dict[str, Any]:
    """What ``coffre status`` shows of an offsite target beyond the common fields.

    ``reachable`` is None before any preflight; ``bytes_sent`` adds up what
    every upload (finished or cut) added to the host's repository;
    ``last_error_kind`` is that of the last backup attempt (None if it succeeded).
    """
    get = state.get_meta
    reachable = get(_meta(name, "reachable"))
    checked = state.get_time(_meta(name, "checked_at"))
    last = state.last_run(name, "backup")
    return {
        "last_error_kind": None if last is None else last.error_kind,
        "reachable": None if reachable is None else reachable == "1",
        "checked_at": None if checked is None else checked.isoformat(),
        "preflight_error": get(_meta(name, "preflight_error")) or None,
        "bytes_sent": int(get(_meta(name, "bytes_sent")) or 0),
    }


# --- borg through SSH ------------------------------------------------------------


def with_upload_limit(argv: Sequence[str], limit_kbps: int | None) -> tuple[str, ...]:
    """``argv`` with ``--upload-ratelimit`` after its command word (borg 1.2+, KiB/s)."""
    if limit_kbps is None or not argv:
        return tuple(argv)
    return (argv[0], f"--upload-ratelimit={limit_kbps}", *argv[1:])


class OffsiteBorg:
    """The Borg door of one offsite target: BORG_RSH, the upload limit, bytes sent.

    Jobs on the target get it as ``Services.borg``; it hands each run to the
    daemon's runner with the target's SSH command.
    """

    def __init__(
        self,
        inner: EnvBorg,
        target: OffsiteTarget,
        services: Services,
        *,
        before_run: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._inner = inner
        self._target = target
        self._services = services
        self._before_run = before_run
        self.rsh = self.rsh_of(target, services.config.paths)

    @staticmethod
    def rsh_of(target: OffsiteTarget, paths: PathsConfig) -> str:
        """The ``BORG_RSH`` of ``target``: OpenSSH with its key and its pinned keys only."""
        return ssh.borg_rsh(
            key_file(target, paths),
            known_hosts_file(target, paths),
            connect_timeout=target.connect_timeout,
        )

    async def run(
        self,
        argv: Sequence[str],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cwd: Path | None = None,
        use_passphrase: bool = True,
    ) -> BorgResult:
        """Run borg ``argv`` over SSH; a create follows the upload windows (see module doc).

        ``before_run`` (the repository's due preflight) is awaited first; its
        errors (HostKeyMismatch...) propagate and borg does not run.
        """
        if self._before_run is not None:
            await self._before_run()
        if not argv or argv[0] not in _UPLOADS:
            return await self._inner.run(
                argv,
                on_progress=on_progress,
                cwd=cwd,
                use_passphrase=use_passphrase,
                extra_env={"BORG_RSH": self.rsh},
            )
        while True:
            result = await self._upload_until_limit_changes(argv, on_progress, cwd, use_passphrase)
            if result is not None:
                return result

    async def _upload_until_limit_changes(
        self,
        argv: Sequence[str],
        on_progress: Callable[[Progress], None] | None,
        cwd: Path | None,
        use_passphrase: bool,
    ) -> BorgResult | None:
        """One borg run at the current limit; None when it was stopped because the limit changed."""
        services, target = self._services, self._target
        local = services.clock.now().astimezone(services.config.schedule.timezone)
        limit = upload_window.limit_at(target.upload_windows, local)
        change = upload_window.next_change(target.upload_windows, local)
        sent = 0

        def progress(p: Progress) -> None:
            nonlocal sent
            sent = max(sent, p.deduplicated_size)
            if on_progress is not None:
                on_progress(p)

        run = asyncio.ensure_future(
            self._inner.run(
                with_upload_limit(argv, limit),
                on_progress=progress,
                cwd=cwd,
                use_passphrase=use_passphrase,
                extra_env={"BORG_RSH": self.rsh},
            )
        )
        try:
            timeout = None if change is None else max((change - local).total_seconds(), 1.0)
            await asyncio.wait({run}, timeout=timeout)
            if not run.done():
                services.logger.info(
                    "%s: the upload limit changes at %s: stopping borg at a checkpoint to go on "
                    "at the new limit",
                    target.name,
                    change,
                )
                run.cancel()
                await asyncio.wait({run})
                return None
            result = run.result()
            sent = _deduplicated(result, sent)
            return result
        except BaseException:
            # Cancelled from outside (daemon stopping) or borg failed: stop borg
            # if it still runs, and let the error through.
            if not run.done():
                run.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.wait({run})
            raise
        finally:
            _add_sent(services, target.name, sent)


def _deduplicated(result: BorgResult, fallback: int) -> int:
    """The bytes a finished create added to the repository (its JSON), else ``fallback``."""
    try:
        return parse.create(result.json()).deduplicated_size
    except ValueError:
        return fallback


# --- the repository ----------------------------------------------------------------


class OffsiteRepository:
    """The repository of a ``kind = "offsite"`` target.

    ``services`` is what jobs on it use: the daemon's, with borg going
    through SSH (:class:`OffsiteBorg`). ``compacts`` is False: the
    repository is append-only to the box, the host compacts.
    """

    compacts = False

    def __init__(
        self,
        target: OffsiteTarget,
        services: Services,
        *,
        preflight: Callable[..., PublicKey] = ssh.preflight,
    ) -> None:
        self._target = target
        inner: Any = services.borg
        borg = OffsiteBorg(inner, target, services, before_run=self.before_borg)
        self.services = replace(services, borg=borg)
        self._preflight = preflight
        # Set by opened(): the preflight is due before the next borg run.
        self._check_due = False

    @property
    def name(self) -> str:
        return self._target.name

    @property
    def location(self) -> str:
        return self._target.location

    @property
    def target(self) -> OffsiteTarget:
        return self._target

    def as_disk(self) -> RemovableDisk | None:
        return None

    def job_services(self, daemon: Services) -> Services:
        """Its own services: the daemon's, with borg going through SSH."""
        return self.services

    def require_ready(self) -> None:
        self.require_enrolled()

    def require_enrolled(self) -> tuple[PublicKey, ...]:
        """The pinned host keys; OffsiteNotEnrolled when none is, or the box has no key yet."""
        paths = self.services.config.paths
        pinned = pinned_keys(self._target, paths)
        key = key_file(self._target, paths)
        if not pinned or not key.exists():
            raise OffsiteNotEnrolled(
                f"target {self.name} is not enrolled: "
                + ("no host key is pinned" if not pinned else f"the box has no key {key}"),
                hint=f"run `coffre offsite enroll {self.name}` and follow what it says",
            )
        return pinned

    async def check_host(self) -> PublicKey:
        """The preflight: pinned keys to known_hosts, then the host is looked at.

        Raises OffsiteNotEnrolled (nothing pinned, or no key for the box yet),
        OffsiteUnreachable, HostKeyMismatch, OffsiteAuthRefused. The outcome
        is recorded for status.
        """
        services, target = self.services, self._target
        paths = services.config.paths
        pinned = self.require_enrolled()
        key = key_file(target, paths)
        error: CoffreError | None = None
        try:
            await asyncio.to_thread(
                ssh.write_known_hosts,
                known_hosts_file(target, paths),
                target.host,
                target.port,
                pinned,
            )
            shown = await asyncio.to_thread(
                self._preflight,
                host=target.host,
                port=target.port,
                user=target.user,
                key_file=key,
                pinned=pinned,
                timeout=float(target.connect_timeout),
                target=target.name,
            )
            return shown
        except CoffreError as failed:
            error = failed
            raise
        finally:
            record_preflight(services, target.name, services.clock.now(), error)

    async def repository_id(self) -> str:
        """The ID of the repository at the URL now, from ``borg info`` (after the preflight)."""
        await self.check_host()
        result = await self.services.borg.run(borg_argv.info_repository(self.location))
        return parse.repository_id(result.json())

    @asynccontextmanager
    async def opened(self, expected_id: str) -> AsyncIterator[str]:
        """The location; the preflight runs before the first borg run inside.

        A step that needs no borg (retention with nothing to delete) makes no
        connection at all. OffsiteNotEnrolled is raised at once. Reading the
        repository's ID would cost a borg run over the uplink: it is checked
        in what ``borg create`` reports instead (RepositoryIdMismatch then,
        with nothing lost: the repository is append-only to the box).
        """
        self.require_enrolled()
        self._check_due = True
        try:
            yield self.location
        finally:
            self._check_due = False

    async def before_borg(self) -> None:
        """Run the preflight if opened() made one due (OffsiteBorg calls it before each run)."""
        if self._check_due:
            await self.check_host()
            self._check_due = False


def box_comment() -> str:
    """The comment of the box's public keys: ``coffre@<hostname>``."""
    return f"coffre@{socket.gethostname()}"
