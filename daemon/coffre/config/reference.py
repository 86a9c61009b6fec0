"""The configuration reference, written from the table of keys (:mod:`coffre.core.config_keys`).

Three files show every key with its default, and are generated, never edited
by hand:

- ``packaging/coffre.toml``, the commented file the package installs as
  ``/etc/coffre/coffre.toml`` (valid as installed: the required keys hold the
  examples, every optional key is commented out with its default);
- the README's configuration reference, between ``<!-- config-reference:start -->``
  and ``<!-- config-reference:end -->``;
- the man page's CONFIGURATION section, between the roff comments
  ``.\\" config-reference:start`` and ``.\\" config-reference:end``.

``python -m coffre.config.reference --write`` (``make docs``) rewrites them;
``--check`` (the default) exits 1 naming those that drifted, as the unit test
``tests/unit/test_config_reference.py`` does.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from coffre.core.config_keys import SECTIONS, Computed, Key, Required, Section, Value

__all__ = ["REGENERATE", "Generated", "drifted", "generated", "main", "replace_block"]

#: The command that rewrites the generated files, for messages.
REGENERATE = "make docs (or: PYTHONPATH=daemon python3 -m coffre.config.reference --write)"

_SOURCE = "daemon/coffre/core/config_keys.py"
_WIDTH = 79
#: The column of a key line's trailing comment (when the assignment is shorter).
_FACTS_COLUMN = 31
_README_MARKERS = ("<!-- config-reference:start -->", "<!-- config-reference:end -->")
_MAN_MARKERS = ('.\\" config-reference:start', '.\\" config-reference:end')
#: The values shown for an offsite target's example instead of the local one's.
_OFFSITE_EXAMPLE: dict[str, Value] = {"name": "hds1", "kind": "offsite"}

_SHIPPED_HEADER = """\
# /etc/coffre/coffre.toml: the configuration of coffre, the backup daemon of
# this box. Valid as installed: it backs up the practice's share
# /srv/coffre/partage every night to a repository on the box itself.
#
# Every optional key is shown commented out ("#key = value") with its default
# value; the offsite target at the end, commented out ("# key = value"), is an
# example to adapt. After a change: `coffre config check` (exit 0: valid;
# otherwise every problem is listed with its key), then
# `systemctl restart coffre`. Unknown keys are errors.
"""


# --- TOML: the shipped file and the README -----------------------------------------


def _toml(value: Value) -> str:
    """``value`` as TOML writes it (json's strings are TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(json.dumps(item, ensure_ascii=False) for item in value) + "]"


def _shown(key: Key, examples: dict[str, Value]) -> Value:
    """The value a document shows for ``key``: its default, else its example."""
    if key.name in examples:
        return examples[key.name]
    if isinstance(key.default, Required | Computed):
        assert key.example is not None  # Key checks it on import
        return key.example
    return key.default


def _facts(key: Key, shown: Value) -> str:
    """What a key line says beside the value: required, a computed default, bounds, choices."""
    facts: list[str] = []
    if isinstance(key.default, Required):
        facts.append("required")
    elif isinstance(key.default, Computed):
        facts.append(f"default: {key.default.said}")
    if key.bound is not None:
        facts.append(f"{key.bound.minimum} to {key.bound.maximum}")
    others = [json.dumps(choice) for choice in key.choices if choice != shown]
    if others:
        facts.append("or " + ", ".join(others))
    return "; ".join(facts)


def _comment(text: str, indent: str = "") -> list[str]:
    """``text`` as ``#`` comment lines of at most :data:`_WIDTH` characters."""
    return textwrap.wrap(
        text,
        _WIDTH,
        initial_indent=indent + "# ",
        subsequent_indent=indent + "# ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _key_lines(key: Key, examples: dict[str, Value], *, commented: bool) -> list[str]:
    """A key's explanation, then its line; ``commented``: an optional key, commented out."""
    shown = _shown(key, examples)
    optional = not isinstance(key.default, Required)
    line = ("#" if commented and optional else "") + f"{key.name} = {_toml(shown)}"
    facts = _facts(key, shown)
    if facts:
        line = (
            f"{line.ljust(_FACTS_COLUMN - 1)} # {facts}" if len(line) < 30 else f"{line}  # {facts}"
        )
    return [*_comment(key.doc), line]


def _header(section: Section) -> str:
    brackets = f"[[{section.name}]]" if section.array else f"[{section.name}]"
    return f"{brackets.ljust(_FACTS_COLUMN - 1)} # {section.note}" if section.note else brackets


def _section_lines(
    section: Section, keys: Iterable[Key], examples: dict[str, Value], *, commented: bool
) -> list[str]:
    lines = [*_comment(section.doc), _header(section)]
    for key in keys:
        lines += _key_lines(key, examples, commented=commented)
    return lines


def _toml_body(*, shipped: bool) -> list[str]:
    """Every section with every key: the shipped file's body, or the README's block.

    ``shipped``: optional keys are commented out with ``#`` and the offsite
    target (an example) with ``# ``, so the file is valid and loads the
    defaults as it is. The README shows all of it as a valid file.
    """
    by_name = {section.name: section for section in SECTIONS}
    lines: list[str] = []
    for section in SECTIONS:
        if section.name.startswith("target"):
            continue  # after the others: a local target, then an offsite one
        lines += ["", *_section_lines(section, section.keys, {}, commented=shipped)]
    target, window = by_name["target"], by_name["target.upload_window"]
    local = [key for key in target.keys if key.kind in ("", "local")]
    lines += ["", *_section_lines(target, local, {}, commented=shipped)]
    offsite = [key for key in target.keys if key.kind == "offsite"]
    example = [
        *_comment('Another [[target]], of kind "offsite": an HDS host, with its keys.'),
        "[[target]]",
        *(f"{name} = {_toml(value)}" for name, value in _OFFSITE_EXAMPLE.items()),
        *(line for key in offsite for line in _key_lines(key, {}, commented=False)),
        *_section_lines(window, window.keys, {}, commented=False),
    ]
    lines.append("")
    lines += [("# " + line if shipped and not line.startswith("#") else line) for line in example]
    return lines[1:]


def shipped_file() -> str:
    """The whole text of ``packaging/coffre.toml``."""
    return _SHIPPED_HEADER + "\n" + "\n".join(_toml_body(shipped=True)) + "\n"


def readme_block() -> str:
    """The README's reference: what goes between its markers."""
    lines = [
        f"<!-- Generated from {_SOURCE} by `make docs`: edit the table, not this block. -->",
        "",
        "```toml",
        *_toml_body(shipped=False),
        "```",
    ]
    return "\n".join(lines) + "\n"


# --- roff: the man page -------------------------------------------------------------


def _roff(text: str) -> str:
    """``text`` as one roff text line: backslashes and minus signs escaped, `code` bold."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r"`([^`]+)`", r"\\fB\1\\fR", text)
    return "\\&" + text if text.startswith((".", "'")) else text


def _man_type(key: Key) -> str:
    """The first sentence of a key's entry: its type, and what bounds or requires it."""
    words = key.type.value
    words = words[0].upper() + words[1:]
    if key.bound is not None:
        words += f", {key.bound.minimum} to {key.bound.maximum}"
    if key.choices:
        *first, last = (json.dumps(choice) for choice in key.choices)
        words += ": " + ", ".join(first) + " or " + last
    if isinstance(key.default, Required):
        words += "; required (the value shown is an example)"
    elif isinstance(key.default, Computed):
        words += f"; default: {key.default.said} (the value shown is an example)"
    if key.kind:
        words += f"; {key.kind} targets only"
    return words + "."


def _man_section(section: Section) -> list[str]:
    title = f"[[{section.name}]]" if section.array else f"[{section.name}]"
    if section.note:
        title += f" ({section.note})"
    lines = [f'.SS "{_roff(title)}"', _roff(section.doc)]
    for key in section.keys:
        value = _toml(_shown(key, {}))
        lines += [".TP", f"\\fB{_roff(key.name)}\\fR = {_roff(value)}"]
        lines.append(_roff(f"{_man_type(key)} {key.doc}"))
    return lines


def man_block() -> str:
    """The man page's CONFIGURATION section: what goes between its markers."""
    lines = [
        f'.\\" Generated from {_SOURCE} by `make docs`: edit the table, not this block.',
        ".SH CONFIGURATION",
        _roff(
            "The configuration file is TOML. `coffre config check` names every problem with "
            "its key; unknown keys are errors. Each key, with its default:"
        ),
    ]
    lines.append(".nh")  # a value such as "keyfile" is never hyphenated
    for section in SECTIONS:
        lines += _man_section(section)
    lines.append(".hy")
    return "\n".join(lines) + "\n"


# --- the files ----------------------------------------------------------------------


def replace_block(text: str, markers: tuple[str, str], block: str) -> str:
    """``text`` with the lines between its ``markers`` lines replaced by ``block``.

    Raises ValueError when a marker is missing, twice there, or the end comes first.
    """
    lines = text.splitlines(keepends=True)
    found = [[i for i, line in enumerate(lines) if line.rstrip("\n") == m] for m in markers]
    if any(len(places) != 1 for places in found) or found[0][0] > found[1][0]:
        raise ValueError(f"expected the lines {markers[0]!r} then {markers[1]!r}, once each")
    start, end = found[0][0], found[1][0]
    return "".join([*lines[: start + 1], block, *lines[end:]])


@dataclass(frozen=True)
class Generated:
    """A generated file: its ``path`` in the checkout and the ``text`` it must hold."""

    path: str
    text: str


def generated(root: Path) -> list[Generated]:
    """The three files as the table gives them, in the checkout at ``root``.

    The README and the man page are read to replace their block. Raises
    OSError when one cannot be read, ValueError when its markers are not there.
    """
    readme = (root / "README.md").read_text(encoding="utf-8")
    man = (root / "packaging" / "coffre.1").read_text(encoding="utf-8")
    return [
        Generated("packaging/coffre.toml", shipped_file()),
        Generated("README.md", replace_block(readme, _README_MARKERS, readme_block())),
        Generated("packaging/coffre.1", replace_block(man, _MAN_MARKERS, man_block())),
    ]


def drifted(root: Path) -> list[str]:
    """The paths (from ``root``) of the generated files that differ from the table.

    Raises as :func:`generated` does; a generated file that is missing is drifted.
    """
    stale: list[str] = []
    for file in generated(root):
        path = root / file.path
        if not path.exists() or path.read_text(encoding="utf-8") != file.text:
            stale.append(file.path)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    """``--write``: rewrite the generated files; ``--check``: exit 1 when one drifted."""
    parser = argparse.ArgumentParser(prog="python -m coffre.config.reference")
    parser.add_argument("--write", action="store_true", help="rewrite the generated files")
    parser.add_argument("--check", action="store_true", help="exit 1 if one drifted (default)")
    parser.add_argument("--root", type=Path, default=Path(), help="the checkout (default: .)")
    args = parser.parse_args(argv)
    if args.write:
        for file in generated(args.root):
            (args.root / file.path).write_text(file.text, encoding="utf-8")
            print(f"wrote {file.path}")
        return 0
    stale = drifted(args.root)
    for path in stale:
        print(f"{path}: differs from {_SOURCE}; regenerate it with: {REGENERATE}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
