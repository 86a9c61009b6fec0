"""The daemon's side of observation: the exporter and the LEDs, fed by ``observe.facts``.

:class:`Observability` starts the exporter (``coffre.observe.metrics``, imported
only when enabled), asks borg its version once, and refreshes the LEDs
(``coffre.observe.leds``) when a job starts or ends and after each disk event;
never on a timer, so the idle daemon is not woken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from coffre.core.config_types import Config
from coffre.core.errors import CoffreError
from coffre.jobs.queue import Job, JobQueue
from coffre.observe.facts import BorgVersion, Observer

if TYPE_CHECKING:
    from coffre.observe.leds import Lights
    from coffre.observe.metrics import Exporter

_E = TypeVar("_E")


class Observability:
    """The exporter and the LEDs of a running daemon.

    :meth:`start` once the lanes exist (binds the exporter's address: a
    failure is logged, never fatal, the backups matter more); :meth:`refresh`
    at each job's start and end (:meth:`around` the lanes' ``execute``) and
    after each disk event (:meth:`after` the disk handler); :meth:`close` at
    stop.
    """

    def __init__(
        self,
        config: Config,
        observer: Observer,
        borg: BorgVersion,
        logger: logging.Logger,
    ) -> None:
        self._config = config
        self.observer = observer
        self._borg = borg
        self._logger = logger
        self.lights: Lights | None = None
        self.exporter: Exporter | None = None
        self._version_task: asyncio.Task[None] | None = None

    async def start(
        self, *, main: JobQueue, network: JobQueue | None = None, reads: JobQueue | None = None
    ) -> None:
        """Watch the lanes ``main``, ``network`` and ``reads``; start the exporter and the
        lights as configured, and show the lights once."""
        config = self._config
        self.observer.main, self.observer.network = main, network
        self.observer.reads = reads
        if config.leds.enabled:
            from coffre.observe.leds import Lights, SysfsLeds

            self.lights = Lights(SysfsLeds(config.leds, self._logger), self._logger)
        if config.metrics.enabled:
            from coffre.observe.metrics import Exporter

            exporter = Exporter(self.observer, config, self._logger)
            if await exporter.serve(config.metrics.host, config.metrics.port):
                self.exporter = exporter
                self._version_task = asyncio.get_running_loop().create_task(
                    self._ask_borg_version(exporter), name="borg-version"
                )
        self.refresh()

    async def _ask_borg_version(self, exporter: Exporter) -> None:
        # Once per daemon: build_info carries it, a scrape never runs borg.
        try:
            exporter.borg_version = await self._borg.version()
        except CoffreError as error:
            self._logger.warning("cannot learn borg's version for the metrics: %s", error)

    def refresh(self) -> None:
        """Measure local free space and show the lights for the facts now. Raises nothing."""
        self.observer.measure()
        if self.lights is None:
            return
        try:
            facts = self.observer.facts()
        except Exception as error:  # noqa: BLE001 - the lights must never stop a job
            self._logger.error("cannot read state for the lights: %s", error)
            return
        self.lights.show(facts)

    def after(self, handler: Callable[[_E], None]) -> Callable[[_E], None]:
        """``handler`` (of disk events), followed by a refresh of the lights."""

        def handle(event: _E) -> None:
            try:
                handler(event)
            finally:
                self.refresh()

        return handle

    def around(self, execute: Callable[[Job], Awaitable[_E]]) -> Callable[[Job], Awaitable[_E]]:
        """``execute`` (of the job lanes) with a refresh when the job starts and once it ended.

        The end's refresh is scheduled after the lane has let the job go
        (``call_soon``): by then the lane shows its next job, or none.
        """

        async def run(job: Job) -> _E:
            self.refresh()
            try:
                return await execute(job)
            finally:
                asyncio.get_running_loop().call_soon(self.refresh)

        return run

    async def close(self) -> None:
        """Stop the exporter and the borg version question; the lights say no daemon runs."""
        if self.lights is not None:
            self.lights.stopped()
        if self._version_task is not None:
            self._version_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._version_task
        if self.exporter is not None:
            await self.exporter.close()
