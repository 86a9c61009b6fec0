"""Logging: to journald (with MESSAGE_IDs) when it is there, else to stderr."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import Literal

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")

# journald MESSAGE_IDs (128-bit, hex), stable across releases: support filters
# on them (`journalctl MESSAGE_ID=...`).
MSG_BACKUP_STARTED = "4f1c2d8e9a6b4c3d8e2f1a0b9c8d7e61"
MSG_BACKUP_SUCCEEDED = "7a2b3c4d5e6f40718293a4b5c6d7e8f2"
MSG_BACKUP_FAILED = "d1e2f3a4b5c647d8e9f0a1b2c3d4e5f3"
MSG_PRUNE_DONE = "0b1c2d3e4f5a46b7c8d9e0f1a2b3c4d4"
MSG_DAEMON_READY = "5e6f7a8b9c0d41e2f3a4b5c6d7e8f9a5"
#: A backup made its archive but borg warned: files missing or changed (field
#: COFFRE_FILES_NOT_BACKED_UP); each file has its own MSG_FILE_NOT_BACKED_UP line.
MSG_BACKUP_WARNING = "c3bbfe9b7e07415b9bf60edff16d7e4d"
#: One file a backup could not save, or saw change (fields COFFRE_TARGET,
#: COFFRE_WARNING_REASON); the message names the file: it stays in the journal.
MSG_FILE_NOT_BACKED_UP = "673efee3eae24395842ced1da97d4af4"
#: A job failed on an error coffre has no type for; the entry carries the traceback.
MSG_JOB_CRASHED = "727cbb493b3a412b8da35eb0813f506d"
#: The box lacks something every backup needs (share, passphrase file, data volume).
MSG_BOX_PROBLEM = "aa322491cb23446ca9cace004c1f6420"
#: What MSG_BOX_PROBLEM reported is back.
MSG_BOX_RECOVERED = "6c0ea5a2a9cc407e9c13b00f840fb7a9"
#: A lane's worker is gone: the watchdog is no longer pinged, systemd restarts the daemon.
MSG_LANE_DEAD = "6b1eb84e022d4c87b01ecb41fef747be"
#: A backup's change signal saw mass encryption, renaming or deletion (counts in the
#: fields COFFRE_GUARD_*, never a file name): pruning is frozen on every target.
MSG_GUARD_RANSOMWARE = "64c772d7c89f4ff58f6a25cecace772e"
#: The clock guard saw an archive dated in the future or the clock leap ahead.
MSG_GUARD_CLOCK = "12e55da3991b4481b20083ccd5dab08e"
#: An incident was cleared (by a person, or the clock by itself): pruning may resume.
MSG_GUARD_CLEARED = "ab92d3fd11744dfab74fa7ba0ca3e0e0"
#: Retention found archives to delete and deleted none: an incident freezes pruning.
MSG_PRUNING_FROZEN = "1c8c888337e443f481baf8b4a3ecdb38"
#: A backup read the live share, not a snapshot (why: in the message).
MSG_SNAPSHOT_LIVE = "0360305bc5ed40429d9409e97f49e400"
#: Previous Versions removed to keep room on the share's filesystem, or a killed run's view.
MSG_SNAPSHOT_ROOM = "cf1cd9e6426f4115b843d5643d7712cd"
#: Taking, listing or removing Previous Versions failed.
MSG_SNAPSHOT_FAILED = "557cd6152316499eba7749a31bba912a"

LOGGER_NAME = "coffre"

LogTarget = Literal["auto", "journal", "stderr"]


def journald_listening(path: Path = JOURNAL_SOCKET) -> bool:
    """True when a journald answers on ``path`` (a socket file alone may be stale)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def setup(target: LogTarget = "auto", *, level: int = logging.INFO) -> logging.Logger:
    """Configure and return the ``coffre`` logger.

    ``auto`` picks journald when its socket exists, stderr otherwise. Extra
    fields given as ``extra={"MESSAGE_ID": ...}`` reach journald as fields.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    logger.handlers.clear()
    logger.propagate = False
    use_journal = target == "journal" or (target == "auto" and journald_listening())
    handler: logging.Handler
    if use_journal:
        from systemd.journal import JournalHandler  # only import where journald is

        handler = JournalHandler(SYSLOG_IDENTIFIER="coffre")
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s coffre %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger
