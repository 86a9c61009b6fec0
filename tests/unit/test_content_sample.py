"""coffre.guard.content_sample: magic bytes and entropy, and reads that never follow a link."""

from __future__ import annotations

import os
import random
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from coffre.core.errors import SourceUnavailable
from coffre.guard.content_sample import (
    classify,
    entropy,
    map_to_root,
    read_head,
    sample_changed,
)

RANDOM = random.Random(7).randbytes(16384)
TEXT = ("Compte rendu de consultation du patient, tension normale.\n" * 300).encode()


def _zip() -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


REAL_HEADS = {
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + RANDOM[:4000],
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + RANDOM[:4000],
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + RANDOM[:4000],
    "gif": b"GIF89a" + RANDOM[:4000],
    "tif": b"II*\x00" + RANDOM[:4000],
    "docx": _zip() + RANDOM[:4000],
    "xlsx": b"PK\x03\x04" + RANDOM[:4000],
    "doc": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + RANDOM[:4000],
    "msg": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + RANDOM[:4000],
    "dcm": b"\x00" * 128 + b"DICM" + RANDOM[:4000],
    "dll": b"MZ\x90\x00\x03\x00" + RANDOM[:4000],
    "7z": b"7z\xbc\xaf\x27\x1c" + RANDOM[:4000],
    "gz": b"\x1f\x8b\x08\x00" + RANDOM[:4000],
    "mp4": b"\x00\x00\x00\x18ftypmp42" + RANDOM[:4000],
    "rtf": b"{\\rtf1\\ansi " + TEXT[:4000],
}


def test_entropy_of_known_data() -> None:
    assert entropy(b"") == 0.0
    assert entropy(b"aaaa") == 0.0
    assert entropy(bytes(range(256))) == pytest.approx(8.0)
    assert entropy(RANDOM) > 7.98
    assert 3.5 < entropy(TEXT) < 5.0


@pytest.mark.parametrize("suffix", sorted(REAL_HEADS))
def test_a_valid_head_is_not_suspect(suffix: str) -> None:
    assert not classify(suffix, REAL_HEADS[suffix]).suspect
    assert classify(suffix.upper(), REAL_HEADS[suffix]).reason == "ok"


@pytest.mark.parametrize("suffix", [*sorted(REAL_HEADS), "txt", "csv", "locked", ""])
def test_random_bytes_are_suspect_whatever_the_extension(suffix: str) -> None:
    verdict = classify(suffix, RANDOM)
    assert verdict.suspect
    assert verdict.reason == "no_magic_high_entropy"


def test_text_types_are_fine_with_low_entropy() -> None:
    for suffix in ("txt", "csv", "xml", "sql", "log", "html"):
        assert not classify(suffix, TEXT).suspect


def test_a_known_format_under_another_extension_is_not_suspect() -> None:
    # Word saves RTF as .doc, medical software exports HTML as .xls.
    assert classify("doc", REAL_HEADS["rtf"]).reason == "other_format"
    assert not classify("xls", b"<html><body><table>" + TEXT[:3000]).suspect
    # A zip of JPEGs named .pdf by mistake is still not ciphertext.
    assert not classify("pdf", REAL_HEADS["docx"]).suspect


def test_unknown_extension_is_suspect_only_when_random_without_magic() -> None:
    assert not classify("dat", TEXT).suspect
    assert not classify("dat", REAL_HEADS["jpg"]).suspect
    assert classify("dat", RANDOM).suspect


def test_short_and_empty_heads_are_not_judged() -> None:
    assert not classify("pdf", b"").suspect
    assert classify("pdf", RANDOM[:63]).reason == "too_short"
    # A short head gets a lower entropy bar: 200 random bytes are random.
    assert classify("pdf", RANDOM[:200]).suspect


