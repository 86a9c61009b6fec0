"""The daemon: wires the timer, udev and the control socket to the job lanes.

One asyncio loop does everything: it serves the socket, runs each lane's
jobs one at a time, and ticks: at each tick (every watchdog interval, or
every BOX_CHECK_PERIOD without a watchdog, and at the nightly time) it queues
a nightly run that is due, checks that the box has what backups need, and
pings the systemd watchdog only while every lane's worker is alive and
serving. Nothing else wakes it while idle.

It never gives up at start for want of a file: only a configuration that
cannot be read or parsed stops it (exit 2, see ``coffre.cli.dispatch``). A missing
share, passphrase file or data volume is a *box problem*: shown on the
lights, in the metrics and in ``coffre status``, checked again at each tick,
and once solved the backups that failed for it run again. A worker that
dies anyway ends the daemon with exit 1, so that systemd restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from coffre.borg.env import BorgEnvironment, default_binary
from coffre.borg.passphrase import read_passphrase
from coffre.borg.runner import BorgRunner
from coffre.config import loader as config_checks
from coffre.config.cautions import config_warnings
from coffre.core import schedule
from coffre.core.clock import Clock
from coffre.core.config_types import Config, LocalTarget
from coffre.core.errors import CoffreError
from coffre.core.messages import (
    ArchivesRequest,
    BackupRequest,
    BrowseRequest,
    CheckRequest,
    Client,
    DiskEnrollRequest,
    DiskForgetRequest,
    DisksRequest,
    DrillRequest,
    Event,
    FindRequest,
    IncidentClearRequest,
    IncidentShowRequest,
    InitRequest,
    JobOptions,
    KeyExportRequest,
    OffsiteEnrollRequest,
    PingRequest,
    PruneRequest,
    ReadRequest,
    Request,
    RestoreRequest,
    Send,
    StatusRequest,
)
from coffre.core.printable import controls_escaped
from coffre.daemon.control import Handler, serve
from coffre.daemon.executor import Executor
from coffre.daemon.folders import make_private
from coffre.daemon.maintenance import MaintenanceLoop, default_entry_points, histories
from coffre.daemon.notify import Notifier
from coffre.daemon.share_loop import share_desk, tend_forever
from coffre.guard.ntp import synchronised
from coffre.jobs import lanes
from coffre.jobs.maintenance import EntryPoints
from coffre.jobs.queue import Job, JobQueue, JobRequest, JobResult
from coffre.jobs.services import Services
from coffre.jobs.supervision import Incidents, job_crashed, stalled_lanes
from coffre.observe import status
from coffre.observe.facts import Observer
from coffre.observe.observability import Observability
from coffre.observe.share_status import share_view
from coffre.proof.maintenance_plan import policy_from_config
from coffre.storage import logs
from coffre.storage.audit import AuditLog, audit_path
from coffre.storage.staging_mark import StagingMark
from coffre.storage.state import FAILED, State
from coffre.support.desk import SupportDesk
from coffre.support.incident_desk import IncidentDesk
from coffre.support.staging import remove_stale_staging
from coffre.targets.offsite import enroll as offsite_enroll
from coffre.targets.registry import RepositoryCatalog, require_known
from coffre.targets.usb.events import DiskWatch
from coffre.targets.usb.udev import UdevWatcher

#: State key of the due instant of the last nightly run made.
NIGHTLY_KEY = "nightly.last_due"

#: Without a watchdog, tick at least this often: a box problem solved (the
#: passphrase file put back) is seen within it, and a wall-clock jump (a box
#: without RTC setting its clock from NTP) delays the nightly by no more.
BOX_CHECK_PERIOD = 60.0

#: A lane with jobs waiting and none running for longer than this is wedged.
STALL_GRACE = 60.0


_R = TypeVar("_R", bound=Request)


def _route(
    kind: type[_R], serve_one: Callable[[_R, Send, Client], Awaitable[None]]
) -> tuple[str, Handler]:
    """``kind``'s op and ``serve_one`` as a handler of any request, for the daemon's table.

    ``serve_one`` is checked (by mypy) to take a ``kind``; the handler raises
    TypeError if the table sends it another request (a bug, not the client's fault).
    """

    async def handle(request: Request, send: Send, client: Client) -> None:
        if not isinstance(request, kind):
            raise TypeError(f"{type(request).__name__} routed to the handler of {kind.__name__}")
        await serve_one(request, send, client)

    return kind.op, handle


@dataclass(frozen=True)
class Running:
    """What the daemon works with once ``run`` has opened state: made at once, all of it.

    ``queues`` are the job queues by lane name (main, network, reads,
    maintenance); ``submit`` queues a request across them (a :class:`lanes.Run`);
    ``maintenance`` queues the checks and drills due.
    """

    state: State
    services: Services
    observed: Observability
    queues: dict[str, JobQueue]
    disks: DiskWatch
    desk: SupportDesk
    incidents: IncidentDesk
    maintenance: MaintenanceLoop

    @property
    def main(self) -> JobQueue:
        return self.queues[lanes.MAIN]

    def submit(self, request: JobRequest) -> lanes.Run:
        """Queue ``request``: local targets in the main lane, offsite ones in the network lane,
        reads (restore, find, browse, key export) in the reads lane."""
        return lanes.Run(self.queues, self.services.config, request)


class Daemon:
    """``coffre daemon``: runs until SIGTERM or SIGINT; ``run`` returns the exit code."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        notifier: Notifier,
        logger: Any,
        maintenance: EntryPoints | None = None,
    ) -> None:
        """``maintenance``: the check and the drill (default: :func:`default_entry_points`)."""
        self._config = config
        self._entry_points = maintenance or default_entry_points()
        self._clock = clock
        self._notifier = notifier
        self._logger = logger
        self._stopping = asyncio.Event()
        self._nightly_submitted: datetime | None = None
        #: Set by ``run`` once state is open (None before: no box check looks at state).
        self._running: Running | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._lanes_ok = True
        self._exit_code = 0
        #: What the box lacks now, failures state could not record, crashes.
        self.incidents = Incidents()

    # --- life ---------------------------------------------------------------

    async def run(self) -> int:
        """Open state, start the lanes, the socket, udev and the timer; serve until stopped.

        Returns the exit code: 0 after a stop, 1 when a worker ended by itself.
        Raises what opening state or the socket raises (CoffreError).
        """
        state = await self._open_state()
        running = self._assemble(state)
        self._running = running
        if running.services.share is not None:
            await running.services.share.clean_up_at_start()
        loop = asyncio.get_running_loop()
        watcher = UdevWatcher(running.observed.after(running.disks.handle), logger=self._logger)
        watcher.start(loop)
        running.disks.startup(watcher.present())
        server = await serve(self._config.paths.control_socket, self._handlers(running))
        await running.observed.start(
            main=running.main,
            network=running.queues[lanes.NETWORK],
            reads=running.queues[lanes.READS],
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        self.check_box()
        self._start_workers(running)
        self._say_ready()
        try:
            await self._stopping.wait()
        finally:
            await self._shut_down(running, watcher, server)
        return self._exit_code

    async def _shut_down(
        self, running: Running, watcher: UdevWatcher, server: asyncio.AbstractServer
    ) -> None:
        """Stop taking requests, stop the lanes (a running job at a checkpoint), close all."""
        self._notifier.notify(STOPPING="1", STATUS="stopping")
        self._logger.info(
            "stopping: interrupting the running job at a checkpoint"
            if running.main.running is not None
            else "stopping"
        )
        server.close()
        await self._stop_workers(running)
        watcher.close()
        await server.wait_closed()
        await running.observed.close()
        with contextlib.suppress(FileNotFoundError):
            self._config.paths.control_socket.unlink()
        running.state.close()
        self._logger.info("coffre daemon stopped")

    async def _open_state(self) -> State:
        """The daemon's folders made, state opened, what the last stop cut short cleaned up."""
        config, logger = self._config, self._logger
        # State, keys and caches are nobody else's business, whoever started us.
        os.umask(0o077)
        for directory, what in ((config.paths.state, "state"), (config.paths.cache, "cache")):
            # An existing folder keeps its mode through mkdir: forced back to 0700 each start.
            was = make_private(directory, f"{what} folder", uid=os.geteuid())
            if was is not None:
                logger.warning("%s folder %s was %04o; made 0700", what, directory, was)
        config.paths.runtime.mkdir(parents=True, exist_ok=True, mode=0o755)
        state = State.open(config.paths.state_db, logger=logger, now=self._clock.now())
        interrupted = state.mark_interrupted_runs(self._clock.now())
        if interrupted:
            logger.warning("%d run(s) were cut short by the last stop of the daemon", interrupted)
        mark = StagingMark.of_box(config.paths.state)
        for stale in await asyncio.to_thread(remove_stale_staging, config.source.paths, mark):
            logger.warning(
                "removed %s: what a restore cut short had extracted", controls_escaped(str(stale))
            )
        return state

    def _assemble(self, state: State) -> Running:
        """borg's runner, the services, the executor, the lanes, the disks and the support desk."""
        config, logger, incidents = self._config, self._logger, self.incidents
        runner = self._borg_runner()
        share = share_desk(config, state, self._clock, logger)
        services = Services(config, state, runner, self._clock, logger, share=share)
        executor = Executor(
            services,
            RepositoryCatalog(config, state, config.paths.mounts, services=services),
            wait_plugged=lambda name, within: disks.wait_plugged(name, within),
            incidents=incidents,
            maintenance=self._entry_points,
        )
        # Metrics and LEDs read state and the incidents; the LEDs change when a
        # job starts or ends, after a disk event and when a box problem comes
        # or goes, never on a timer.
        # The clock's NTP synchronisation, asked by the observer (cached a minute).
        observer = Observer(config, state, self._clock, incidents=incidents, ntp=synchronised)
        observed = Observability(config, observer, runner, logger)

        async def execute(job: Job) -> JobResult:
            asked = job.request
            self._notifier.notify(
                STATUS=f"{asked.kind} of {', '.join(asked.targets)} ({asked.reason})"
            )
            try:
                result = await executor(job)
            finally:
                self._notifier.notify(STATUS="idle")
                # Once the lane has let the job go: maintenance may start on an idle box.
                asyncio.get_running_loop().call_soon(self._poke_maintenance)
            if asked.kind == "enroll" and result["ok"]:
                disks.enrolled(asked.targets[0], asked.options.device)
            return result

        queues = self._queues(execute, observed)

        def disk_busy(name: str) -> bool:
            # A restore from a disk has it mounted: a plug event then is no new disk.
            return queues[lanes.MAIN].touches(name) or queues[lanes.READS].touches(name)

        disks = DiskWatch(config, state, self._clock, logger, queues[lanes.MAIN].submit, disk_busy)
        audit = AuditLog(audit_path(config), logger)
        desk = SupportDesk(
            config,
            state,
            self._clock,
            audit,
            partial(lanes.Run, queues, config),
            disk_busy=disk_busy,
        )
        incident_desk = IncidentDesk(services, audit)
        return Running(
            state, services, observed, queues, disks, desk, incident_desk, self._loop(state, queues)
        )

    def _loop(self, state: State, queues: dict[str, JobQueue]) -> MaintenanceLoop:
        """The maintenance loop over ``queues``, reading the ledgers in ``state``."""
        return MaintenanceLoop(
            self._config,
            self._clock,
            self._logger,
            queues,
            histories(state),
            policy=policy_from_config(self._config),
            enabled=self._entry_points is not None,
            initialised=lambda target: state.repository_id(target) is not None,
        )

    def _poke_maintenance(self) -> None:
        if self._running is not None:
            self._running.maintenance.poke()

    def _borg_runner(self) -> BorgRunner:
        """The one runner of borg: the passphrase is read from its file at each run."""
        config = self._config
        return BorgRunner(
            BorgEnvironment(
                binary=config.borg.binary or default_binary(),
                base_dir=config.paths.borg_base,
                cache_dir=config.paths.borg_cache,
            ),
            lambda: read_passphrase(config.encryption.passphrase_file),
            lock_wait=config.borg.lock_wait,
            stop_timeout=config.borg.stop_timeout,
            logger=self._logger,
        )

    def _queues(
        self, execute: Callable[[Job], Awaitable[JobResult]], observed: Observability
    ) -> dict[str, JobQueue]:
        """The lanes' queues, each running ``execute`` watched by ``observed``."""
        config, logger, incidents = self._config, self._logger, self.incidents

        def crashed(job: Job, error: Exception) -> JobResult:
            return job_crashed(job, error, logger, incidents)

        return {
            lanes.MAIN: JobQueue(observed.around(execute), on_crash=crashed),
            # The network lane: offsite uploads, never in the way of the main lane (lanes.py).
            lanes.NETWORK: JobQueue(
                observed.around(lanes.retrying(execute, config, self._clock, logger)),
                on_crash=crashed,
            ),
            lanes.READS: JobQueue(observed.around(execute), on_crash=crashed),
            # Checks and drills, one at a time, never in the way (daemon.maintenance).
            lanes.MAINTENANCE: JobQueue(observed.around(execute), on_crash=crashed),
        }

    def _start_workers(self, running: Running) -> None:
        """Each lane's worker and the timer; one that ends by itself ends the daemon."""
        workers = [
            asyncio.create_task(running.main.serve(), name="main lane"),
            asyncio.create_task(running.queues[lanes.NETWORK].serve(), name="network lane"),
            asyncio.create_task(running.queues[lanes.READS].serve(), name="reads lane"),
            asyncio.create_task(running.maintenance.lane.serve(), name="maintenance lane"),
            # After the timer: a nightly due at start is queued before any maintenance.
            asyncio.create_task(self._timer(running), name="timer"),
            asyncio.create_task(running.maintenance.serve(), name="maintenance loop"),
        ]
        if running.services.share is not None:
            versions = tend_forever(running.services.share, self._config, self._clock, self._logger)
            workers.append(asyncio.create_task(versions, name="previous versions"))
        self._workers = workers
        for task in workers:
            task.add_done_callback(self._worker_ended)

    async def _stop_workers(self, running: Running) -> None:
        """Cancel the workers (a running job stops at a checkpoint); tell every waiter."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for lane in running.queues.values():
            self._abandon_pending(lane)

    def _say_ready(self) -> None:
        config = self._config
        self._notifier.notify(READY="1", STATUS="idle")
        self._logger.info(
            "coffre daemon ready: %d target(s), nightly at %s %s, control socket %s",
            len(config.targets),
            config.schedule.daily.strftime("%H:%M"),
            config.schedule.timezone.key,
            config.paths.control_socket,
            extra={"MESSAGE_ID": logs.MSG_DAEMON_READY},
        )
        for warning in config_warnings(config):  # what `coffre config check` warns of
            self._logger.warning("configuration: %s", warning)

    def stop(self) -> None:
        """Ask the daemon to stop (what SIGTERM does)."""
        self._stopping.set()

    @staticmethod
    def _abandon_pending(queue: JobQueue) -> None:
        event = lanes.cancelled_result()
        for job in queue.pending:
            job.publish(event)
            if not job.done.done():
                job.done.set_result(event)

    # --- the timer: nightly runs and the watchdog ---------------------------

    def _next_nightly(self, now: datetime) -> datetime:
        plan = self._config.schedule
        return schedule.next_due(now, plan.daily, plan.timezone)

    async def _timer(self, running: Running) -> None:
        """Tick until cancelled: nightly runs due, the box's files, the lanes and the watchdog.

        Raises nothing but cancellation: a tick that cannot read state says so
        in the journal and the next tick tries again.
        """
        plan = self._config.schedule
        interval = self._notifier.watchdog_interval
        while True:
            now = self._clock.now()
            try:
                self._nightly_if_due(running, now)
            except CoffreError as error:
                self._logger.error("cannot tell whether a nightly run is due: %s", error)
            self.check_box()
            self._watch_lanes(running, interval)
            delay = (schedule.next_due(now, plan.daily, plan.timezone) - now).total_seconds()
            delay = min(delay, interval if interval is not None else BOX_CHECK_PERIOD)
            await asyncio.sleep(max(delay, 0.0))

    def _nightly_if_due(self, running: Running, now: datetime) -> None:
        """Queue the nightly run due at ``now`` (a missed one too). Raises StateError."""
        plan, state = self._config.schedule, running.state
        if state.get_time(NIGHTLY_KEY) is None:
            # A new box: nothing was missed yet (its targets are not even
            # initialised); the first nightly run is the next one due.
            state.set_time(NIGHTLY_KEY, schedule.last_due(now, plan.daily, plan.timezone))
            self._logger.info(
                "first start: the first nightly run is due at %s",
                self._next_nightly(now).astimezone(plan.timezone),
            )
        due = schedule.catch_up_due(state.get_time(NIGHTLY_KEY), now, plan.daily, plan.timezone)
        if due is not None and due != self._nightly_submitted:
            self._submit_nightly(running, due)

    def _watch_lanes(self, running: Running, interval: float | None) -> None:
        """Ping the watchdog if every lane serves; else say which does not, once, and stop pinging.

        A lane whose jobs wait while it runs none is wedged: without pings,
        systemd aborts the daemon and restarts it (a dead worker already
        ended the daemon, see :meth:`_worker_ended`).
        """
        stalled = stalled_lanes(running.queues, time.monotonic(), STALL_GRACE)
        if stalled:
            if self._lanes_ok:
                self._lanes_ok = False
                self._logger.critical(
                    "the %s lane has jobs waiting and runs none: no more watchdog pings, "
                    "systemd will restart the daemon",
                    ", ".join(stalled),
                    extra={"MESSAGE_ID": logs.MSG_LANE_DEAD},
                )
            return
        self._lanes_ok = True
        if interval is not None:
            self._notifier.notify(WATCHDOG="1")

    def _worker_ended(self, task: asyncio.Task[None]) -> None:
        """A worker (lane or timer) ended: unless the daemon stops, end it with exit 1.

        Lanes and the timer never end by themselves (they turn every error
        into a failed job or a logged tick); one that did is a bug that a
        restart by systemd is the best answer to, and it must be loud.
        """
        if self._stopping.is_set() or task.cancelled():
            return
        error = task.exception()
        self._logger.critical(
            "the daemon's %s ended%s: stopping with exit 1 so that systemd restarts it",
            task.get_name(),
            f" on {type(error).__name__}: {error}" if error else "",
            exc_info=error,
            extra={"MESSAGE_ID": logs.MSG_LANE_DEAD},
        )
        self._exit_code = 1
        self._stopping.set()

    # --- the box's files -------------------------------------------------------

    def check_box(self) -> tuple[str, ...]:
        """Check what every backup needs (share, passphrase file, local targets); returns problems.

        Problems that appear or go are logged (MSG_BOX_PROBLEM, MSG_BOX_RECOVERED)
        and the lights refreshed. Once none is left, the configured targets
        whose last backup failed are backed up again. A few stat calls: cheap
        enough for every tick and every ``coffre status``. Raises nothing.
        """
        problems = [str(p) for p in config_checks.check_environment(self._config)]
        problems += self._missing_repositories()
        appeared, gone = self.incidents.set_box_problems(problems)
        for problem in appeared:
            self._logger.error(
                "the box lacks what backups need: %s",
                problem,
                extra={"MESSAGE_ID": logs.MSG_BOX_PROBLEM},
            )
        for problem in gone:
            self._logger.info(
                "box problem solved: %s", problem, extra={"MESSAGE_ID": logs.MSG_BOX_RECOVERED}
            )
        if (appeared or gone) and self._running is not None:
            self._running.observed.refresh()
        if gone and not self.incidents.box_problems:
            self._retry_failed_backups()
        return self.incidents.box_problems

    def _missing_repositories(self) -> list[str]:
        """The initialised local targets whose repository folder is gone (its volume not
        mounted, or it was removed): each backup of them would fail. Raises nothing."""
        if self._running is None:
            return []  # before run(): state is not open yet
        state = self._running.state
        missing = []
        for target in self._config.targets:
            if not isinstance(target, LocalTarget) or target.path.exists():
                continue
            try:
                initialised = state.repository_id(target.name) is not None
            except (CoffreError, sqlite3.Error):
                continue  # state's own trouble is shown by the jobs that need it
            if initialised:
                missing.append(
                    f"target {target.name}: its repository {target.path} is missing "
                    "(is its volume mounted?)"
                )
        return missing

    def _retry_failed_backups(self) -> None:
        """Back up again the configured targets whose last backup failed (a box problem solved)."""
        running = self._running
        if running is None:
            return
        try:
            failed = tuple(
                target.name
                for target in self._config.targets
                if (run := running.state.last_finished_run(target.name, "backup")) is not None
                and run.outcome == FAILED
            )
        except CoffreError as error:
            self._logger.error("cannot tell which backups to run again: %s", error)
            return
        if failed:
            self._logger.info(
                "the box has what backups need again: backing up %s", ", ".join(failed)
            )
            running.submit(JobRequest(kind="backup", targets=failed, reason="box recovered"))

    def _submit_nightly(self, running: Running, due: datetime) -> None:
        state = running.state
        self._nightly_submitted = due
        self._logger.info(
            "nightly run due at %s: queued", due.astimezone(self._config.schedule.timezone)
        )
        job = running.submit(
            JobRequest(
                kind="backup",
                targets=tuple(t.name for t in self._config.targets),
                reason="nightly",
            )
        )
        running.disks.queue_disks(running.disks.present_disks(), reason="nightly")

        def done(finished: asyncio.Future[JobResult]) -> None:
            # A stop before the job ran leaves it due: the next start catches up.
            if finished.cancelled():
                return
            error = finished.result().get("error")
            if error is None or error["kind"] != "cancelled":
                state.set_time(NIGHTLY_KEY, due)

        job.done.add_done_callback(done)

    # --- the control socket -------------------------------------------------

    def routes(self, running: Running) -> dict[str, Handler]:
        """Each op of the control socket and the method serving it, typed by its request."""
        reads = partial(self._read, running)
        jobs = partial(self._job, running)
        return dict(
            (
                _route(PingRequest, self._ping),
                _route(StatusRequest, partial(self._status, running)),
                _route(ArchivesRequest, partial(self._archives, running)),
                _route(BackupRequest, jobs),
                _route(PruneRequest, jobs),
                _route(InitRequest, jobs),
                _route(DisksRequest, partial(self._disks, running)),
                _route(DiskForgetRequest, partial(self._forget, running)),
                _route(OffsiteEnrollRequest, partial(self._offsite, running)),
                _route(DiskEnrollRequest, partial(self._enroll, running)),
                _route(RestoreRequest, reads),
                _route(FindRequest, reads),
                _route(BrowseRequest, reads),
                _route(KeyExportRequest, reads),
                _route(IncidentShowRequest, partial(self._incident_show, running)),
                _route(IncidentClearRequest, partial(self._incident_clear, running)),
                _route(DrillRequest, partial(self._drill, running)),
                _route(CheckRequest, partial(self._check, running)),
            )
        )

    def _handlers(self, running: Running) -> Handler:
        """The control socket's handler: each request to the method serving its op."""
        table = self.routes(running)

        async def handle(request: Request, send: Send, client: Client) -> None:
            # parse_request knows every op: a request is always in the table.
            await table[request.op](request, send, client)

        return handle

    def _targets(self, running: Running, asked: tuple[str, ...]) -> tuple[str, ...]:
        """The targets named (checked: configured or enrolled), or every configured one."""
        if not asked:
            return tuple(t.name for t in self._config.targets)
        return tuple(require_known(self._config, running.state, name) for name in asked)

    async def _ping(self, request: PingRequest, send: Send, client: Client) -> None:
        await send({"event": "result", "ok": True})

    async def _status(
        self, running: Running, request: StatusRequest, send: Send, client: Client
    ) -> None:
        self.check_box()  # a problem just solved shows as solved
        now = self._clock.now()
        report = status.build(
            self._config,
            running.state,
            running.main,
            now,
            self._next_nightly(now),
            network=running.queues[lanes.NETWORK],
            reads=running.queues[lanes.READS],
            disks=running.disks.report(),
            problems=self.incidents.failures(),
            clock_synchronised=running.observed.observer.clock_synchronised(),
        )
        report["maintenance"] = running.maintenance.view(self._config.schedule.timezone)
        if running.services.share is not None:
            survey = await running.services.share.survey()
            names = [t.name for t in self._config.targets] + [d.name for d in running.state.disks()]
            report["share"] = share_view(
                survey, running.state, names, self._config.schedule.timezone
            )
        await send({"event": "result", "ok": True, "status": report})

    async def _archives(
        self, running: Running, request: ArchivesRequest, send: Send, client: Client
    ) -> None:
        now = self._clock.now()
        reports = {
            name: status.archives_report(self._config, running.state, name, now)
            for name in self._targets(running, request.targets)
        }
        await send({"event": "result", "ok": True, "targets": reports})

    async def _disks(
        self, running: Running, request: DisksRequest, send: Send, client: Client
    ) -> None:
        await send({"event": "result", "ok": True, "disks": running.disks.report()})

    async def _forget(
        self, running: Running, request: DiskForgetRequest, send: Send, client: Client
    ) -> None:
        running.disks.forget(request.name)
        await send({"event": "result", "ok": True})

    async def _offsite(
        self, running: Running, request: OffsiteEnrollRequest, send: Send, client: Client
    ) -> None:
        await offsite_enroll.enroll(
            running.services, request.name, request.accept, send, clock=self._clock
        )

    async def _incident_show(
        self, running: Running, request: IncidentShowRequest, send: Send, client: Client
    ) -> None:
        await running.incidents.show(send, client)

    async def _incident_clear(
        self, running: Running, request: IncidentClearRequest, send: Send, client: Client
    ) -> None:
        await running.incidents.clear(request, send, client)

    async def _drill(
        self, running: Running, request: DrillRequest, send: Send, client: Client
    ) -> None:
        await running.desk.drill(request, send, client)

    async def _read(
        self, running: Running, request: ReadRequest, send: Send, client: Client
    ) -> None:
        await running.desk.handle(request, send, client)

    async def _enroll(
        self, running: Running, request: DiskEnrollRequest, send: Send, client: Client
    ) -> None:
        options = JobOptions(
            device=request.device, format=request.format and request.yes, adopt=request.adopt
        )
        job = running.main.submit(
            JobRequest(kind="enroll", targets=(request.name,), options=options)
        )
        await self._follow(job, send)

    async def _follow(self, job: Job, send: Send) -> None:
        """Stream ``job``'s events to the client until its result."""
        events: asyncio.Queue[Event] = asyncio.Queue()
        job.listeners.append(events)
        try:
            await send({"event": "queued", "job": job.describe()})
            while True:
                event = await events.get()
                await send(event)
                if event.get("event") == "result":
                    return
        finally:
            job.listeners.remove(events)

    async def _job(
        self,
        running: Running,
        request: BackupRequest | PruneRequest | InitRequest,
        send: Send,
        client: Client,
    ) -> None:
        """Queue a backup, prune or init; follow it, or answer at once with the queued job."""
        if isinstance(request, PruneRequest):
            # Asked by a person, retention works on borg's own list, not on
            # state's: archives may have been added or removed by hand.
            options = JobOptions(dry_run=request.dry_run, refresh=True)
        elif isinstance(request, InitRequest):
            options = JobOptions(adopt=request.adopt, replace=request.replace)
        else:
            options = JobOptions()
        run = running.submit(
            JobRequest(
                kind=request.op,
                targets=self._targets(running, request.targets),
                reason="asked",
                options=options,
            )
        )
        if not request.wait:
            await send({"event": "result", "ok": True, "queued": run.describe()})
            return
        await run.follow(send)

    async def _check(
        self, running: Running, request: CheckRequest, send: Send, client: Client
    ) -> None:
        """Queue a check (``coffre check``) in the maintenance lane; follow it, or answer at
        once. It runs even near the nightly (a person asked), and yields like any other."""
        options = JobOptions(checks=request.kinds)
        job = running.maintenance.ask(
            JobRequest(
                kind="check", targets=self._targets(running, request.targets), options=options
            )
        )
        if not request.wait:
            await send({"event": "result", "ok": True, "queued": job.describe()})
            return
        await self._follow(job, send)
