"""The guard on a real box: a ransomware attack and a clock gone wrong never prune good history.

A real daemon under libfaketime (days pass in seconds), a local repository and
an HDS host behind a real sshd (append-only through the box's key), the share
a practice's (letters, reports, scans, a nightly dump), real borg throughout.
"""

from __future__ import annotations

import random
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.exposition import parse, value
from tests.integration.guarded_box import HDS, LOCAL, GuardedBox
from tests.integration.practice_share import PracticeShare
from tests.integration.rule_tests import expected_alert
from tests.parts import binary, needs_root

PARIS = ZoneInfo("Europe/Paris")
RULES = Path(__file__).resolve().parents[2] / "packaging" / "prometheus" / "coffre-rules.yml"

#: The history before the attack, in days from today: two months' first backups
#: (M and M-1 come from them) and the last nights.
HISTORY = (-36, -35, -20, -6, -5, -4, -3, -2, -1)


def _local_days(archives: dict[str, datetime]) -> dict[str, str]:
    return {name: moment.astimezone(PARIS).date().isoformat() for name, moment in archives.items()}


def _expected_kept(archives: dict[str, datetime]) -> set[str]:
    """J, J-1, J-2 (latest of the 3 newest days) and M, M-1 (first of the 2 newest months)."""
    by_day: dict[str, list[tuple[datetime, str]]] = {}
    for name, moment in archives.items():
        by_day.setdefault(moment.astimezone(PARIS).date().isoformat(), []).append((moment, name))
    days = sorted(by_day, reverse=True)[:3]
    kept = {max(by_day[d])[1] for d in days}
    by_month: dict[str, list[tuple[datetime, str]]] = {}
    for name, moment in archives.items():
        by_month.setdefault(moment.astimezone(PARIS).strftime("%Y-%m"), []).append((moment, name))
    months = sorted(by_month, reverse=True)[:2]
    return kept | {min(by_month[m])[1] for m in months}


