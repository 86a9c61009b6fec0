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
from datetime import datetime
from typing import Any

from coffre.borg.env import BorgEnvironment, default_binary
from coffre.borg.passphrase import read_passphrase
from coffre.borg.runner import BorgRunner
from coffre.config import loader as config_checks
from coffre.core import schedule
from coffre.core.clock import Clock
from coffre.core.config_types import Config, LocalTarget
from coffre.core.errors import CoffreError, UsageError
from coffre.core.request_check import check_request
from coffre.daemon.control import Client, Message, Send, serve
from coffre.daemon.executor import Executor
from coffre.daemon.notify import Notifier
from coffre.daemon.support_ops import SupportDesk
from coffre.jobs import lanes
from coffre.jobs.queue import Job, JobEvent, JobKind, JobQueue, JobRequest
from coffre.jobs.services import Services
from coffre.jobs.supervision import Incidents, job_crashed, stalled_lanes
from coffre.observe import status
from coffre.observe.facts import Observer
from coffre.observe.observability import Observability
from coffre.storage import logs
from coffre.storage.audit import AuditLog, audit_path
from coffre.storage.state import FAILED, State
from coffre.support.restore import remove_stale_staging
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


class Daemon:
    """``coffre daemon``: runs until SIGTERM or SIGINT; ``run`` returns the exit code."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        notifier: Notifier,
        logger: Any,
    ) -> None:
        self._config = config
        self._clock = clock
        self._notifier = notifier
        self._logger = logger
        self._stopping = asyncio.Event()
        self._nightly_submitted: datetime | None = None
        self._state: State | None = None
        self._queue: JobQueue | None = None
        # The network lane: offsite uploads, never in the way of the main lane (lanes.py).
        self._network: JobQueue | None = None
        self._reads: JobQueue | None = None
        self._services: Services | None = None
        self._disks: DiskWatch | None = None
        self._desk: SupportDesk | None = None
        self._observed: Observability | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._lanes_ok = True
        self._exit_code = 0
        #: What the box lacks now, failures state could not record, crashes.
        self.incidents = Incidents()

    # --- life ---------------------------------------------------------------

    async def run(self) -> int:
        config, logger = self._config, self._logger
        # State, keys and caches are nobody else's business, whoever started us.
        os.umask(0o077)
        for directory, mode in (
            (config.paths.state, 0o700),
            (config.paths.cache, 0o700),
            (config.paths.runtime, 0o755),
        ):
            directory.mkdir(parents=True, exist_ok=True, mode=mode)
        state = State.open(config.paths.state_db, logger=logger, now=self._clock.now())
        self._state = state
        interrupted = state.mark_interrupted_runs(self._clock.now())
        if interrupted:
            logger.warning("%d run(s) were cut short by the last stop of the daemon", interrupted)
        for stale in await asyncio.to_thread(remove_stale_staging, config.source.paths):
            logger.warning("removed %s: what a restore cut short had extracted", stale)
        runner = BorgRunner(
            BorgEnvironment(
                binary=config.borg.binary or default_binary(),
                base_dir=config.paths.borg_base,
                cache_dir=config.paths.borg_cache,
            ),
            lambda: read_passphrase(config.encryption.passphrase_file),
            lock_wait=config.borg.lock_wait,
            stop_timeout=config.borg.stop_timeout,
            logger=logger,
        )
        services = Services(
            config=config, state=state, borg=runner, clock=self._clock, logger=logger
        )
        self._services = services
        incidents = self.incidents
        executor = Executor(
            services,
            RepositoryCatalog(config, state, config.paths.mounts, services=services),
            wait_plugged=lambda name, within: disks.wait_plugged(name, within),
            incidents=incidents,
        )
        # Metrics and LEDs read state and the incidents; the LEDs change when a
        # job starts or ends, after a disk event and when a box problem comes
        # or goes, never on a timer.
        observed = Observability(
            config, Observer(config, state, self._clock, incidents=incidents), runner, logger
        )
        self._observed = observed

        async def execute(job: Job) -> JobEvent:
            asked = job.request
            self._notifier.notify(
                STATUS=f"{asked.kind} of {', '.join(asked.targets)} ({asked.reason})"
            )
            try:
                result = await executor(job)
            finally:
                self._notifier.notify(STATUS="idle")
            if asked.kind == "enroll" and result["ok"]:
                disks.enrolled(asked.targets[0], str(asked.option("device")))
            return result

        def crashed(job: Job, error: Exception) -> JobEvent:
            return job_crashed(job, error, logger, incidents)

        queue = JobQueue(observed.around(execute), on_crash=crashed)
        self._queue = queue
        network = JobQueue(
            observed.around(lanes.retrying(execute, config, self._clock, logger)),
            on_crash=crashed,
        )
        self._network = network
        reads = JobQueue(observed.around(execute), on_crash=crashed)
        self._reads = reads

        def disk_busy(name: str) -> bool:
            # A restore from a disk has it mounted: a plug event then is no new disk.
            return queue.touches(name) or reads.touches(name)

        disks = DiskWatch(config, state, self._clock, logger, queue.submit, disk_busy)
        self._disks = disks
        self._desk = SupportDesk(
            config,
            state,
            self._clock,
            AuditLog(audit_path(config), logger),
            self._run,
            disk_busy=disk_busy,
        )
        loop = asyncio.get_running_loop()
        watcher = UdevWatcher(observed.after(disks.handle), logger=logger)
        watcher.start(loop)
        disks.startup(watcher.present())
        server = await serve(config.paths.control_socket, self._handle)
        await observed.start(main=queue, network=network, reads=reads)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        self.check_box()
        workers = [
            asyncio.create_task(queue.serve(), name="main lane"),
            asyncio.create_task(network.serve(), name="network lane"),
            asyncio.create_task(reads.serve(), name="reads lane"),
            asyncio.create_task(self._timer(), name="timer"),
        ]
        self._workers = workers
        for task in workers:
            task.add_done_callback(self._worker_ended)
        self._notifier.notify(READY="1", STATUS="idle")
        logger.info(
            "coffre daemon ready: %d target(s), nightly at %s %s, control socket %s",
            len(config.targets),
            config.schedule.daily.strftime("%H:%M"),
            config.schedule.timezone.key,
            config.paths.control_socket,
            extra={"MESSAGE_ID": logs.MSG_DAEMON_READY},
        )
        try:
            await self._stopping.wait()
        finally:
            self._notifier.notify(STOPPING="1", STATUS="stopping")
            if queue.running is not None:
                logger.info("stopping: interrupting the running job at a checkpoint")
            else:
                logger.info("stopping")
            server.close()
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for lane in (queue, network, reads):
                self._abandon_pending(lane)
            watcher.close()
            await server.wait_closed()
            await observed.close()
            with contextlib.suppress(FileNotFoundError):
                config.paths.control_socket.unlink()
            state.close()
            logger.info("coffre daemon stopped")
        return self._exit_code

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

    async def _timer(self) -> None:
        """Tick until cancelled: nightly runs due, the box's files, the lanes and the watchdog.

        Raises nothing but cancellation: a tick that cannot read state says so
        in the journal and the next tick tries again.
        """
        plan = self._config.schedule
        interval = self._notifier.watchdog_interval
        while True:
            now = self._clock.now()
            try:
                self._nightly_if_due(now)
            except CoffreError as error:
                self._logger.error("cannot tell whether a nightly run is due: %s", error)
            self.check_box()
            self._watch_lanes(interval)
            delay = (schedule.next_due(now, plan.daily, plan.timezone) - now).total_seconds()
            delay = min(delay, interval if interval is not None else BOX_CHECK_PERIOD)
            await asyncio.sleep(max(delay, 0.0))

    def _nightly_if_due(self, now: datetime) -> None:
        """Queue the nightly run due at ``now`` (a missed one too). Raises StateError."""
        plan = self._config.schedule
        assert self._state is not None
        if self._state.get_time(NIGHTLY_KEY) is None:
            # A new box: nothing was missed yet (its targets are not even
            # initialised); the first nightly run is the next one due.
            self._state.set_time(NIGHTLY_KEY, schedule.last_due(now, plan.daily, plan.timezone))
            self._logger.info(
                "first start: the first nightly run is due at %s",
                self._next_nightly(now).astimezone(plan.timezone),
            )
        due = schedule.catch_up_due(
            self._state.get_time(NIGHTLY_KEY), now, plan.daily, plan.timezone
        )
        if due is not None and due != self._nightly_submitted:
            self._submit_nightly(due)

    def _watch_lanes(self, interval: float | None) -> None:
        """Ping the watchdog if every lane serves; else say which does not, once, and stop pinging.

        A lane whose jobs wait while it runs none is wedged: without pings,
        systemd aborts the daemon and restarts it (a dead worker already
        ended the daemon, see :meth:`_worker_ended`).
        """
        stalled = stalled_lanes(
            {lanes.MAIN: self._queue, lanes.NETWORK: self._network, lanes.READS: self._reads},
            time.monotonic(),
            STALL_GRACE,
        )
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
        if (appeared or gone) and self._observed is not None:
            self._observed.refresh()
        if gone and not self.incidents.box_problems:
            self._retry_failed_backups()
        return self.incidents.box_problems

    def _missing_repositories(self) -> list[str]:
        """The initialised local targets whose repository folder is gone (its volume not
        mounted, or it was removed): each backup of them would fail. Raises nothing."""
        if self._state is None:
            return []
        missing = []
        for target in self._config.targets:
            if not isinstance(target, LocalTarget) or target.path.exists():
                continue
            try:
                initialised = self._state.repository_id(target.name) is not None
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
        if self._state is None or self._queue is None:
            return
        try:
            failed = tuple(
                target.name
                for target in self._config.targets
                if (run := self._state.last_finished_run(target.name, "backup")) is not None
                and run.outcome == FAILED
            )
        except CoffreError as error:
            self._logger.error("cannot tell which backups to run again: %s", error)
            return
        if failed:
            self._logger.info(
                "the box has what backups need again: backing up %s", ", ".join(failed)
            )
            self._run(JobRequest(kind="backup", targets=failed, reason="box recovered"))

    def _submit_nightly(self, due: datetime) -> None:
        assert self._queue is not None and self._state is not None
        state = self._state
        self._nightly_submitted = due
        self._logger.info(
            "nightly run due at %s: queued", due.astimezone(self._config.schedule.timezone)
        )
        job = self._run(
            JobRequest(
                kind="backup",
                targets=tuple(t.name for t in self._config.targets),
                reason="nightly",
            )
        )
        if self._disks is not None:
            self._disks.queue_disks(self._disks.present_disks(), reason="nightly")

        def done(_: asyncio.Future[JobEvent]) -> None:
            # A stop before the job ran leaves it due: the next start catches up.
            result = _.result() if not _.cancelled() else None
            if result is not None and result.get("error", {}).get("kind") != "cancelled":
                state.set_time(NIGHTLY_KEY, due)

        job.done.add_done_callback(done)

    def _run(self, request: JobRequest) -> lanes.Run:
        """Queue ``request``: local targets in the main lane, offsite ones in the network lane,
        reads (restore, find, browse, key export) in the reads lane."""
        assert self._queue is not None and self._network is not None and self._reads is not None
        queues = {lanes.MAIN: self._queue, lanes.NETWORK: self._network, lanes.READS: self._reads}
        return lanes.Run(queues, self._config, request)

    # --- the control socket -------------------------------------------------

    def _targets(self, request: Message, key: str = "targets") -> tuple[str, ...]:
        asked = request.get(key)
        if asked in (None, [], ""):
            return tuple(t.name for t in self._config.targets)
        names = (asked,) if isinstance(asked, str) else tuple(str(n) for n in asked)
        assert self._state is not None
        return tuple(require_known(self._config, self._state, name) for name in names)

    async def _handle(self, request: Message, send: Send, client: Client) -> None:
        check_request(request)  # a value borg would refuse is a usage error, before any job
        assert self._state is not None and self._queue is not None
        op = request["op"]
        now = self._clock.now()
        if op == "ping":
            await send({"event": "result", "ok": True})
        elif op == "status":
            self.check_box()  # a problem just solved shows as solved
            report = status.build(
                self._config,
                self._state,
                self._queue,
                now,
                self._next_nightly(now),
                network=self._network,
                reads=self._reads,
            )
            report["disks"] = self._disks.report() if self._disks is not None else []
            report["problems"] = list(self.incidents.failures())
            await send({"event": "result", "ok": True, "status": report})
        elif op == "archives":
            reports = {
                name: status.archives_report(self._config, self._state, name, now)
                for name in self._targets(request)
            }
            await send({"event": "result", "ok": True, "targets": reports})
        elif op in ("backup", "prune", "init"):
            await self._job(op, request, send)
        elif op == "disks":
            assert self._disks is not None
            await send({"event": "result", "ok": True, "disks": self._disks.report()})
        elif op == "disk_forget":
            assert self._disks is not None
            self._disks.forget(str(request.get("name", "")))
            await send({"event": "result", "ok": True})
        elif op == "offsite_enroll":
            assert self._services is not None
            accept = request.get("accept")
            await offsite_enroll.enroll(
                self._services,
                str(request.get("name", "")),
                None if accept is None else str(accept),
                send,
                clock=self._clock,
            )
        elif op == "disk_enroll":
            await self._enroll(request, send)
        elif op in ("restore", "find", "browse", "key_export"):
            assert self._desk is not None
            await self._desk.handle(op, request, send, client)
        else:
            raise UsageError(f"unknown request {op!r}")

    async def _enroll(self, request: Message, send: Send) -> None:
        assert self._queue is not None
        name, device = str(request.get("name", "")), str(request.get("device", ""))
        options: dict[str, Any] = {"device": device}
        if request.get("format") and request.get("yes"):
            options["format"] = True
        if request.get("adopt"):
            options["adopt"] = True
        job = self._queue.submit(
            JobRequest(kind="enroll", targets=(name,), options=tuple(sorted(options.items())))
        )
        await self._follow(job, send)

    async def _follow(self, job: Job, send: Send) -> None:
        """Stream ``job``'s events to the client until its result."""
        events: asyncio.Queue[JobEvent] = asyncio.Queue()
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

    async def _job(self, op: str, request: Message, send: Send) -> None:
        assert self._queue is not None
        kind: JobKind = "backup" if op == "backup" else "prune" if op == "prune" else "init"
        options: dict[str, Any] = {}
        for flag in ("dry_run", "adopt", "replace"):
            if request.get(flag):
                options[flag] = True
        if kind == "prune":
            # Asked by a person, retention works on borg's own list, not on
            # state's: archives may have been added or removed by hand.
            options["refresh"] = True
        run = self._run(
            JobRequest(
                kind=kind,
                targets=self._targets(request),
                reason="asked",
                options=tuple(sorted(options.items())),
            )
        )
        if not request.get("wait", True):
            await send({"event": "result", "ok": True, "queued": run.describe()})
            return
        await run.follow(send)
