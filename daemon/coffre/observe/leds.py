"""The box's lights: health -> a pattern of three LEDs -> the LED class devices in sysfs.

One rule maps each :class:`coffre.core.health.Health` to a :class:`Pattern`
(the same table is in the README, "Lights", and in docs/guide-cabinet.md):

============== ============================== ======= =======
health         green                          amber   red
============== ============================== ======= =======
OK             on                             off     off
WORKING        blinks fast (150 ms / 150 ms)  off     off
SAFE_TO_REMOVE blinks slowly (1 s / 1 s)      off     off
ATTENTION      off                            on      off
FAILURE        off                            off     on
(no daemon)    off                            off     blinks slowly
============== ============================== ======= =======

The last line is no health: it is what the box shows while the daemon does
not run (``coffre leds stopped``, run by systemd after the daemon ends, and
the daemon itself as it stops), so that a stopped or crashed daemon never
leaves a green light behind.

Each LED is a directory ``<sysfs_root>/<name>/`` (``/sys/class/leds`` on a
box, a temporary directory shaped like it in tests) whose ``trigger``,
``brightness``, ``delay_on`` and ``delay_off`` are written. Files are written
only when the pattern changes; a write that fails (an LED the box does not
have) is logged once, and never stops the daemon.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from coffre.core.config_types import LedsConfig
from coffre.core.health import Facts, Health, Verdict, assess


@dataclass(frozen=True)
class Light:
    """One LED: off, steady on, or blinking (``blink``: milliseconds on, milliseconds off)."""

    on: bool = False
    blink: tuple[int, int] | None = None


OFF = Light()
ON = Light(on=True)
FAST = Light(on=True, blink=(150, 150))
SLOW = Light(on=True, blink=(1000, 1000))


@dataclass(frozen=True)
class Pattern:
    """What the three LEDs show."""

    green: Light = OFF
    amber: Light = OFF
    red: Light = OFF


#: The one rule from health to lights.
PATTERNS: dict[Health, Pattern] = {
    Health.OK: Pattern(green=ON),
    Health.WORKING: Pattern(green=FAST),
    Health.SAFE_TO_REMOVE: Pattern(green=SLOW),
    Health.ATTENTION: Pattern(amber=ON),
    Health.FAILURE: Pattern(red=ON),
}


#: While no daemon runs: nothing is backed up, and nobody may think otherwise.
STOPPED = Pattern(red=SLOW)


class LedWriter(Protocol):
    """Puts a pattern on the LEDs; returns False when some LED could not be written."""

    def write(self, pattern: Pattern) -> bool: ...


class SysfsLeds:
    """Writes patterns to ``<sysfs_root>/<name>/`` for the LED names of ``config``."""

    def __init__(self, config: LedsConfig, logger: logging.Logger) -> None:
        self._config = config
        self._logger = logger
        self._max: dict[str, str] = {}
        self._warned: set[tuple[str, int | None]] = set()

    def write(self, pattern: Pattern) -> bool:
        """Write each LED of ``pattern``; an OSError is logged (once per LED and errno)."""
        ok = True
        config = self._config
        for name, light in (
            (config.green, pattern.green),
            (config.amber, pattern.amber),
            (config.red, pattern.red),
        ):
            directory = config.sysfs_root / name
            try:
                self._set(directory, light)
            except OSError as error:
                ok = False
                if (name, error.errno) not in self._warned:
                    self._warned.add((name, error.errno))
                    self._logger.warning(
                        "cannot set the LED %s under %s: %s (check [leds] in the configuration)",
                        name,
                        config.sysfs_root,
                        error.strerror or error,
                    )
        return ok

    def _set(self, directory: Path, light: Light) -> None:
        # The trigger first: "none" stops a blink, and the kernel only shows
        # delay_on/delay_off once the timer trigger is set.
        _put(directory / "trigger", "none")
        if light.blink is None:
            _put(directory / "brightness", self._brightest(directory) if light.on else "0")
            return
        _put(directory / "brightness", self._brightest(directory))
        _put(directory / "trigger", "timer")
        _put(directory / "delay_on", str(light.blink[0]))
        _put(directory / "delay_off", str(light.blink[1]))

    def _brightest(self, directory: Path) -> str:
        key = str(directory)
        if key not in self._max:
            try:
                self._max[key] = (directory / "max_brightness").read_text().strip() or "1"
            except OSError:
                self._max[key] = "1"
        return self._max[key]


def _put(path: Path, value: str) -> None:
    # One write(2) of the whole value, as sysfs attributes want; no directory is made.
    with open(path, "w", encoding="ascii") as attribute:
        attribute.write(value)


class Lights:
    """Shows the health of :class:`Facts` on the LEDs, writing only when the pattern changes."""

    def __init__(self, writer: LedWriter, logger: logging.Logger) -> None:
        self._writer = writer
        self._logger = logger
        self._shown: Pattern | None = None
        self.verdict: Verdict | None = None

    def show(self, facts: Facts) -> Verdict:
        """Assess ``facts``, put their pattern on the LEDs if it changed; returns the verdict.

        A change of health is logged with its reasons. A pattern that could
        not be fully written is tried again at the next call.
        """
        verdict = assess(facts)
        if self.verdict is None or verdict.health != self.verdict.health:
            self._logger.info(
                "lights: %s%s",
                verdict.health.value,
                f" ({'; '.join(verdict.reasons)})" if verdict.reasons else "",
            )
        self.verdict = verdict
        pattern = PATTERNS[verdict.health]
        if pattern != self._shown:
            self._shown = pattern if self._writer.write(pattern) else None
        return verdict

    def stopped(self) -> None:
        """Show :data:`STOPPED`: the daemon is about to end. Raises nothing."""
        self._shown = STOPPED if self._writer.write(STOPPED) else None
