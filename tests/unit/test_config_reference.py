"""One table of keys (core/config_keys), three files generated from it, and no drift."""

from __future__ import annotations

import dataclasses
import difflib
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coffre.config import loader as config
from coffre.config import reference
from coffre.config.converters import CONVERTERS
from coffre.config.targets import TARGET_KINDS
from coffre.core.config_keys import (
    KEYS,
    SECTIONS,
    Computed,
    Required,
    default_str,
    default_time,
)
from coffre.core.config_types import (
    BorgConfig,
    Config,
    EncryptionConfig,
    LedsConfig,
    LocalTarget,
    MetricsConfig,
    OffsiteTarget,
    PathsConfig,
    RestoreConfig,
    RetentionConfig,
    ScheduleConfig,
    SourceConfig,
    UploadWindow,
    UsbConfig,
)

REPO = Path(__file__).parents[2]
SHIPPED = REPO / "packaging" / "coffre.toml"
GENERATED = ("packaging/coffre.toml", "README.md", "packaging/coffre.1")
HOST = "nas"


def example(path: str) -> Any:
    value = KEYS[path].example
    assert value is not None, path
    return value


def shipped_defaults(source_file: Path | None = None) -> Config:
    """The configuration the shipped file gives: its examples, and every default."""
    return Config(
        source=SourceConfig(paths=tuple(Path(p) for p in example("source.paths"))),
        schedule=ScheduleConfig(
            default_time("schedule.daily"), ZoneInfo(default_str("schedule.timezone"))
        ),
        retention=RetentionConfig(prefix=HOST),
        encryption=EncryptionConfig(Path(example("encryption.passphrase_file"))),
        targets=(LocalTarget(name=example("target.name"), path=Path(example("target.path"))),),
        source_file=source_file,
    )


def uncommented(text: str, *, examples: bool = False) -> str:
    """``text`` with every ``#key = default`` line written (and the ``# `` example, if asked)."""
    commented = r"^# ?(?=\[\[target|[a-z_]+ = )" if examples else r"^#(?=[a-z_]+ = )"
    return re.sub(commented, "", text, flags=re.MULTILINE)


# --- drift ----------------------------------------------------------------------------


def test_the_generated_files_are_what_the_table_gives() -> None:
    stale = reference.drifted(REPO)
    if stale:
        diffs = []
        for file in reference.generated(REPO):
            if file.path in stale:
                now = (REPO / file.path).read_text(encoding="utf-8").splitlines()
                diff = difflib.unified_diff(
                    now, file.text.splitlines(), file.path, "generated", lineterm=""
                )
                diffs.append("\n".join(list(diff)[:12]))
        pytest.fail(
            f"{', '.join(stale)}: not what daemon/coffre/core/config_keys.py gives (edited by "
            f"hand, or the table changed); regenerate with: {reference.REGENERATE}\n\n"
            + "\n\n".join(diffs),
            pytrace=False,
        )


def copy_checkout(root: Path) -> Path:
    for relative in GENERATED:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / relative, root / relative)
    return root


def test_check_names_a_drifted_file_and_the_command_then_write_mends_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_checkout(tmp_path)
    shipped = root / "packaging" / "coffre.toml"
    shipped.write_text(shipped.read_text().replace("#lock_wait = 60", "#lock_wait = 30"))
    assert reference.main(["--check", "--root", str(root)]) == 1
    assert capsys.readouterr().err == (
        "packaging/coffre.toml: differs from daemon/coffre/core/config_keys.py; "
        f"regenerate it with: {reference.REGENERATE}\n"
    )
    assert reference.main(["--write", "--root", str(root)]) == 0
    assert reference.main(["--root", str(root)]) == 0
    assert shipped.read_text() == SHIPPED.read_text()


