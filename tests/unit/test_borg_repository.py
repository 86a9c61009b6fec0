"""Reading a local repository's id without borg."""

from __future__ import annotations

from pathlib import Path

import pytest

from coffre.borg.exitcodes import NOT_RUN
from coffre.borg.repository import read_repository_id
from coffre.core.errors import BorgIntegrityError, BorgRepositoryMissing

REPO_ID = "fd5d1b98ba6f0e6f06533c387526c80220cb8fe931b0769733607faec0aa6624"

# As borg 1.4.5 writes it (key shortened).
CONFIG = f"""[repository]
version = 1
segments_per_dir = 1000
max_segment_size = 524288000
append_only = 0
storage_quota = 0
additional_free_space = 0
id = {REPO_ID}
key = hqlhbGdvcml0aG2mc2hhMjU2pGRhdGHaAZ65hElRz3isc0Y9k6/z5PPLIXw0nPCdYlTN3f
\tAQQ6s09JihadbYmyRzptqQx/YQTVcDAAMKmqEiuxiq4Ak+m9C5ITa8nPRjQmyPY6iUqhjG
\tF3b7NWZLmCWynWOndmVyc2lvbgE=

"""


def repo_with(tmp_path: Path, config: str) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config").write_text(config)
    return repo


def test_reads_the_id(tmp_path: Path) -> None:
    assert read_repository_id(repo_with(tmp_path, CONFIG)) == REPO_ID


def test_uppercase_id_is_normalised(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, CONFIG.replace(REPO_ID, REPO_ID.upper()))
    assert read_repository_id(repo) == REPO_ID


@pytest.mark.parametrize("make_dir", [False, True])
def test_missing(tmp_path: Path, make_dir: bool) -> None:
    repo = tmp_path / "repo"
    if make_dir:
        repo.mkdir()
    with pytest.raises(BorgRepositoryMissing) as caught:
        read_repository_id(repo)
    assert str(repo / "config") in caught.value.message
    assert "coffre target init" in caught.value.hint
    assert caught.value.rc == NOT_RUN


def test_path_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(BorgRepositoryMissing):
        read_repository_id(tmp_path / "file")


@pytest.mark.parametrize(
    "config",
    [
        "not an ini file\n",
        "[other]\nid = " + REPO_ID + "\n",
        "[repository]\nversion = 1\n",
        "[repository]\nid = 1234\n",
        "[repository]\nid = " + REPO_ID + "\n[repository]\nid = x\n",
    ],
)
def test_unparsable(tmp_path: Path, config: str) -> None:
    with pytest.raises(BorgIntegrityError) as caught:
        read_repository_id(repo_with(tmp_path, config))
    assert caught.value.rc == NOT_RUN


def test_not_utf8(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config").write_bytes(b"\xff\xfe[repository]\n")
    with pytest.raises(BorgIntegrityError, match="UTF-8"):
        read_repository_id(repo)
