"""Pure: the text of ``borg key export --paper``, read back and checked line by line.

After a fire, the repository key may survive only on paper. A person types it
back in (or hands over the printout of ``coffre key export --paper``, which
holds several keys with headers and instructions around them); this module
finds every key block in that text, checks each line's checksum as borg's own
reader does (``KeyManager.import_paperkey`` in borg 1.4.5,
``borg/crypto/keymanager.py``), and names the line that holds a typo, so that
the person fixes that line instead of retyping the whole key.

A block, as borg prints it::

    BORG PAPER KEY v1
    id: 31 / 6715d8 a14b89 5600a9 / f92143 20ac13 - 0b
     1: 86a961 6c676f 726974 686da6 736861 323536 - 14
     ...
    31: 73696f 6e01 - d6

The id line holds the number of body lines, the first 18 hex digits of the
repository id, a 12-hex checksum of the whole key, and its own 2-hex checksum
(of ``"31/6715d8a14b895600a9/f9214320ac13"``); each body line holds up to 18
bytes of the key in hex and a 2-hex checksum of its number (2 bytes, big
endian) followed by those bytes. Every checksum is the start of a SHA-256
hex digest (borg's ``sha256_truncated``).

Lenient where borg is (spaces anywhere), and also where a person typing from
paper needs it: upper-case hex, tabs, the ``BORG PAPER KEY v1`` header or
the ``N:`` line numbers left out. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from coffre.core.errors import CoffreError

__all__ = [
    "HEADER",
    "PaperKey",
    "PaperKeyInvalid",
    "PaperKeyMismatch",
    "for_repository",
    "parse",
    "sha256_truncated",
]

#: The line borg prints before each paper key.
HEADER = "BORG PAPER KEY v1"

#: Bytes of the key on each body line (borg's export cuts the key in 18-byte lines).
BYTES_PER_LINE = 18

#: Hex digits of the repository id printed on the id line.
PREFIX_DIGITS = 18

# "id:" then something with the two '/' and the '-' of an id line: an "ID: 42" in
# the instructions around the keys is not taken for one.
_ID_LINE = re.compile(r"\s*id\s*:(?P<rest>.*/.*/.*-.*)", re.IGNORECASE)
_BODY_LINE = re.compile(r"\s*(?:(?P<number>\d+)\s*:)?(?P<rest>.*)")
_HEX = re.compile(r"[0-9a-f]*")
_CHECKSUM = re.compile(r"[0-9a-f]{2}")
# What a person most often types for a hex digit, and what it stands for.
_LOOKALIKES = {"o": "0", "l": "1", "i": "1", "s": "5", "g": "9", "z": "2"}


class PaperKeyInvalid(CoffreError):
    """The paper key text holds no key, or a line that does not check out (a typo)."""

    kind = "paper_key_invalid"
    exit_code = 2


class PaperKeyMismatch(CoffreError):
    """The paper key (every key of the text) belongs to another repository."""

    kind = "paper_key_mismatch"
    exit_code = 2


def sha256_truncated(data: bytes, digits: int) -> str:
    """The first ``digits`` hex digits of SHA-256(``data``): borg's ``sha256_truncated``."""
    return hashlib.sha256(data).hexdigest()[:digits]


def _grouped(hex_text: str) -> str:
    """Hex digits in groups of 6, as borg prints them (``"6715d8 a14b89 5600a9"``)."""
    return " ".join(hex_text[i : i + 6] for i in range(0, len(hex_text), 6))


