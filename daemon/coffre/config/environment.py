"""The checks of a configuration that look at the box: the passphrase file, the sources."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from coffre.config.converters import is_within, normal
from coffre.config.targets import inside_source
from coffre.core.config_types import EncryptionConfig, LocalTarget, SourceConfig, TargetConfig
from coffre.core.errors import ConfigProblem


def environment_problems(
    source: SourceConfig | None,
    encryption: EncryptionConfig | None,
    targets: Sequence[TargetConfig | None],
) -> list[ConfigProblem]:
    """The problems the box shows for what parsed (None: a part that did not).

    The passphrase file must exist, be a regular non-empty file readable by us
    and closed to group and others; each source path must be a directory; no
    local target may sit inside a source once symlinks are resolved. Raises nothing.
    """
    problems: list[ConfigProblem] = []
    if encryption is not None:
        problems += _passphrase_file_problems(encryption.passphrase_file)
    if source is None:
        return problems
    resolved_sources: list[Path | None] = []
    for index, path in enumerate(source.paths):
        key = f"source.paths[{index}]"
        status = _stat(path, key, problems)
        if status is not None and not stat.S_ISDIR(status.st_mode):
            problems.append(ConfigProblem(key, f"{path} is not a directory"))
        resolved_sources.append(_resolved(path))
    # parse() compared the paths as written; a symlink can still lead a target in.
    for index, target in enumerate(targets):
        if not isinstance(target, LocalTarget) or (resolved := _resolved(target.path)) is None:
            continue
        for source_index, source_path in enumerate(source.paths):
            real_source = resolved_sources[source_index]
            if (
                real_source is not None
                and is_within(resolved, real_source)
                and not is_within(normal(target.path), normal(source_path))
            ):
                message = inside_source(target.path, source_index, " through symlinks")
                problems.append(ConfigProblem(f"target[{index}].path", message))
    return problems


def _passphrase_file_problems(path: Path) -> list[ConfigProblem]:
    key = "encryption.passphrase_file"
    problems: list[ConfigProblem] = []
    status = _stat(path, key, problems)
    if status is None:
        return problems
    if not stat.S_ISREG(status.st_mode):
        return [ConfigProblem(key, f"{path} is not a regular file")]
    mode = stat.S_IMODE(status.st_mode)
    if mode & 0o077:
        # Whoever reads it can open every backup of the practice's health data.
        opened = " and ".join(
            word for bits, word in ((0o044, "readable"), (0o022, "writable")) if mode & bits
        )
        problems.append(
            ConfigProblem(
                key,
                f"{path} is {opened or 'accessible'} by group or others (mode {mode:04o}); "
                f"run: chmod 600 {path}",
            )
        )
    if not os.access(path, os.R_OK):
        problems.append(ConfigProblem(key, f"{path} is not readable by uid {os.getuid()}"))
    elif status.st_size == 0:
        problems.append(ConfigProblem(key, f"{path} is empty; write the passphrase in it"))
    return problems


def _stat(path: Path, key: str, problems: list[ConfigProblem]) -> os.stat_result | None:
    """``path``'s status (following symlinks), or None with the problem recorded."""
    try:
        return path.stat()
    except FileNotFoundError:
        problems.append(ConfigProblem(key, f"{path} does not exist"))
    except OSError as error:
        problems.append(ConfigProblem(key, f"{path} cannot be examined: {error.strerror}"))
    return None


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        return None
