"""``python -m benchmarks``: every benchmark in one run, a table of figures at the end."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from benchmarks import (
    change_signal,
    drill,
    history,
    idle,
    nightly,
    offsite,
    restore,
    restore_estimate,
    scrape,
    share,
    snapshot_night,
    usb_plug,
    vs_borgmatic,
    vs_hand,
)
from benchmarks.common import (
    PREFIX,
    TIMEZONE,
    BorgCall,
    Night,
    Side,
    Wrapper,
    compile_like_the_package,
    describe_calls,
    print_table,
    run,
    venv_binary,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "only",
        nargs="?",
        choices=[
            "usb_plug",
            "restore",
            "change_signal",
            "drill",
            "restore_estimate",
            "snapshot_night",
        ],
        help="run this benchmark alone (default: all)",
    )
    parser.add_argument("--reps", type=int, default=7, help="measured nights per side (7)")
    parser.add_argument("--files", type=int, default=share.FILES, help="files in the share")
    parser.add_argument(
        "--idle-seconds", type=float, default=10.0, help="idle window of (c) (10 s)"
    )
    parser.add_argument(
        "--dir",
        default=os.environ.get("COFFRE_BENCH_DIR", "/var/tmp"),
        help="where the share and repositories are made (default /var/tmp, or $COFFRE_BENCH_DIR)",
    )
    parser.add_argument(
        "--plugs", type=int, default=usb_plug.REPS, help="measured USB plugs per side (5)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the files made, for a look")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    tz = ZoneInfo(TIMEZONE)
    borg = venv_binary("borg")
    root = Path(tempfile.mkdtemp(prefix="coffre-bench-", dir=args.dir))
    try:
        return _run(args, root, tz, borg, started)
    finally:
        if args.keep:
            print(f"files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _run(args: argparse.Namespace, root: Path, tz: ZoneInfo, borg: str, started: float) -> int:
    compile_like_the_package()
    if args.only is not None:
        if args.only == "usb_plug":
            alone = usb_plug.benchmark(root / "usb", borg, files=args.files, reps=args.plugs)
        elif args.only == "drill":
            alone = drill.benchmark(root / "drill", borg)
        elif args.only == "snapshot_night":
            alone = snapshot_night.benchmark(root / "snapshot", files=args.files, reps=args.reps)
        elif args.only == "restore_estimate":
            alone = restore_estimate.benchmark(root / "estimate", borg)
        elif args.only == "change_signal":
            alone = change_signal.benchmark(root / "signal", borg, files=args.files, reps=args.reps)
        else:
            alone = restore.benchmark(root / "restore", borg, files=args.files)
        print()
        print_table(alone)
        print(f"(benchmarks took {time.monotonic() - started:.0f} s)")
        return 0
    snapshot_night.require_parts()
    try:
        past = history.build(datetime.now(tz), tz, PREFIX)
    except ValueError as error:
        raise SystemExit(f"cannot set up the history: {error}") from None
    coffre = nightly.CoffreSide(root / "coffre", past, borg)
    hand = vs_hand.HandSide(root / "hand", coffre.share, past, borg)
    borgmatic = vs_borgmatic.BorgmaticSide(root / "borgmatic", coffre.share, past, borg)
    sides: list[Side] = [coffre, hand, borgmatic]

    borg_version = run([borg, "--version"], os.environ).stdout.strip()
    print(
        f"{borg_version}, borgmatic {borgmatic.version()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU(s), in {root}"
    )
    began = time.monotonic()
    stats = share.fill(coffre.share, args.files)
    print(
        f"share: {stats.files} files in {stats.folders} folders, {stats.size / 1e6:.0f} MB "
        f"(written in {time.monotonic() - began:.0f} s)"
    )
    reasons = past.kept_reasons(tz, PREFIX)
    print(f"history ({past.scheme}):")
    for archive in past.archives:
        print(f"  {archive.name}  {', '.join(reasons[archive.name])}")
    print(f"tonight drops (coffre's retention): {past.dropped.name}")

    for builder in (coffre, hand, borgmatic):
        began = time.monotonic()
        builder.build()
        print(f"built {builder.name}'s repository in {time.monotonic() - began:.0f} s", flush=True)

    wrapper = Wrapper(root / "wrapper", borg)
    counted: dict[str, tuple[list[BorgCall], Night]] = {}
    print("dry pass (borg through a timing wrapper; also warms the page cache):")
    for side in sides:
        counted[side.name] = side.count(wrapper)
        print(f"  {side.name:<10} {describe_calls(*counted[side.name])}", flush=True)

    print(f"nights, {args.reps} per side in alternation, each from the same state:")
    running = coffre.start()
    try:
        nights = nightly.measure(sides, args.reps)
        resting = idle.measure(running, args.idle_seconds)
    finally:
        coffre.stop()

    figures = [
        vs_hand.calls_figure(counted[coffre.name][0]),
        *vs_hand.figures(nights),
        *vs_borgmatic.figures(nights),
        *idle.figures(resting),
        *offsite.measure(root / "offsite", args.files, args.reps),
        *usb_plug.benchmark(root / "usb", borg, files=args.files, reps=args.plugs),
        *scrape.benchmark(root / "scrape", files=args.files, reps=scrape.REPS),
        *restore.benchmark(root / "restore", borg, files=args.files),
        *change_signal.benchmark(root / "signal", borg, files=args.files, reps=args.reps),
        *drill.benchmark(root / "drill", borg),
        *restore_estimate.benchmark(root / "estimate", borg),
        *snapshot_night.benchmark(root / "snapshot", files=args.files, reps=args.reps),
    ]
    print()
    print_table(figures)
    print()
    for side in sides:
        walls = [n.wall for n in nights.times[side.name]]
        print(
            f"{side.name:<10} wall median {nights.median(side.name):.2f} s "
            f"(min {min(walls):.2f}, max {max(walls):.2f}), "
            f"CPU median {nights.median_cpu(side.name):.2f} s; "
            f"deleted {nights.deleted[side.name]}"
        )
    print(f"(benchmarks took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
