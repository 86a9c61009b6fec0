"""Text from the share made safe for a terminal: pure, used by the guard and the CLI."""

from __future__ import annotations


def controls_escaped(text: str) -> str:
    """``text`` with every non-printable character as ``\\xNN`` (or ``\\uNNNN``). Raises nothing.

    A name from the share (Windows forbids control characters in names, but a
    workstation is no guarantee) cannot then move a terminal's cursor or change
    its colours. Lone surrogates (bytes that were not UTF-8) are escaped too.
    """
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
