"""The ``[[target]]`` tables: one reader per kind, and the conflicts between targets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from coffre.config.converters import given, is_within, normal
from coffre.config.table import MISSING, Table, one_of, show
from coffre.core.config_keys import KEYS, default_str
from coffre.core.config_types import (
    LocalTarget,
    OffsiteTarget,
    SourceConfig,
    TargetConfig,
    UploadWindow,
)
from coffre.core.errors import ConfigProblem
from coffre.core.upload_window import parse_days


def _kind_keys(kind: str) -> list[str]:
    """The names of the keys only targets of ``kind`` have."""
    return [
        path.rpartition(".")[2]
        for path, key in KEYS.items()
        if path.startswith("target.") and path.count(".") == 1 and key.kind == kind
    ]


def _local_target(t: Table, name: str | None) -> LocalTarget | None:
    path = given(t, "target", _kind_keys("local")).get("path")
    return LocalTarget(name=name, path=path) if name is not None and path is not None else None


def _upload_windows(t: Table) -> tuple[UploadWindow, ...]:
    """``[[target.upload_window]]`` tables: days, from, to, limit_kbps."""
    value = t.get("upload_window", required=False)
    if value is MISSING:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        t.problem("upload_window", f"expected [[target.upload_window]] tables, got {show(value)}")
        return ()
    all_days = parse_days(default_str("target.upload_window.days"))
    windows: list[UploadWindow] = []
    for index, item in enumerate(value):
        w = Table(item, f"{t.key_path('upload_window')}[{index}]", t.problems)
        keys = given(w, "target.upload_window")
        w.finish()
        start, end, limit = keys.get("from"), keys.get("to"), keys.get("limit_kbps")
        if start == 24 * 60:
            w.problem("from", 'expected a time "HH:MM" from 00:00 to 23:59')
        elif start is not None and start == end:
            w.problem("to", 'equals "from": the window is empty (00:00 to 24:00 is a whole day)')
        elif start is not None and end is not None and limit is not None:
            windows.append(UploadWindow(keys.get("days", all_days), start, end, limit))
    return tuple(windows)


def _offsite_target(t: Table, name: str | None) -> OffsiteTarget | None:
    keys = given(t, "target", _kind_keys("offsite"))
    windows = _upload_windows(t)
    url = keys.pop("url", None)
    if name is None or url is None:
        return None
    return OffsiteTarget(
        name=name,
        user=url.user,
        host=url.host,
        port=url.port,
        path=url.path,
        upload_windows=windows,
        **keys,  # host_keys, retry_for...: those given; the others keep their defaults
    )


#: Every kind of target and the function reading its table (after name and kind):
#: a new kind is one entry here, and one choice of the key ``target.kind``.
TARGET_KINDS: dict[str, Callable[[Table, str | None], TargetConfig | None]] = {
    "local": _local_target,
    "offsite": _offsite_target,
}


def read_targets(root: Table, source: SourceConfig | None) -> list[TargetConfig | None]:
    """The ``[[target]]`` tables of ``root`` (None for one that could not be read).

    Problems go to ``root``'s list, with the conflicts between targets and
    with the ``source`` paths (a repository inside a source).
    """
    value = root.get("target", required=True)
    if value is MISSING:
        return []
    if not isinstance(value, list) or not value:
        root.problem("target", f"expected one or more [[target]] tables, got {show(value)}")
        return []
    targets: list[TargetConfig | None] = []
    for index, item in enumerate(value):
        path = f"{root.key_path('target')}[{index}]"
        if isinstance(item, dict):
            targets.append(_target(Table(item, path, root.problems)))
        else:
            root.problems.append(ConfigProblem(path, f"expected a table, got {show(item)}"))
            targets.append(None)
    root.problems.extend(_target_conflicts(targets, source))
    return targets


def _target(t: Table) -> TargetConfig | None:
    named = given(t, "target", ("name", "kind"))
    name, kind = named.get("name"), named.get("kind")
    if kind is None:
        return None
    read_kind = TARGET_KINDS.get(kind)
    if read_kind is None:
        t.problem("kind", f"unknown kind {show(kind)}; expected one of {one_of(TARGET_KINDS)}")
        return None  # the other keys depend on the kind: nothing more to say about them
    target = read_kind(t, name)
    t.finish()
    return target


def _target_conflicts(
    targets: Sequence[TargetConfig | None], source: SourceConfig | None
) -> list[ConfigProblem]:
    """Names used twice, two targets on one repository, a repository inside a source."""
    problems: list[ConfigProblem] = []
    names: set[str] = set()
    locations: dict[Path, int] = {}
    for index, target in enumerate(targets):
        if target is None:
            continue
        if target.name in names:
            problems.append(
                ConfigProblem(f"target[{index}].name", f"duplicate target name {show(target.name)}")
            )
        names.add(target.name)
        if not isinstance(target, LocalTarget):
            continue
        key = f"target[{index}].path"
        path = normal(target.path)
        if path in locations:
            # Two names for one repository would split its history in the state.
            problems.append(
                ConfigProblem(
                    key,
                    f"{target.path} is already the repository of target[{locations[path]}]; "
                    "each target needs its own repository",
                )
            )
        locations.setdefault(path, index)
        for source_index, source_path in enumerate(source.paths if source is not None else ()):
            if is_within(path, normal(source_path)):
                problems.append(ConfigProblem(key, inside_source(target.path, source_index)))
    return problems


def inside_source(target_path: Path, source_index: int, via: str = "") -> str:
    return (
        f"{target_path} is inside source.paths[{source_index}]{via}: "
        "the repository would back itself up every night"
    )