def test_map_to_root_takes_paths_below_a_root_only() -> None:
    roots = [Path("/srv/partage"), Path("/srv/scans/")]
    assert map_to_root(roots, "/srv/partage/a/b.pdf") == (0, (b"a", b"b.pdf"))
    assert map_to_root(roots, "/srv/scans/x.jpg") == (1, (b"x.jpg",))
    assert map_to_root(roots, "/srv/partage2/a.pdf") is None
    assert map_to_root(roots, "/srv/partage") is None
    assert map_to_root(roots, "srv/partage/a.pdf") is None
    assert map_to_root(roots, "/srv/partage/../../etc/shadow") is None
    assert map_to_root(roots, "/srv/partage/a/./b") is None
    assert map_to_root(roots, "/srv/partage/a//b") is None
    # A name that was not UTF-8 comes back from borg's JSON surrogate-escaped.
    assert map_to_root(roots, "/srv/partage/\udce9t\udce9.pdf") == (0, (b"\xe9t\xe9.pdf",))


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "partage"
    (root / "Patients").mkdir(parents=True)
    (root / "Patients" / "lettre.pdf").write_bytes(REAL_HEADS["pdf"])
    (root / "Patients" / "chiffre.pdf").write_bytes(RANDOM)
    (root / "note.txt").write_bytes(TEXT)
    return root


def test_sample_judges_the_changed_files(share: Path) -> None:
    paths = [str(share / "Patients" / n) for n in ("lettre.pdf", "chiffre.pdf")]
    paths.append(str(share / "note.txt"))
    result = sample_changed([share], paths, limit=10, head_bytes=4096, rng=random.Random(1))
    assert (result.sampled, result.suspects, result.unreadable) == (3, 1, 0)
    assert [s.relative for s in result.found] == ["Patients/chiffre.pdf"]
    assert result.found[0].root == share


def test_sample_draws_at_most_limit(share: Path) -> None:
    for i in range(30):
        (share / f"f{i}.txt").write_bytes(TEXT)
    paths = [str(share / f"f{i}.txt") for i in range(30)]
    result = sample_changed([share], paths, limit=7, head_bytes=512, rng=random.Random(2))
    assert result.sampled == 7


def test_sample_reads_head_bytes_at_most(share: Path) -> None:
    (share / "big.bin").write_bytes(TEXT + RANDOM)
    fd = os.open(share, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_head(fd, (b"big.bin",), 100) == TEXT[:100]
    finally:
        os.close(fd)


def test_sample_never_follows_symlinks(share: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key.pdf").write_bytes(RANDOM)
    (share / "lien.pdf").symlink_to(outside / "key.pdf")
    (share / "dossier").symlink_to(outside)
    paths = [str(share / "lien.pdf"), str(share / "dossier" / "key.pdf")]
    result = sample_changed([share], paths, limit=10, head_bytes=4096, rng=random.Random(1))
    assert (result.sampled, result.suspects, result.unreadable) == (0, 0, 2)


def test_sample_skips_fifos_without_blocking(share: Path) -> None:
    os.mkfifo(share / "tube.pdf")
    result = sample_changed(
        [share], [str(share / "tube.pdf")], limit=10, head_bytes=4096, rng=random.Random(1)
    )
    assert (result.sampled, result.unreadable) == (0, 1)


def test_sample_drops_paths_outside_the_roots(share: Path, tmp_path: Path) -> None:
    (tmp_path / "ailleurs.pdf").write_bytes(RANDOM)
    paths = [str(tmp_path / "ailleurs.pdf"), f"{share}/../ailleurs.pdf", "relative.pdf"]
    result = sample_changed([share], paths, limit=10, head_bytes=4096, rng=random.Random(1))
    assert (result.sampled, result.suspects, result.unreadable) == (0, 0, 0)


def test_unreadable_and_vanished_files_are_counted_not_raised(share: Path) -> None:
    locked = share / "Patients" / "verrou.pdf"
    locked.write_bytes(RANDOM)
    locked.chmod(0)
    paths = [str(locked), str(share / "Patients" / "parti.pdf")]
    result = sample_changed([share], paths, limit=10, head_bytes=4096, rng=random.Random(1))
    expected_unreadable = 1 if os.geteuid() == 0 else 2  # root reads mode 0 anyway
    assert result.unreadable == expected_unreadable
    assert result.suspects == 2 - expected_unreadable


def test_a_root_that_is_a_symlink_is_refused(share: Path, tmp_path: Path) -> None:
    link = tmp_path / "lien-partage"
    link.symlink_to(share)
    with pytest.raises(SourceUnavailable):
        sample_changed(
            [link], [str(link / "note.txt")], limit=1, head_bytes=64, rng=random.Random(1)
        )


def test_sample_leaves_access_times_alone(share: Path) -> None:
    target = share / "note.txt"
    os.utime(target, (1_000_000, 1_000_000))
    sample_changed([share], [str(target)], limit=1, head_bytes=64, rng=random.Random(1))
    assert target.stat().st_atime == 1_000_000
