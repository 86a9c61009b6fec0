"""The daemon: wires the timer and the control socket to the job queue.

One asyncio loop does everything: it serves the socket, runs jobs one at a
time, wakes for the nightly run and pings the systemd watchdog. Nothing else
wakes it while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

from coffre import lanes, logs, offsite_enroll, schedule, status
from coffre.audit import AuditLog, audit_path
from coffre.borg.env import BorgEnvironment, default_binary
from coffre.borg.runner import BorgRunner
from coffre.clock import Clock
from coffre.config_types import Config
from coffre.control import Client, Message, Send, serve
from coffre.disk_events import DiskWatch
from coffre.errors import UsageError
from coffre.executor import Executor
from coffre.jobs import Job, JobEvent, JobKind, JobQueue, JobRequest
from coffre.notify import Notifier
from coffre.observe import Observability, Observer
from coffre.restore import remove_stale_staging
from coffre.services import Services
from coffre.state import State
from coffre.support_ops import SupportDesk
from coffre.targets.registry import RepositoryCatalog, require_known
from coffre.udev import UdevWatcher

#: State key of the due instant of the last nightly run made.
NIGHTLY_KEY = "nightly.last_due"

#: Without a watchdog, wake at least this often so a wall-clock jump (a box
#: without RTC setting its clock from NTP) delays the nightly by an hour at most.
MAX_SLEEP = 3600.0


def read_passphrase(path: Path) -> bytes:
    """The passphrase file's content, without its final newline."""
    return path.read_bytes().rstrip(b"\r\n")


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
        executor = Executor(
            services,
            RepositoryCatalog(config, state, config.paths.mounts, services=services),
            wait_plugged=lambda name, within: disks.wait_plugged(name, within),
        )
        # Metrics and LEDs read state; the LEDs change when a job starts or ends
        # and after a disk event, never on a timer.
        observed = Observability(config, Observer(config, state, self._clock), runner, logger)

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

        queue = JobQueue(observed.around(execute))
        self._queue = queue
        network = JobQueue(observed.around(lanes.retrying(execute, config, self._clock, logger)))
        self._network = network
        reads = JobQueue(observed.around(execute))
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
        workers = [
            asyncio.create_task(queue.serve(), name="queue"),
            asyncio.create_task(network.serve(), name="network"),
            asyncio.create_task(reads.serve(), name="reads"),
            asyncio.create_task(self._timer(), name="timer"),
        ]
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
        return 0

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
        plan = self._config.schedule
        interval = self._notifier.watchdog_interval
        assert self._state is not None
        if self._state.get_time(NIGHTLY_KEY) is None:
            # A new box: nothing was missed yet (its targets are not even
            # initialised); the first nightly run is the next one due.
            first = self._clock.now()
            self._state.set_time(NIGHTLY_KEY, schedule.last_due(first, plan.daily, plan.timezone))
            self._logger.info(
                "first start: the first nightly run is due at %s",
                self._next_nightly(first).astimezone(plan.timezone),
            )
        while True:
            now = self._clock.now()
            due = schedule.catch_up_due(
                self._state.get_time(NIGHTLY_KEY), now, plan.daily, plan.timezone
            )
            if due is not None and due != self._nightly_submitted:
                self._submit_nightly(due)
            delay = (self._next_nightly(now) - now).total_seconds()
            delay = min(delay, interval if interval is not None else MAX_SLEEP)
            await asyncio.sleep(max(delay, 0.0))
            if interval is not None:
                self._notifier.notify(WATCHDOG="1")

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
        assert self._state is not None and self._queue is not None
        op = request["op"]
        now = self._clock.now()
        if op == "ping":
            await send({"event": "result", "ok": True})
        elif op == "status":
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
