"""Reading ``borg key export --paper`` back: real exports, typos named by line, several keys."""

from __future__ import annotations

import base64
import os
import re
import subprocess
from pathlib import Path

import pytest

from coffre.core import paper_key
from coffre.core.paper_key import PaperKey, PaperKeyInvalid, PaperKeyMismatch
from tests.parts import binary

pytestmark = pytest.mark.borg


def _borg(base: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(base),
        "BORG_BASE_DIR": str(base),
        "BORG_PASSPHRASE": "x",
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        [binary("borg"), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _repository(tmp: Path, name: str) -> tuple[str, str, bytes]:
    """A new repokey-blake2 repository: (its id, its paper export, its key as stored)."""
    repo = tmp / name
    base = tmp / f"base-{name}"
    _borg(base, "init", "--encryption=repokey-blake2", str(repo))
    paper = _borg(base, "key", "export", "--paper", str(repo))
    exported = _borg(base, "key", "export", str(repo), "-")
    first, _, rest = exported.partition("\n")
    return first.split()[1], paper, base64.b64decode("".join(rest.split()))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, bytes]:
    return _repository(tmp_path_factory.mktemp("paper"), "repo")


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, bytes]:
    return _repository(tmp_path_factory.mktemp("paper-other"), "other")


def _body(paper: str, number: int) -> str:
    """The body line ``number`` of a paper export (e.g. `` 5: 69605a ... - b4``)."""
    return next(line for line in paper.splitlines() if re.match(rf"\s*{number}:", line))


def test_a_real_export_reads_back_as_the_repository_key(exported: tuple[str, str, bytes]) -> None:
    repository_id, paper, stored = exported
    (key,) = paper_key.parse(paper)
    assert key.repository_prefix == repository_id[:18]
    assert key.key == stored
    assert key.lines == (len(stored) + 17) // 18
    # What borg's prompts read is the export's lines, without "id:" and the numbers.
    printed = [
        re.sub(r"^\s*(id|\d+):\s*", "", line)
        for line in paper.splitlines()
        if re.match(r"\s*(id|\d+):", line)
    ]
    assert list(key.typed_lines()) == printed
    assert key.stdin() == ("\n".join(printed) + "\n").encode("ascii")
    # What the recovery checks before trusting the key: it belongs to the repository's full id.
    paper_key.check_belongs(key, repository_id)
    assert paper_key.for_repository([key], repository_id) is key


def test_a_typo_in_a_body_line_names_that_line(exported: tuple[str, str, bytes]) -> None:
    _, paper, _ = exported
    line = _body(paper, 5)
    # One hex digit changed, as a person copying by hand would.
    digits = line.split(":", 1)[1]
    changed = digits.replace(digits.strip()[0], "0" if digits.strip()[0] != "0" else "1", 1)
    typo = paper.replace(line, line.split(":", 1)[0] + ":" + changed)
    with pytest.raises(PaperKeyInvalid) as caught:
        paper_key.parse(typo)
    assert caught.value.exit_code == 2 and caught.value.kind == "paper_key_invalid"
    assert "a typo when copying the paper key: check line 5" in str(caught.value)
    assert "line 5 of the paper key does not match its checksum" in caught.value.message


def test_a_letter_typed_for_a_digit_is_pointed_at(exported: tuple[str, str, bytes]) -> None:
    _, paper, _ = exported
    line = _body(paper, 3)
    head, rest = line.split(":", 1)
    digits, _, checksum = rest.rpartition("-")
    # The hex part only: a letter in the checksum is another kind of typo.
    mistyped = "O" + digits.strip()[1:]
    typo = paper.replace(line, f"{head}: {mistyped} -{checksum}")
    with pytest.raises(PaperKeyInvalid) as caught:
        paper_key.parse(typo)
    assert "check line 3" in caught.value.hint
    assert "typed for" in caught.value.message


def test_a_typo_in_the_id_line_names_the_id_line(exported: tuple[str, str, bytes]) -> None:
    repository_id, paper, _ = exported
    id_line = next(line for line in paper.splitlines() if line.startswith("id:"))
    # The id line reads "id: N / 6715d8 a14b89 5600a9 / f92143 20ac13 - 0b": change the
    # repository's first hex digit, not the "d" of "id" or a digit of the line count.
    count, repository, rest = id_line.split("/", 2)
    first = repository.strip()[0]
    assert first == repository_id[0]
    mistyped = repository.replace(first, "f" if first != "f" else "e", 1)
    typo = paper.replace(id_line, f"{count}/{mistyped}/{rest}")
    assert typo != paper
    with pytest.raises(PaperKeyInvalid) as caught:
        paper_key.parse(typo)
    assert "a typo when copying the paper key: check the id line" in str(caught.value)