@dataclass(frozen=True)
class PaperKey:
    """One key block, checked.

    ``repository_prefix``: the first 18 hex digits of the repository id (lower
    case); ``lines``: how many body lines the block has; ``key``: the key
    itself, the bytes borg keeps base64-encoded in the repository's
    ``config`` (still encrypted with the passphrase); ``source_line``: where
    the block's id line is in the text (1-based), for messages.
    """

    repository_prefix: str
    lines: int
    key: bytes
    source_line: int = 0

    @property
    def checksum(self) -> str:
        """The 12-hex checksum of the whole key, as on the id line."""
        return sha256_truncated(self.key, 12)

    def id_line(self) -> str:
        """The id line as a person types it after borg's ``id:`` prompt."""
        data = f"{self.lines}/{self.repository_prefix}/{self.checksum}"
        check = sha256_truncated(data.encode("ascii"), 2)
        return (
            f"{self.lines} / {_grouped(self.repository_prefix)} / "
            f"{_grouped(self.checksum)} - {check}"
        )

    def body_lines(self) -> tuple[str, ...]:
        """The body lines as a person types them after borg's `` 1:``, `` 2:``... prompts."""
        out = []
        for index in range(self.lines):
            part = self.key[index * BYTES_PER_LINE : (index + 1) * BYTES_PER_LINE]
            check = sha256_truncated((index + 1).to_bytes(2, "big") + part, 2)
            out.append(f"{_grouped(part.hex())} - {check}")
        return tuple(out)

    def typed_lines(self) -> tuple[str, ...]:
        """What ``borg key import --paper REPO`` reads, one answer per prompt: id, then body.

        Canonical (lower case, borg's grouping), whatever the spelling of the
        text it was read from: borg compares checksums case-sensitively.
        """
        return (self.id_line(), *self.body_lines())

    def stdin(self) -> bytes:
        """:meth:`typed_lines` as the bytes to feed ``borg key import --paper`` on stdin."""
        return ("\n".join(self.typed_lines()) + "\n").encode("ascii")


def parse(text: str) -> tuple[PaperKey, ...]:
    """Every paper key block of ``text``, in order, each one checked.

    ``text`` may hold several blocks and any text around them (headers,
    instructions); a block starts at an ``id:`` line (with or without the
    ``BORG PAPER KEY v1`` line before it) and holds as many body lines as
    its id line says; blank lines inside a block are skipped.

    Raises PaperKeyInvalid when no block is found, and for the first line
    that does not check out, naming it ("check line 5", "check the id line")
    and where it is in ``text``.
    """
    lines = text.splitlines()
    keys: list[PaperKey] = []
    position = 0
    while position < len(lines):
        if _ID_LINE.match(lines[position]) is None:
            position += 1
            continue
        key, position = _read_block(lines, position, len(keys) + 1)
        keys.append(key)
    if not keys:
        raise PaperKeyInvalid(
            "no paper key found in the text",
            hint=f"the key starts with a line '{HEADER}', then a line 'id: ...' and numbered "
            "lines ' 1: ...'; type them as printed",
        )
    return tuple(keys)


def check_belongs(key: PaperKey, repository_id: str) -> None:
    """Raise PaperKeyMismatch unless ``key`` is one of the repository ``repository_id``."""
    if not repository_id.lower().startswith(key.repository_prefix):
        raise PaperKeyMismatch(
            f"the paper key is the key of another repository (id {key.repository_prefix}..., "
            f"this repository is {repository_id[:PREFIX_DIGITS]}...)",
            hint="nothing was restored; find the paper key printed for this repository "
            "(its id line shows the repository id's first 18 digits)",
        )


def for_repository(keys: Sequence[PaperKey], repository_id: str) -> PaperKey:
    """The key of ``keys`` that belongs to the repository ``repository_id``.

    Raises PaperKeyMismatch naming the repositories the keys are for when
    none is; ValueError for an empty ``keys``.
    """
    if not keys:
        raise ValueError("no paper key to choose from")
    for key in keys:
        if repository_id.lower().startswith(key.repository_prefix):
            return key
    if len(keys) == 1:
        check_belongs(keys[0], repository_id)
    found = ", ".join(f"{k.repository_prefix}..." for k in keys)
    raise PaperKeyMismatch(
        f"none of the {len(keys)} paper keys belongs to this repository "
        f"(id {repository_id[:PREFIX_DIGITS]}...; the keys are of {found})",
        hint="nothing was restored; find the paper key printed for this repository "
        "(its id line shows the repository id's first 18 digits)",
    )


# --- reading one block ----------------------------------------------------------------


def _typo(message: str, *, where: str, check: str) -> PaperKeyInvalid:
    return PaperKeyInvalid(
        f"{message} ({where})",
        hint=f"a typo when copying the paper key: check {check}",
    )


def _squeeze(text: str) -> str:
    """``text`` without any whitespace, lower case (borg drops the spaces; people type tabs)."""
    return "".join(text.split()).lower()


def _lookalike_note(hex_part: str) -> str:
    """``" ('O' typed for '0'?)"`` when ``hex_part`` holds a letter often typed for a digit."""
    for letter, digit in _LOOKALIKES.items():
        if letter in hex_part:
            return f" ({letter.upper()!r} typed for {digit!r}?)"
    return ""


