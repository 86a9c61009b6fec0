"""A practice-like share for the ransomware guard's tests and benchmark, and what happens to it.

:class:`PracticeShare` builds a few thousand small files of the kinds a French
medical practice keeps, each with the magic bytes of its type: letters (.docx,
real zip containers), reports (.pdf), photos and scans (.jpg, .dcm with their
DICM preamble), notes (.txt), the practice software's database dump (.sql,
rewritten every night) and its programs (.dll/.exe, MZ). Then: a day of normal
churn, a software update, and a ransomware attack as a workstation does it
over SMB (contents overwritten with random bytes, files renamed ``.locked``).
Everything is drawn from one seeded ``random.Random``: a failure replays.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

PROGRAMS = "Logiciel"
DUMP = Path("Base") / "cabinet.sql"

_WORDS = tuple(
    [
        "patient",
        "consultation",
        "tension",
        "examen",
        "clinique",
        "traitement",
        "posologie",
        "ordonnance",
        "antecedents",
        "allergie",
        "radiographie",
        "compte",
        "rendu",
        "biologie",
        "suivi",
        "rendez-vous",
        "docteur",
        "cabinet",
        "medecin",
        "generaliste",
        "courrier",
        "confrere",
        "cordialement",
        "douleur",
        "fievre",
    ]
)


class PracticeShare:
    """A share under ``root``; ``rng`` decides every name, size and byte."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self._serial = 0

    # --- contents -------------------------------------------------------------

    def _text(self, words: int) -> str:
        return " ".join(self.rng.choice(_WORDS) for _ in range(words))

    def _docx(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
            archive.writestr("word/document.xml", f"<w:document>{self._text(400)}</w:document>")
        return buffer.getvalue()

    def _pdf(self) -> bytes:
        body = self._text(600).encode()
        image = self.rng.randbytes(self.rng.randint(2_000, 12_000))  # an embedded JPEG
        return b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n" + body + image + b"\n%%EOF\n"

    def _jpg(self) -> bytes:
        return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + self.rng.randbytes(
            self.rng.randint(8_000, 40_000)
        )

    def _dcm(self) -> bytes:
        pixels = bytes(
            self.rng.choice(range(0, 64)) for _ in range(self.rng.randint(8_000, 30_000))
        )
        return b"\x00" * 128 + b"DICM" + pixels

    def _txt(self) -> bytes:
        return self._text(self.rng.randint(20, 300)).encode()

    def _exe(self) -> bytes:
        return b"MZ\x90\x00\x03\x00\x00\x00" + self.rng.randbytes(self.rng.randint(2_000, 6_000))

    def _dump(self) -> bytes:
        rows = (
            f"INSERT INTO consultation VALUES ({i}, '{self._text(8)}');\n" for i in range(6_000)
        )
        return "".join(rows).encode()

    def content(self, suffix: str) -> bytes:
        """New content of a file of type ``suffix`` (docx, pdf, jpg, dcm, txt, dll, exe)."""
        makers: dict[str, Callable[[], bytes]] = {
            "docx": self._docx,
            "pdf": self._pdf,
            "jpg": self._jpg,
            "dcm": self._dcm,
            "txt": self._txt,
            "dll": self._exe,
            "exe": self._exe,
        }
        return makers[suffix]()

    def _write(self, relative: Path, data: bytes) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def _new_name(self, folder: Path, suffix: str) -> Path:
        self._serial += 1
        return folder / f"{self.rng.choice(_WORDS)}-{self._serial:05d}.{suffix}"

    # --- the share and its days --------------------------------------------------

    def build(self, patients: int = 300, programs: int = 550) -> None:
        """Create the share: per patient a few letters, reports, images and notes."""
        for number in range(patients):
            folder = Path("Patients") / f"PATIENT{number:04d} Prenom"
            for suffix, count in (("docx", 2), ("pdf", 2), ("jpg", 1), ("txt", 2)):
                for _ in range(self.rng.randint(max(0, count - 1), count + 1)):
                    self._write(self._new_name(folder, suffix), self.content(suffix))
            if number % 5 == 0:
                self._write(self._new_name(folder, "dcm"), self.content("dcm"))
        for _ in range(programs):
            suffix = "dll" if self.rng.random() < 0.9 else "exe"
            self._write(self._new_name(Path(PROGRAMS), suffix), self.content(suffix))
        self._write(DUMP, self._dump())

    def files(self) -> list[Path]:
        """Every regular file of the share, sorted (paths relative to the root)."""
        return sorted(
            path.relative_to(self.root) for path in self.root.rglob("*") if path.is_file()
        )

    def normal_day(self, day: int) -> None:
        """One day: 1 % of the files edited, a scanner session, a few deletions, the dump."""
        # After an attack the practice goes on with what it can still open.
        patients = [p for p in self.files() if p.parts[0] == "Patients" and p.suffix != ".locked"]
        for path in self.rng.sample(patients, max(1, len(patients) // 100)):
            self._write(path, self.content(path.suffix.lstrip(".")))
        scans = Path("Scans") / f"jour-{day:03d}"
        for _ in range(self.rng.randint(5, 25)):
            suffix = self.rng.choice(("pdf", "jpg"))
            self._write(self._new_name(scans, suffix), self.content(suffix))
        for path in self.rng.sample(patients, self.rng.randint(1, 6)):
            (self.root / path).unlink()
        self._write(DUMP, self._dump())

    def software_update(self, count: int = 500) -> None:
        """The practice software updated: ``count`` of its programs replaced by new builds."""
        programs = [p for p in self.files() if p.parts[0] == PROGRAMS]
        for path in self.rng.sample(programs, min(count, len(programs))):
            self._write(path, self.content(path.suffix.lstrip(".")))

    def ransomware(self, fraction: float = 0.5) -> list[Path]:
        """Encrypt ``fraction`` of the files as a workstation over SMB would; return them.

        The root's files (the canaries) are hit first, as a walk from the top
        hits them; then a random draw of the rest. Each file is overwritten
        in place with random bytes of its size, then renamed ``<name>.locked``.
        """
        every = self.files()
        top = [p for p in every if len(p.parts) == 1 and p.name.startswith("!")]
        rest = [p for p in every if p not in top]
        victims = top + self.rng.sample(rest, int(len(every) * fraction) - len(top))
        for path in victims:
            full = self.root / path
            size = full.stat().st_size
            with open(full, "r+b") as handle:
                handle.write(self.rng.randbytes(size))
            full.rename(full.with_name(full.name + ".locked"))
        return victims
