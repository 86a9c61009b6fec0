"""The one escape of share names for terminals and log lines (core.printable)."""

from __future__ import annotations

import os

import pytest

from coffre.core.printable import controls_escaped
from coffre.core.restore_plan import NAMED_IN_ERRORS, describe_paths


def test_an_esc_colour_sequence_shows_its_escape_not_the_colour() -> None:
    assert controls_escaped("\x1b[31mrouge.txt") == "\\x1b[31mrouge.txt"


def test_an_osc_title_setting_sequence_shows_its_esc_and_bel() -> None:
    assert controls_escaped("\x1b]0;pwned\x07a.txt") == "\\x1b]0;pwned\\x07a.txt"


def test_a_carriage_return_cannot_rewrite_the_start_of_the_line() -> None:
    assert controls_escaped("secret.pdf\rinnocent.pdf") == "secret.pdf\\x0dinnocent.pdf"


def test_a_backspace_cannot_erase_what_was_printed() -> None:
    assert controls_escaped("facture.exe\b\b\bpdf") == "facture.exe\\x08\\x08\\x08pdf"


def test_a_newline_cannot_forge_a_line_of_its_own() -> None:
    assert controls_escaped("a\nerror: b") == "a\\x0aerror: b"


def test_a_c1_csi_is_escaped_like_esc() -> None:
    assert controls_escaped("\x9b31mrouge") == "\\x9b31mrouge"


@pytest.mark.parametrize("code", [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
def test_every_bidi_override_and_isolate_is_escaped(code: int) -> None:
    assert controls_escaped(f"a{chr(code)}b") == f"a\\u{code:04x}b"


def test_a_right_to_left_override_cannot_reverse_an_extension() -> None:
    # "factureexe.pdf" would read "facturefdp.exe" on a terminal honouring U+202E.
    assert controls_escaped("facture\u202efdp.exe") == "facture\\u202efdp.exe"


def test_a_lone_surrogate_from_a_name_that_was_not_utf8_is_escaped() -> None:
    name = os.fsdecode(b"compte-rendu-\xe9t\xe9.odt")  # Latin-1 bytes from an old workstation
    assert controls_escaped(name) == "compte-rendu-\\udce9t\\udce9.odt"


def test_a_plain_french_name_is_left_as_it_is() -> None:
    name = "Patients/MARTIN Léa/bilan ergothérapie (1) — été 2026 ç'est ça.odt"
    assert controls_escaped(name) == name


def test_escaping_twice_reads_as_escaping_once() -> None:
    nasty = "\x1b]0;pwned\x07\x1b[31m\u202erouge\udce9\r\b\x9b.txt"
    once = controls_escaped(nasty)
    assert controls_escaped(once) == once
    assert once.isprintable()


def test_the_paths_an_error_message_names_are_escaped_where_it_is_made() -> None:
    message = describe_paths(["/srv/p/\x1b]0;pwned\x07rouge.txt", "/srv/p/Léa.odt"])
    assert message == "/srv/p/\\x1b]0;pwned\\x07rouge.txt, /srv/p/Léa.odt"


def test_an_error_message_naming_many_paths_counts_the_rest() -> None:
    message = describe_paths([f"\x1b{n}" for n in range(NAMED_IN_ERRORS + 2)])
    assert message.endswith(" and 2 more") and "\x1b" not in message