def _read_block(lines: list[str], start: int, ordinal: int) -> tuple[PaperKey, int]:
    """The block whose id line is ``lines[start]``; returns it and the index after it.

    Raises PaperKeyInvalid naming the line (of the text and of the key) to check.
    """
    where_id = f"key {ordinal}, line {start + 1} of the text"
    count, prefix, overall = _read_id_line(lines[start], where_id)
    key = b""
    position = start + 1
    for number in range(1, count + 1):
        while position < len(lines) and not lines[position].strip():
            position += 1
        if position >= len(lines):
            raise _typo(
                f"the paper key stops after line {number - 1}; its id line says {count} lines",
                where=f"key {ordinal}",
                check=f"line {number} (missing)",
            )
        where = f"key {ordinal}, line {position + 1} of the text"
        key += _read_body_line(lines[position], number, where)
        position += 1
    if sha256_truncated(key, 12) != overall:
        # Every line checks out, but not the whole: the id line's key checksum was
        # mistyped in a way its own checksum missed, or lines come from two keys.
        raise _typo(
            "the lines of the paper key do not add up to the checksum of its id line",
            where=where_id,
            check="the id line's second group (the key's checksum), and that every line "
            "comes from the same key",
        )
    return PaperKey(repository_prefix=prefix, lines=count, key=key, source_line=start + 1), position


def _read_id_line(line: str, where_id: str) -> tuple[int, str, str]:
    """The id line ``line`` (it matches ``_ID_LINE``): (line count, repository prefix,
    the key's checksum). Raises PaperKeyInvalid on a checksum or shape that is off."""
    id_match = _ID_LINE.match(line)
    assert id_match is not None
    data, checksum = _split_checksum(
        _squeeze(id_match["rest"]), where=where_id, check="the id line"
    )
    if sha256_truncated(data.encode("ascii"), 2) != checksum:
        raise _typo(
            "the id line of the paper key does not match its checksum",
            where=where_id,
            check="the id line (the one starting with 'id:')",
        )
    fields = data.split("/")
    if len(fields) != 3 or not fields[0].isdigit():
        raise _typo(
            "the id line must read 'id: N / repository / checksum - cc'",
            where=where_id,
            check="the id line",
        )
    count, prefix, overall = int(fields[0]), fields[1], fields[2]
    if count < 1 or not re.fullmatch(r"[0-9a-f]{18}", prefix) or not _HEX.fullmatch(overall):
        raise _typo(
            "the id line does not hold a line count and an 18-digit repository id",
            where=where_id,
            check="the id line",
        )
    return count, prefix, overall


def _read_body_line(line: str, number: int, where: str) -> bytes:
    """The bytes of line ``number`` of a key, read from ``line`` (found at ``where``).

    Raises PaperKeyInvalid when it is out of order, holds other than hex digits, has
    an odd number of them, or does not match its checksum.
    """
    body = _BODY_LINE.fullmatch(line)
    assert body is not None  # every part of the pattern is optional
    if body["number"] is not None and int(body["number"]) != number:
        raise _typo(
            f"expected line {number} of the paper key, found line {int(body['number'])}",
            where=where,
            check=f"line {number} (missing or out of order)",
        )
    hex_part, checksum = _split_checksum(
        _squeeze(body["rest"]), where=where, check=f"line {number}"
    )
    if not _HEX.fullmatch(hex_part):
        raise _typo(
            f"line {number} of the paper key holds characters other than 0-9 and a-f"
            + _lookalike_note(hex_part),
            where=where,
            check=f"line {number}",
        )
    if len(hex_part) % 2:
        raise _typo(
            f"line {number} of the paper key has an odd number of hex digits",
            where=where,
            check=f"line {number} (a digit left out or typed twice)",
        )
    part = bytes.fromhex(hex_part)
    if sha256_truncated(number.to_bytes(2, "big") + part, 2) != checksum:
        raise _typo(
            f"line {number} of the paper key does not match its checksum",
            where=where,
            check=f"line {number}",
        )
    return part


def _split_checksum(squeezed: str, *, where: str, check: str) -> tuple[str, str]:
    """``"data-cc"`` -> ``("data", "cc")``; PaperKeyInvalid unless there is one ``-`` and 2 hex."""
    data, dash, checksum = squeezed.rpartition("-")
    if not dash or "-" in data or not _CHECKSUM.fullmatch(checksum):
        raise _typo(
            "a paper key line ends with ' - ' and 2 checksum digits (0-9, a-f)",
            where=where,
            check=check,
        )
    return data, checksum
