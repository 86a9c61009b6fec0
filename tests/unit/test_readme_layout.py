"""The README's Layout section is the map a newcomer reads first: it must match the tree.

Each package of ``daemon/coffre`` has its line (indented under its parent), and the
line names every module the package holds, by file name; every other top-level path
the section names exists. A module added, moved or removed without its line fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "daemon" / "coffre"

# A line that opens an entry: indentation, then one or more paths ending in "/" or ".py"
# (`systemd/, udev/` share a line), then the description.
_ENTRY = re.compile(r"^(?P<indent> *)(?P<paths>(?:[\w./-]+(?:/|\.py),? ?)+?)\s{2,}(?P<text>.*)$")


@dataclass
class Entry:
    """One entry of the section: its paths (relative to the repository) and its words."""

    paths: list[str]
    words: set[str] = field(default_factory=set)


def layout_block(readme: str) -> list[str]:
    """The lines of the fenced block under ``## Layout``; fails the test if there is none."""
    section = readme.split("\n## Layout\n", 1)
    assert len(section) == 2, "README.md has no '## Layout' section"
    fenced = re.search(r"```\n(.*?)\n```", section[1], re.S)
    assert fenced, "the Layout section has no fenced block"
    return fenced.group(1).splitlines()


def entries(lines: list[str]) -> list[Entry]:
    """Entries of the block, a nested path joined to the entry it is indented under."""
    found: list[Entry] = []
    parents: list[tuple[int, str]] = []
    for line in lines:
        match = _ENTRY.match(line)
        if match is None or not match.group("paths").strip():
            if found:  # a continuation line of the entry above
                found[-1].words |= set(re.findall(r"\w+", line))
            continue
        indent = len(match.group("indent"))
        while parents and parents[-1][0] >= indent:
            parents.pop()
        base = parents[-1][1] if parents else ""
        paths = [base + p.strip() for p in match.group("paths").replace(",", " ").split()]
        found.append(Entry(paths, set(re.findall(r"\w+", match.group("text")))))
        if len(paths) == 1 and paths[0].endswith("/"):
            parents.append((indent, paths[0]))
    return found


def _packages() -> set[str]:
    return {
        str(init.parent.relative_to(ROOT)) + "/"
        for init in PACKAGE.rglob("__init__.py")
        if init.parent != PACKAGE
    }


def test_every_package_has_its_line_and_each_line_is_a_package() -> None:
    listed = {
        path
        for entry in entries(layout_block((ROOT / "README.md").read_text()))
        for path in entry.paths
        if path.startswith("daemon/coffre/") and path != "daemon/coffre/" and path.endswith("/")
    }
    assert listed == _packages(), (
        f"README Layout lists packages that do not exist: {sorted(listed - _packages())}; "
        f"misses: {sorted(_packages() - listed)}"
    )


def test_each_package_line_names_every_module_it_holds() -> None:
    by_path = {
        entry.paths[0]: entry.words
        for entry in entries(layout_block((ROOT / "README.md").read_text()))
        if len(entry.paths) == 1
    }
    missing = {
        package: sorted(
            module.stem
            for module in (ROOT / package).glob("*.py")
            if not module.stem.startswith("__") and module.stem not in by_path[package]
        )
        for package in _packages()
    }
    assert not {p: m for p, m in missing.items() if m}, (
        f"README Layout: modules not named on their package's line: "
        f"{ {p: m for p, m in missing.items() if m} }"
    )


def test_every_path_the_section_names_exists() -> None:
    named = [
        path
        for entry in entries(layout_block((ROOT / "README.md").read_text()))
        for path in entry.paths
    ]
    assert named, "the Layout block names no path"
    assert [p for p in named if not (ROOT / p).exists()] == []


def test_a_package_line_missing_a_module_is_caught() -> None:
    """The parser itself: a line that forgets a module does not name it."""
    block = [
        "daemon/coffre/     the package",
        "  core/            pure: model, errors",
        "                   retention (continued)",
        "  borg/            the door",
    ]
    parsed = {e.paths[0]: e.words for e in entries(block)}
    assert "retention" in parsed["daemon/coffre/core/"]
    assert "schedule" not in parsed["daemon/coffre/core/"]
    assert "door" in parsed["daemon/coffre/borg/"]