def _alert_fires_on(tmp_path: Path, scraped: str, alert: str, kind: str) -> None:
    """promtool evaluates the shipped rules over the box's real ``coffre_guard_incident``
    samples (as its agent would write them, labelled with the box): ``alert`` fires."""
    box = {"box": "cabinet-test", "job": "coffre", "instance": "127.0.0.1:9851"}
    inputs = ""
    for (name, labels), number in parse(scraped).items():
        if name == "coffre_guard_incident":
            pairs = ",".join(f'{k}="{v}"' for k, v in sorted({**dict(labels), **box}.items()))
            inputs += f"      - series: '{name}{{{pairs}}}'\n"
            inputs += f'        values: "{number:.0f}x12"\n'
    expected = expected_alert(RULES, alert, {**box, "kind": kind, "severity": "critical"})
    case = tmp_path / f"{alert}.test.yml"
    case.write_text(
        f'rule_files: ["{RULES}"]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n'
        f"    input_series:\n{inputs}    alert_rule_test:\n      - eval_time: 5m\n"
        f"        alertname: {alert}\n        exp_alerts: {expected}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [binary("promtool"), "test", "rules", str(case)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr + case.read_text()


def _history(box: GuardedBox, rng: random.Random) -> PracticeShare:
    """The practice's share built, then the nights of HISTORY, each after a day's work."""
    share = PracticeShare(box.share, rng)
    share.build()
    for day in HISTORY:
        share.normal_day(day)
        box.night(day)
    return share


@pytest.mark.borg
def test_ransomware_freezes_pruning_everywhere_for_ten_days_and_clear_resumes_it(
    tmp_path: Path,
) -> None:
    needs_root("the daemon runs as on the box (root), its HDS host's sshd too")
    rng = random.Random(12)
    with GuardedBox(tmp_path) as box:
        share = _history(box, rng)
        assert box.incident() == [], box.logs()
        before = {t: box.archives(t) for t in (LOCAL, HDS)}
        for target in (LOCAL, HDS):
            assert set(before[target]) == _expected_kept(before[target]), target

        originals = {p: (box.share / p).read_bytes() for p in share.files()}
        # The attack, as a workstation's ransomware does it in the evening: half the share.
        attacked = share.ransomware(0.5)
        box.night(0)
        incidents = box.incident()
        assert [i["kind"] for i in incidents] == ["ransomware"], box.logs()
        exposition = box.practice.scrape()
        assert value(parse(exposition), "coffre_guard_incident", kind="ransomware") == 1
        _alert_fires_on(tmp_path, exposition, "CoffreSuspectedRansomware", "ransomware")
        assert box.practice.lights()["red"] == "on"
        shown = box.practice.coffre("status").stdout
        assert "FAILURE: pruning frozen: suspected ransomware" in shown, shown
        assert "pruning frozen on every target; backups go on" in shown, shown
        evidence = box.practice.coffre("incident", "show", check=True).stdout
        assert "evidence (on this box only):" in evidence
        assert ".locked" in evidence  # names stay on the box: here, not in status or metrics
        assert ".locked" not in shown and ".locked" not in exposition

        seen = {t: set(box.archives(t)) for t in (LOCAL, HDS)}
        for target in (LOCAL, HDS):  # the attack's night: its archive made, nothing deleted
            assert set(before[target]) < seen[target], target
            assert len(seen[target]) == len(before[target]) + 1, target
        for day in range(1, 10):
            share.normal_day(day)  # the practice goes on working, on what is left
            box.night(day)
            for target in (LOCAL, HDS):
                now = box.archives(target)
                assert seen[target] <= set(now), f"day {day}: {target} lost archives"
                assert len(now) == len(seen[target]) + 1, f"day {day}: {target}: no new archive"
                seen[target] = set(now)
        assert "pruning frozen" in box.logs()

        # Frozen, restores still work: a letter back as it was the night before the attack.
        letter = next(p for p in attacked if p.parts[0] == "Patients")
        eve = (box.now() - timedelta(days=10)).astimezone(PARIS).date().isoformat()
        into = tmp_path / "restored"
        box.practice.coffre("restore", str(letter), "--date", eve, "--to", str(into), check=True)
        (back,) = [p for p in into.rglob(letter.name) if p.is_file()]
        assert back.read_bytes() == originals[letter]

        cleared = box.practice.coffre(
            "incident", "clear", "--why", "share restored from J-3 and checked", check=True
        )
        assert "ransomware incident cleared" in cleared.stdout
        assert box.incident() == []
        for day in (10, 11):
            box.night(day)
        newest_days = {(box.now() - timedelta(days=k)).astimezone(PARIS).date() for k in range(3)}
        for target in (LOCAL, HDS):
            after = box.archives(target)
            assert set(after) == _expected_kept(after), target
            days = {datetime.fromisoformat(d).date() for d in _local_days(after).values()}
            assert newest_days <= days, (target, sorted(days))
            assert seen[target] - set(after), f"{target}: pruning did not resume"
        assert len(attacked) > 1000


@pytest.mark.borg
def test_a_clock_a_year_ahead_then_back_deletes_nothing_of_the_past(tmp_path: Path) -> None:
    needs_root("the daemon runs as on the box (root), its HDS host's sshd too")
    rng = random.Random(13)
    with GuardedBox(tmp_path) as box:
        share = _history(box, rng)
        past = {t: set(box.archives(t)) for t in (LOCAL, HDS)}

        for day in (365, 366):  # a box without RTC, its time source wrong for two nights
            share.normal_day(day)
            box.night(day)
            assert [i["kind"] for i in box.incident()] == ["clock"], box.logs()
            for target in (LOCAL, HDS):
                assert past[target] <= set(box.archives(target)), f"+{day} d: {target}"
        exposition = box.practice.scrape()
        assert value(parse(exposition), "coffre_guard_incident", kind="clock") == 1
        _alert_fires_on(tmp_path, exposition, "CoffreClockSuspect", "clock")

        box.night(0)  # the clock set right: the two archives are a year ahead now
        incident = box.incident()
        assert [i["kind"] for i in incident] == ["clock"], box.logs()
        ahead = {
            (t, n) for t in (LOCAL, HDS) for n, at in box.archives(t).items() if at > box.now()
        }
        assert len(ahead) == 4  # two nights ahead, on each target
        assert incident[0]["sightings"][-1]["figures"]["future_archives"] == len(ahead)
        for target in (LOCAL, HDS):
            assert past[target] <= set(box.archives(target)), f"back: {target}"

        cleared = box.practice.coffre(
            "incident", "clear", "--why", "NTP fixed, clock checked", check=True
        )
        names = {n for _, n in ahead}
        assert f"{len(names)} archive(s) dated in the future acknowledged" in cleared.stdout
        box.night(1)
        assert box.incident() == []
        assert value(parse(box.practice.scrape()), "coffre_guard_incident", kind="clock") == 0
        now = box.now()
        for target in (LOCAL, HDS):
            after = box.archives(target)
            future = {n for n, t in after.items() if t > now}
            assert len(future) == 2, f"{target}: the year-ahead archives are kept aside"
            present = {n: t for n, t in after.items() if n not in future}
            everything_past = {n: t for n, t in present.items()}
            assert set(present) == _expected_kept(everything_past), target