def test_a_hand_edit_inside_the_readme_block_is_drift_but_outside_it_is_not(
    tmp_path: Path,
) -> None:
    root = copy_checkout(tmp_path)
    readme = root / "README.md"
    text = readme.read_text()
    readme.write_text(text.replace("# coffre\n", "# coffre, the backup daemon\n", 1))
    assert reference.drifted(root) == []
    readme.write_text(text.replace("lock_wait = 60 ", "lock_wait = 90 "))
    assert reference.drifted(root) == ["README.md"]


def test_missing_markers_are_said() -> None:
    with pytest.raises(ValueError, match="config-reference:start"):
        reference.replace_block("no markers\n", ("<!-- config-reference:start -->", "x"), "")


# --- the shipped file, loaded -----------------------------------------------------------


def test_the_shipped_file_loads_with_the_real_loader_giving_exactly_the_defaults(
    tmp_path: Path,
) -> None:
    shipped = tmp_path / "coffre.toml"
    shutil.copy(SHIPPED, shipped)
    assert config.load(shipped, hostname=HOST, check_files=False) == shipped_defaults(shipped)


def test_uncommenting_every_default_of_the_shipped_file_changes_nothing() -> None:
    """The values shown are the true defaults, through the real converters: the table's
    defaults as TOML and the dataclasses' defaults agree."""
    text = SHIPPED.read_text(encoding="utf-8")
    written = uncommented(text)
    assert written != text
    prefix = example("retention.prefix")  # a computed default: the example is the hostname
    expected = dataclasses.replace(shipped_defaults(), retention=RetentionConfig(prefix=prefix))
    assert config.parse(tomllib.loads(written), hostname=prefix) == expected
    # Every key of every section but the targets' is then written.
    raw = tomllib.loads(written)
    for section in SECTIONS:
        if not section.name.startswith("target"):
            assert sorted(raw[section.name]) == sorted(k.name for k in section.keys)


def test_the_offsite_example_shows_the_offsite_defaults() -> None:
    written = uncommented(SHIPPED.read_text(encoding="utf-8"), examples=True)
    offsite = config.parse(tomllib.loads(written), hostname=HOST).targets[1]
    assert offsite == OffsiteTarget(
        name="hds1",
        user="cabinet",
        host="hds1.example.fr",
        port=22,
        path="/srv/borg/cabinet",
        upload_windows=(UploadWindow(frozenset(range(7)), 8 * 60, 19 * 60, 2000),),
        ssh_key=Path(example("target.ssh_key")),
    )


def test_the_readme_block_is_the_whole_file_written_out() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- config-reference:start -->", 1)[1]
    block = block.split("```toml\n", 1)[1].split("```", 1)[0]
    written = uncommented(SHIPPED.read_text(encoding="utf-8"), examples=True)
    assert tomllib.loads(block) == tomllib.loads(written)


# --- the table ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "dataclass"),
    [
        ("paths", PathsConfig),
        ("borg", BorgConfig),
        ("usb", UsbConfig),
        ("metrics", MetricsConfig),
        ("leds", LedsConfig),
        ("restore", RestoreConfig),
    ],
)
def test_every_field_of_a_plain_section_is_a_key_with_its_default(
    section: str, dataclass: type[Any]
) -> None:
    """A field added without its key in the table (or the other way round) fails here."""
    keys = [path.rpartition(".")[2] for path in KEYS if path.rpartition(".")[0] == section]
    assert [field.name for field in dataclasses.fields(dataclass)] == keys
    defaults = dataclass()
    for name in keys:
        path = f"{section}.{name}"
        assert CONVERTERS[path](KEYS[path].default) == getattr(defaults, name), path


def test_the_target_kinds_are_the_choices_of_kind() -> None:
    assert tuple(TARGET_KINDS) == KEYS["target.kind"].choices


def test_every_default_and_example_passes_its_own_converter() -> None:
    for path, key in KEYS.items():
        for value in (key.default, key.example):
            if value is not None and not isinstance(value, Required | Computed):
                CONVERTERS[path](list(value) if isinstance(value, tuple) else value)
