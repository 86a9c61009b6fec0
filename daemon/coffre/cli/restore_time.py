"""The restore-time lines of ``coffre status``: how long getting everything back takes.

From status's ``restore`` part (``coffre.observe.status.restore_view``), per
target: the estimate of its last drill, over the objective or not, stale or
not; or why there is none. Target names are the configuration's and the
enrolled disks' (letters, digits, ".", "_", "-"): printed as they are.
"""

from __future__ import annotations

from coffre.cli.support import size
from coffre.core.reports import RestoreEstimateView, RestoreView
from coffre.proof.restore_estimate import duration_words

__all__ = ["print_restore_times", "restore_lines"]


def print_restore_times(restore: RestoreView) -> None:
    """Print the restore times block of ``coffre status``. Raises nothing."""
    if not restore["estimates"]:
        return
    print(f"\nrestore times (objective {restore['objective_hours']} h, restore.rto_hours)")
    for name, found in restore["estimates"].items():
        for line in restore_lines(name, found, restore):
            print(f"  {line}")


def restore_lines(name: str, found: RestoreEstimateView, restore: RestoreView) -> list[str]:
    """The lines of target ``name``: its figure, then what is wrong with it, if anything.

    E.g. "getting everything back from local takes about 3 h 10 min (drill of
    2026-11-03, 42.0 MB/s)", then "  over the objective of 24 h: ..." when it
    exceeds ``restore.rto_hours``, "  the drill is older than 45 days: ..."
    when stale. Raises nothing.
    """
    again = f"`coffre drill --target {name}`"
    seconds = found["seconds"]
    if seconds is None:
        return [f"getting everything back from {name}: unknown, {found['unknown']} ({again})"]
    day = (found["drill_at"] or "?")[:10]
    rate = f"{size(round(found['rate'] or 0))}/s"
    link = " over the Internet link" if found["over_link"] else ""
    lines = [
        f"getting everything back from {name} takes about {duration_words(seconds)} "
        f"(drill of {day}, {rate}{link})"
    ]
    if found["over_objective"]:
        lines.append(f"  over the objective of {restore['objective_hours']} h: {_faster(found)}")
    if found["stale"]:
        lines.append(f"  the drill is older than {restore['stale_after_days']} days: {again}")
    return lines


def _faster(found: RestoreEstimateView) -> str:
    """What brings a target over the objective back under it."""
    if found["over_link"]:
        # The offsite copy is for a fire or a theft; the practice's link makes it slow.
        return (
            "the Internet link makes the offsite copy slow; the USB disks are the fast way "
            "back (a faster link, or a disk from the host, shortens it)"
        )
    return "a faster disk, or a USB disk kept at the practice, gets everything back sooner"
