"""``coffre leds stopped``: the lights of a box whose daemon is not running.

systemd runs it after the daemon ends, whatever the way (``ExecStopPost=``
of the unit): a stop, a crash, a kill by the watchdog. Without it the LEDs
would keep the daemon's last pattern, maybe green, over a box that backs up
nothing. The daemon shows the real state again at its next start.
"""

from __future__ import annotations

import argparse
import logging
import sys

from coffre.cli.support import EXIT_OK
from coffre.core.config_types import Config


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``leds`` and its action to the subcommands ``sub``."""
    leds = sub.add_parser("leds", help="set the box's lights (systemd runs it)")
    action = leds.add_subparsers(dest="leds_command", required=True, metavar="ACTION")
    action.add_parser(
        "stopped", help="show that the daemon is not running (run after it stops or dies)"
    )


def cmd_leds(args: argparse.Namespace, cfg: Config) -> int:
    """Put the "no daemon" pattern on the LEDs of ``cfg``; always EXIT_OK.

    A light that cannot be written is said on stderr (the journal, under
    systemd), never turned into a failure: this runs while the unit stops,
    and must not make the stop look failed.
    """
    from coffre.observe.leds import STOPPED, SysfsLeds

    if not cfg.leds.enabled:
        return EXIT_OK
    logger = logging.getLogger("coffre.leds")
    logger.addHandler(logging.StreamHandler(sys.stderr))
    logger.propagate = False
    SysfsLeds(cfg.leds, logger).write(STOPPED)
    return EXIT_OK