def test_a_missing_line_is_named(exported: tuple[str, str, bytes]) -> None:
    _, paper, _ = exported
    (key,) = paper_key.parse(paper)
    last = _body(paper, key.lines)
    with pytest.raises(PaperKeyInvalid) as caught:
        paper_key.parse(paper.replace(last + "\n", ""))
    assert f"check line {key.lines} (missing)" in caught.value.hint


def test_two_keys_in_one_text_with_text_around_them(
    exported: tuple[str, str, bytes], other: tuple[str, str, bytes]
) -> None:
    (id_a, paper_a, stored_a), (id_b, paper_b, stored_b) = exported, other
    # As `coffre key export --paper` prints it (coffre.cli.restore.cmd_key).
    printout = (
        "COFFRE KEY ESCROW: print this, keep it with the passphrase, away from the box.\n"
        "Without the passphrase AND these keys, no backup can be read after the box is lost.\n"
        "ID: 42 (the box's inventory number, written by hand)\n"
        "\n--- target local: /srv/coffre/depots/local\n"
        f"    repository ID {id_a}\n\n"
        f"{paper_a.rstrip()}\n"
        "\n--- target hds1: ssh://cabinet@hds1.example.fr:22/srv/borg/cabinet\n"
        f"    repository ID {id_b}\n\n"
        f"{paper_b.rstrip()}\n"
        "\nHOW TO RECOVER (docs/disaster-recovery.md):\n"
        "  on a new box:  coffre recover --from ssh://USER@HOST:PORT/PATH --passphrase-file FILE\n"
        "  by hand:       borg key import --paper REPOSITORY\n"
    )
    keys = paper_key.parse(printout)
    assert [(k.repository_prefix, k.key) for k in keys] == [
        (id_a[:18], stored_a),
        (id_b[:18], stored_b),
    ]
    assert paper_key.for_repository(keys, id_b) is keys[1]
    with pytest.raises(PaperKeyMismatch) as caught:
        paper_key.for_repository(keys, "0" * 64)
    assert "none of the 2 paper keys belongs to this repository" in caught.value.message


def test_typed_by_hand_without_header_numbers_or_case(exported: tuple[str, str, bytes]) -> None:
    _, paper, stored = exported
    typed = "\n".join(
        re.sub(r"^\s*\d+:\s*", "", line).upper().replace("ID:", "id:") + "\t"
        for line in paper.splitlines()
        if re.match(r"\s*(id|\d+):", line)
    )
    (key,) = paper_key.parse(typed)
    assert key.key == stored
    # What is fed to borg is canonical: borg compares checksums in lower case.
    assert key.typed_lines() == paper_key.parse(paper)[0].typed_lines()


def test_a_text_without_a_key_and_a_key_of_another_repository_are_refused(
    exported: tuple[str, str, bytes], other: tuple[str, str, bytes]
) -> None:
    with pytest.raises(PaperKeyInvalid, match="no paper key found"):
        paper_key.parse("To restore key use borg key import --paper /path/to/repo\n")
    (key,) = paper_key.parse(exported[1])
    with pytest.raises(PaperKeyMismatch) as caught:
        paper_key.check_belongs(key, other[0])
    assert caught.value.exit_code == 2
    assert other[0][:18] in caught.value.message and key.repository_prefix in caught.value.message


def test_checksums_are_borgs_own() -> None:
    """The same numbers as borg's KeyManager.export_paperkey, on a key made up here."""
    from borg.crypto.keymanager import sha256_truncated  # type: ignore[import-untyped]

    blob = bytes(range(40))
    key = PaperKey(repository_prefix="0123456789abcdef01", lines=3, key=blob)
    assert paper_key.sha256_truncated(blob, 12) == sha256_truncated(blob, 12)
    idx_line = key.typed_lines()[2]
    assert idx_line.endswith(sha256_truncated((2).to_bytes(2, "big") + blob[18:36], 2))
    assert paper_key.parse("id: " + key.typed_lines()[0] + "\n" + "\n".join(key.body_lines()))[
        0
    ] == PaperKey("0123456789abcdef01", 3, blob, source_line=1)
