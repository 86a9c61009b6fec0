"""Cheap look at a local repository, without running borg."""

from __future__ import annotations

import configparser
import errno
import re
from pathlib import Path

from coffre.borg.exitcodes import NOT_RUN
from coffre.core.errors import BorgIntegrityError, BorgIOError, BorgRepositoryMissing

_HEX_ID = re.compile(r"[0-9a-fA-F]{64}")
# What a pulled-out or dying disk gives when read.
_STORAGE_ERRNOS = frozenset({errno.EIO, errno.ENXIO, errno.ENODEV, errno.EROFS})


def read_repository_id(path: Path) -> str:
    """The id (64 lowercase hex digits) of the borg repository in directory ``path``.

    Reads ``path/config`` (INI, ``[repository] id``) as borg wrote it: no
    borg process, no lock, no passphrase. It proves which repository is
    there, not that it is sound (that is ``borg check``'s job).

    Raises BorgRepositoryMissing when ``path`` or its ``config`` does not
    exist, BorgIOError when reading fails, BorgIntegrityError when the file
    is not a borg repository config. Their ``rc`` is ``NOT_RUN``.
    """
    config_file = path / "config"
    try:
        text = config_file.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise BorgRepositoryMissing(
            f"no borg repository at {path}: {config_file} does not exist",
            rc=NOT_RUN,
            hint="create it with `coffre target init NAME`",
        ) from None
    except UnicodeDecodeError:
        raise _corrupt(config_file, "it is not UTF-8 text") from None
    except OSError as exc:
        if exc.errno in _STORAGE_ERRNOS:
            raise BorgIOError(
                f"cannot read {config_file}: {exc.strerror}",
                rc=NOT_RUN,
                hint="the disk holding the repository may be unplugged or failing",
            ) from exc
        raise BorgIOError(f"cannot read {config_file}: {exc.strerror}", rc=NOT_RUN) from exc
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(config_file))
    except configparser.Error as exc:
        raise _corrupt(config_file, f"it is not an INI file ({exc.message})") from None
    try:
        value = parser.get("repository", "id")
    except (configparser.NoSectionError, configparser.NoOptionError):
        raise _corrupt(config_file, "it has no [repository] id") from None
    value = value.strip()
    if not _HEX_ID.fullmatch(value):
        raise _corrupt(config_file, f"its repository id is not 64 hex digits: {value!r}")
    return value.lower()


def _corrupt(config_file: Path, why: str) -> BorgIntegrityError:
    return BorgIntegrityError(
        f"{config_file} is not a valid borg repository config: {why}",
        rc=NOT_RUN,
        hint="run `borg check` on this repository; never edit its config by hand",
    )
