"""LEDs: health -> pattern -> files of a temporary directory shaped like /sys/class/leds."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coffre.core.config_types import LedsConfig
from coffre.core.health import Facts, Health, JobFacts, TargetFacts
from coffre.observe.leds import PATTERNS, Lights, Pattern, SysfsLeds
from coffre.storage.state import FAILED, RunRecord

NAMES = ("coffre:green", "coffre:amber", "coffre:red")
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
LOG = logging.getLogger("test.leds")


def sysfs(root: Path, *, max_brightness: str | None = "255") -> LedsConfig:
    """LED directories as the kernel shows them (brightness, trigger, max_brightness)."""
    for name in NAMES:
        led = root / name
        led.mkdir(parents=True)
        (led / "brightness").write_text("0\n")
        (led / "trigger").write_text("[none] timer heartbeat\n")
        if max_brightness is not None:
            (led / "max_brightness").write_text(max_brightness + "\n")
    return LedsConfig(sysfs_root=root)


def read(root: Path, name: str) -> dict[str, str]:
    return {f.name: f.read_text() for f in (root / name).iterdir() if f.name != "max_brightness"}


def test_every_health_has_its_own_pattern() -> None:
    assert set(PATTERNS) == set(Health)
    assert len(set(PATTERNS.values())) == len(Health)


def test_steady_blinking_and_off_lights_are_written_as_sysfs_wants(tmp_path: Path) -> None:
    config = sysfs(tmp_path)
    leds = SysfsLeds(config, LOG)
    assert leds.write(PATTERNS[Health.OK])
    assert read(tmp_path, "coffre:green") == {"trigger": "none", "brightness": "255"}
    assert read(tmp_path, "coffre:red") == {"trigger": "none", "brightness": "0"}
    assert leds.write(PATTERNS[Health.WORKING])
    assert read(tmp_path, "coffre:green") == {
        "trigger": "timer",
        "brightness": "255",
        "delay_on": "150",
        "delay_off": "150",
    }
    assert leds.write(PATTERNS[Health.SAFE_TO_REMOVE])
    green = read(tmp_path, "coffre:green")
    assert (green["trigger"], green["delay_on"], green["delay_off"]) == ("timer", "1000", "1000")
    assert leds.write(PATTERNS[Health.FAILURE])
    assert read(tmp_path, "coffre:green")["brightness"] == "0"
    assert read(tmp_path, "coffre:green")["trigger"] == "none"
    assert read(tmp_path, "coffre:red") == {"trigger": "none", "brightness": "255"}
    assert read(tmp_path, "coffre:amber") == {"trigger": "none", "brightness": "0"}


def test_without_max_brightness_on_is_1(tmp_path: Path) -> None:
    leds = SysfsLeds(sysfs(tmp_path, max_brightness=None), LOG)
    assert leds.write(PATTERNS[Health.ATTENTION])
    assert read(tmp_path, "coffre:amber")["brightness"] == "1"


def test_a_missing_led_is_logged_once_and_nothing_is_created(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = LedsConfig(sysfs_root=tmp_path, green="absent:green")
    for name in ("coffre:amber", "coffre:red"):
        (tmp_path / name).mkdir()
    leds = SysfsLeds(config, LOG)
    with caplog.at_level(logging.WARNING):
        assert not leds.write(PATTERNS[Health.OK])
        assert not leds.write(PATTERNS[Health.FAILURE])
    assert not (tmp_path / "absent:green").exists()
    warnings = [r for r in caplog.records if "absent:green" in r.getMessage()]
    assert len(warnings) == 1
    # The other LEDs were still set (no max_brightness there: on is 1).
    assert (tmp_path / "coffre:red" / "brightness").read_text() == "1"


class CountingWriter:
    def __init__(self, ok: bool = True) -> None:
        self.written: list[Pattern] = []
        self.ok = ok

    def write(self, pattern: Pattern) -> bool:
        self.written.append(pattern)
        return self.ok


def facts(*, running: bool = False, failed: bool = False) -> Facts:
    targets: tuple[TargetFacts, ...] = ()
    if failed:
        cut = RunRecord(1, "local", "backup", NOW, NOW, FAILED, "borg", "boom", None)
        targets = (TargetFacts(name="local", kind="local", last_attempt=cut),)
    job = JobFacts("backup", ("local",)) if running else None
    return Facts(now=NOW, tz=ZoneInfo("Europe/Paris"), targets=targets, main_job=job)


def test_lights_write_only_when_the_pattern_changes(caplog: pytest.LogCaptureFixture) -> None:
    writer = CountingWriter()
    lights = Lights(writer, LOG)
    with caplog.at_level(logging.INFO):
        for step in (
            facts(),
            facts(),
            facts(running=True),
            facts(running=True),
            facts(failed=True),
        ):
            lights.show(step)
    assert writer.written == [
        PATTERNS[Health.OK],
        PATTERNS[Health.WORKING],
        PATTERNS[Health.FAILURE],
    ]
    changes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("lights:")]
    assert changes == [
        "lights: ok",
        "lights: working (backup of local running)",
        "lights: failure (last backup of local failed (borg))",
    ]


def test_a_pattern_not_fully_written_is_tried_again_at_the_next_refresh() -> None:
    writer = CountingWriter(ok=False)
    lights = Lights(writer, LOG)
    lights.show(facts())
    writer.ok = True
    lights.show(facts())
    lights.show(facts())
    assert writer.written == [PATTERNS[Health.OK]] * 2
