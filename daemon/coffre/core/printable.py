"""Text from the share made safe for a terminal or a log line: pure, THE one escape.

Every file name that came from the share or from an archive (``coffre find``,
``restore``, ``recover``, ``audit``, error messages, the daemon's journal lines)
goes through :func:`controls_escaped` before it is printed or logged; ``--json``
output keeps the exact name instead (``json.dumps`` escapes controls itself).
"""

from __future__ import annotations


def controls_escaped(text: str) -> str:
    """``text`` with every non-printable character as ``\\xNN`` (or ``\\uNNNN``). Raises nothing.

    A name from the share (Windows forbids control characters in names, but a
    workstation is no guarantee) cannot then move a terminal's cursor, set its
    title or change its colours (ESC, BEL, CR, backspace, the C1 controls such
    as CSI ``\\x9b``), nor reverse what support reads (the bidi overrides and
    isolates U+202A-U+202E, U+2066-U+2069 are format characters, category Cf,
    which ``str.isprintable`` refuses). Lone surrogates (bytes that were not
    UTF-8) are escaped too; accented letters and every other printable
    character, the space included, stay as they are.

    Idempotent: the result holds printable characters only, so escaping a
    message again (where it is printed, after where it was made) changes
    nothing. A backslash stays one: a name holding the four characters
    ``\\x1b`` reads like one holding ESC, which only a ``--json`` output tells
    apart (the guard's evidence doubles backslashes first, for that).
    """
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
