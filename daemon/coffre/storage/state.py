"""The daemon's memory: an sqlite database under the state dir.

Jobs write their outcomes here; status, metrics and LEDs only read. The file
survives restarts. A file sqlite cannot read is moved aside (never deleted)
and a fresh one is started, with a clear log line.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from coffre.core.errors import CoffreError, StateError
from coffre.core.model import (
    COMPLETED as COMPLETED,
)
from coffre.core.model import (
    FAILED as FAILED,
)
from coffre.core.model import (
    INTERRUPTED as INTERRUPTED,
)
from coffre.core.model import (  # re-exported: state's records are core's plain data
    RUNNING as RUNNING,
)
from coffre.core.model import (
    SUCCESS as SUCCESS,
)
from coffre.core.model import (
    UNSUCCESSFUL as UNSUCCESSFUL,
)
from coffre.core.model import (
    WARNING as WARNING,
)
from coffre.core.model import Archive
from coffre.core.model import (
    DiskRecord as DiskRecord,
)
from coffre.core.model import (
    RunRecord as RunRecord,
)
from coffre.core.model import (
    RunStats as RunStats,
)
from coffre.core.outcomes import BackupWarnings

#: 2: runs.warnings (the counts of a backup that ended with borg warnings).
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS repositories (
    target TEXT PRIMARY KEY,
    repository_id TEXT NOT NULL,
    location TEXT NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT NOT NULL,
    error_kind TEXT,
    error_message TEXT,
    archive TEXT,
    original_bytes INTEGER,
    compressed_bytes INTEGER,
    deduplicated_bytes INTEGER,
    nfiles INTEGER,
    warnings TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_target ON runs (target, kind, outcome, id);
-- error_counts() (metrics) reads this index only, not every run; last_run()
-- without an outcome finds the newest run of a kind at once.
CREATE INDEX IF NOT EXISTS runs_by_outcome ON runs (outcome, target, error_kind);
CREATE INDEX IF NOT EXISTS runs_by_kind ON runs (target, kind, id);
CREATE TABLE IF NOT EXISTS archives (
    target TEXT NOT NULL,
    name TEXT NOT NULL,
    archive_id TEXT NOT NULL,
    time REAL NOT NULL,
    PRIMARY KEY (target, name)
);
CREATE TABLE IF NOT EXISTS archive_lists (
    target TEXT PRIMARY KEY,
    listed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS disks (
    name TEXT PRIMARY KEY,
    fs_uuid TEXT NOT NULL UNIQUE,
    repository_id TEXT NOT NULL,
    enrolled_at REAL NOT NULL,
    last_seen REAL,
    devnode TEXT,
    devpath TEXT,
    present INTEGER NOT NULL DEFAULT 0,
    safe_to_remove INTEGER NOT NULL DEFAULT 0,
    free_bytes INTEGER,
    streak_started REAL,
    usb_device TEXT
);
"""

#: The listing time of a stale archive list: older than any age the list is
#: trusted for (archive_list.LIST_MAX_AGE), so the next job asks borg again.
STALE_LISTING = 0.0


def _ts(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("state times must be timezone-aware")
    return moment.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class State:
    """Typed access to the state database. Not thread-safe: the daemon's loop owns it."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    # --- life ---------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, logger: logging.Logger, now: datetime) -> State:
        """Open (or create) the database at ``path``.

        A file that is not a readable sqlite database is renamed
        ``<name>.unreadable-<UTC time>`` (with its -wal/-shm files) and a new
        one is started; the move is logged at ERROR level. Raises StateError
        when the directory cannot be written.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateError(
                f"cannot create the state directory {path.parent}: {exc.strerror}",
                hint="check paths.state in the configuration and the permissions",
            ) from exc
        try:
            return cls(_connect_checked(path))
        except sqlite3.DatabaseError as exc:
            moved = _move_aside(path, now)
            logger.error(
                "state database %s is unreadable (%s); moved it aside to %s and started a "
                "new one: run history and recorded repository IDs must be restored from it "
                "or re-recorded with `coffre target init NAME --adopt`",
                path,
                exc,
                moved,
            )
            try:
                return cls(_connect_checked(path))
            except sqlite3.DatabaseError as again:
                raise StateError(f"cannot create a new state database {path}: {again}") from again

    def close(self) -> None:
        self._db.close()

    @property
    def generation(self) -> int:
        """A number that changes whenever this State writes a row (sqlite's total_changes).

        The daemon is the only writer: readers (metrics) cache what they
        derived from state until it changes.
        """
        return self._db.total_changes

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                yield self._db
        except sqlite3.Error as exc:
            raise StateError(f"state database write failed: {exc}") from exc

    # --- meta -----------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def record_key_export(self, repository_id: str, at: datetime) -> None:
        """Remember that the key of ``repository_id`` was printed for escrow at ``at``."""
        self.set_meta(f"key_export.{repository_id}", at.isoformat())

    def key_exported_at(self, repository_id: str) -> datetime | None:
        """When the key of ``repository_id`` was last printed for escrow (None: never)."""
        value = self.get_meta(f"key_export.{repository_id}")
        return None if value is None else datetime.fromisoformat(value)

    def get_time(self, key: str) -> datetime | None:
        """A moment stored with set_time, or None."""
        raw = self.get_meta(key)
        return None if raw is None else datetime.fromisoformat(raw)

    def set_time(self, key: str, moment: datetime) -> None:
        _ts(moment)
        self.set_meta(key, moment.astimezone(UTC).isoformat())

    # --- repositories -------------------------------------------------------

    def repository_id(self, target: str) -> str | None:
        """The repository ID recorded at ``coffre target init``, or None."""
        row = self._db.execute(
            "SELECT repository_id FROM repositories WHERE target = ?", (target,)
        ).fetchone()
        return None if row is None else str(row[0])

    def record_repository(
        self, target: str, repository_id: str, location: str, at: datetime
    ) -> None:
        """Record (or replace) the repository a target must hold from now on.

        Replacing forgets the archives known for the target: they belonged to
        the previous repository.
        """
        with self._tx() as db:
            db.execute(
                "INSERT INTO repositories (target, repository_id, location, recorded_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (target) DO UPDATE SET "
                "repository_id = excluded.repository_id, location = excluded.location, "
                "recorded_at = excluded.recorded_at",
                (target, repository_id, location, _ts(at)),
            )
            db.execute("DELETE FROM archives WHERE target = ?", (target,))
            db.execute("DELETE FROM archive_lists WHERE target = ?", (target,))

    # --- runs -----------------------------------------------------------------

    def start_run(self, target: str, kind: str, at: datetime) -> int:
        """Record that a run begins; returns its id for finish_run."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO runs (target, kind, started_at, outcome) VALUES (?, ?, ?, ?)",
                (target, kind, _ts(at), RUNNING),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish_run(
        self,
        run_id: int,
        at: datetime,
        *,
        error: CoffreError | None = None,
        stats: RunStats | None = None,
    ) -> None:
        """Record how a run ended: FAILED with ``error``; else WARNING when ``stats``
        carry warnings, SUCCESS otherwise. Raises StateError when it cannot be written."""
        warnings = None if stats is None else stats.warnings
        outcome = FAILED if error is not None else SUCCESS if warnings is None else WARNING
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, error_kind = ?, error_message = ?, "
                "archive = ?, original_bytes = ?, compressed_bytes = ?, deduplicated_bytes = ?, "
                "nfiles = ?, warnings = ? WHERE id = ?",
                (
                    _ts(at),
                    outcome,
                    None if error is None else error.kind,
                    None if error is None else str(error),
                    None if stats is None else stats.archive,
                    None if stats is None else stats.original_bytes,
                    None if stats is None else stats.compressed_bytes,
                    None if stats is None else stats.deduplicated_bytes,
                    None if stats is None else stats.nfiles,
                    None if warnings is None else warnings.to_json(),
                    run_id,
                ),
            )

    def mark_interrupted_runs(self, at: datetime) -> int:
        """Close runs left 'running' by a daemon that died; returns how many.

        Their targets' archive lists are marked stale (see forget_archives):
        borg may have left a checkpoint archive that state never heard of.
        """
        with self._tx() as db:
            db.execute(
                "UPDATE archive_lists SET listed_at = ? WHERE target IN "
                "(SELECT target FROM runs WHERE outcome = ?)",
                (STALE_LISTING, RUNNING),
            )
            cursor = db.execute(
                "UPDATE runs SET outcome = ?, finished_at = ?, error_kind = ?, error_message = ? "
                "WHERE outcome = ?",
                (
                    INTERRUPTED,
                    _ts(at),
                    "interrupted",
                    "the daemon stopped while this run was going on",
                    RUNNING,
                ),
            )
        return cursor.rowcount

    def last_run(
        self, target: str, kind: str, *, outcome: str | tuple[str, ...] | None = None
    ) -> RunRecord | None:
        """The newest run of ``kind`` on ``target`` (with that outcome, or one of those,
        when given)."""
        query = "SELECT * FROM runs WHERE target = ? AND kind = ?"
        params: tuple[str, ...] = (target, kind)
        if outcome is not None:
            wanted = (outcome,) if isinstance(outcome, str) else outcome
            query += f" AND outcome IN ({', '.join('?' for _ in wanted)})"
            params += wanted
        row = self._db.execute(query + " ORDER BY id DESC LIMIT 1", params).fetchone()
        return None if row is None else _run(row)

    def last_completed(self, target: str, kind: str = "backup") -> RunRecord | None:
        """The newest run of ``kind`` on ``target`` that did its work (see COMPLETED):
        for a backup, the last archive made, complete or with warnings."""
        return self.last_run(target, kind, outcome=COMPLETED)

    def warnings_in_a_row(self, target: str, kind: str = "backup") -> int:
        """How many runs of ``kind`` on ``target`` ended with warnings since its last clean
        archive: 2 means the last two archives made both lack or doubt files. Runs that
        made no archive (failed, interrupted, a disk job that found today's archive
        there) neither count nor break the row."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM runs WHERE target = ? AND kind = ? AND outcome = ? AND id > "
            "COALESCE((SELECT MAX(id) FROM runs WHERE target = ? AND kind = ? AND outcome = ? "
            "AND archive IS NOT NULL), 0)",
            (target, kind, WARNING, target, kind, SUCCESS),
        ).fetchone()
        return int(row[0])

    def warning_counts(self, kind: str = "backup") -> dict[str, int]:
        """How many runs of ``kind`` ended with warnings, by target."""
        rows = self._db.execute(
            "SELECT target, COUNT(*) FROM runs WHERE outcome = ? AND kind = ? GROUP BY target",
            (WARNING, kind),
        ).fetchall()
        return {str(target): int(n) for target, n in rows}

    def last_failure(self, target: str) -> RunRecord | None:
        """The newest failed or interrupted run of any kind on ``target``."""
        row = self._db.execute(
            "SELECT * FROM runs WHERE target = ? AND outcome IN (?, ?) ORDER BY id DESC LIMIT 1",
            (target, FAILED, INTERRUPTED),
        ).fetchone()
        return None if row is None else _run(row)

    def last_finished_run(self, target: str, kind: str) -> RunRecord | None:
        """The newest run of ``kind`` on ``target`` that has ended, whatever its outcome."""
        row = self._db.execute(
            "SELECT * FROM runs WHERE id = (SELECT MAX(id) FROM runs "
            "WHERE target = ? AND kind = ? AND outcome IN (?, ?, ?, ?))",
            (target, kind, SUCCESS, WARNING, FAILED, INTERRUPTED),
        ).fetchone()
        return None if row is None else _run(row)

    def last_run_with_stats(self, target: str, kind: str = "backup") -> RunRecord | None:
        """The newest run of ``kind`` on ``target`` that made an archive (with warnings too)."""
        row = self._db.execute(
            "SELECT * FROM runs WHERE target = ? AND kind = ? AND outcome IN (?, ?) "
            "AND archive IS NOT NULL ORDER BY id DESC LIMIT 1",
            (target, kind, *COMPLETED),
        ).fetchone()
        return None if row is None else _run(row)

    def error_counts(self) -> dict[tuple[str, str], int]:
        """How many failed runs each (target, error kind) has had."""
        rows = self._db.execute(
            "SELECT target, error_kind, COUNT(*) FROM runs WHERE outcome IN (?, ?) "
            "GROUP BY target, error_kind",
            (FAILED, INTERRUPTED),
        ).fetchall()
        return {(str(t), str(k)): int(n) for t, k, n in rows}

    # --- USB disks ------------------------------------------------------------

    _DISK_COLUMNS = (
        "name, fs_uuid, repository_id, enrolled_at, last_seen, devnode, devpath, present, "
        "safe_to_remove, free_bytes, streak_started, usb_device"
    )

    def disks(self) -> list[DiskRecord]:
        """Every enrolled disk, by name."""
        rows = self._db.execute(f"SELECT {self._DISK_COLUMNS} FROM disks ORDER BY name").fetchall()
        return [_disk(row) for row in rows]

    def disk(self, name: str) -> DiskRecord | None:
        row = self._db.execute(
            f"SELECT {self._DISK_COLUMNS} FROM disks WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else _disk(row)

    def disk_by_uuid(self, fs_uuid: str) -> DiskRecord | None:
        row = self._db.execute(
            f"SELECT {self._DISK_COLUMNS} FROM disks WHERE fs_uuid = ?", (fs_uuid,)
        ).fetchone()
        return None if row is None else _disk(row)

    def enroll_disk(self, name: str, fs_uuid: str, repository_id: str, at: datetime) -> None:
        """Record a disk coffre prepared; its repository ID is recorded as the target's too."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO disks (name, fs_uuid, repository_id, enrolled_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET fs_uuid = excluded.fs_uuid, "
                "repository_id = excluded.repository_id, enrolled_at = excluded.enrolled_at",
                (name, fs_uuid, repository_id, _ts(at)),
            )
        self.record_repository(name, repository_id, f"usb:{fs_uuid}", at)
        self.replace_archives(name, [], at)

    def forget_disk(self, name: str) -> bool:
        """Forget an enrolled disk (nothing on the disk is touched); False if unknown."""
        with self._tx() as db:
            cursor = db.execute("DELETE FROM disks WHERE name = ?", (name,))
            db.execute("DELETE FROM repositories WHERE target = ?", (name,))
            db.execute("DELETE FROM archives WHERE target = ?", (name,))
            db.execute("DELETE FROM archive_lists WHERE target = ?", (name,))
        return cursor.rowcount > 0

    def disk_seen(
        self, name: str, devnode: str, devpath: str, usb_device: str | None, at: datetime
    ) -> None:
        """The kernel shows ``name`` at ``devnode``; it starts a streak if another disk was last."""
        previous = self.get_meta("usb.last_plugged")
        with self._tx() as db:
            db.execute(
                "UPDATE disks SET present = 1, safe_to_remove = 0, last_seen = ?, devnode = ?, "
                "devpath = ?, usb_device = ? WHERE name = ?",
                (_ts(at), devnode, devpath, usb_device, name),
            )
            if previous != name:
                db.execute("UPDATE disks SET streak_started = ? WHERE name = ?", (_ts(at), name))
        if previous != name:
            self.set_meta("usb.last_plugged", name)

    def disk_gone(self, devpath: str, at: datetime) -> str | None:
        """The device at ``devpath`` went away; returns the disk's name if it was one of ours."""
        row = self._db.execute(
            "SELECT name FROM disks WHERE devpath = ? AND present = 1", (devpath,)
        ).fetchone()
        if row is None:
            return None
        with self._tx() as db:
            db.execute(
                "UPDATE disks SET present = 0, last_seen = ? WHERE name = ?", (_ts(at), row[0])
            )
        return str(row[0])

    def disk_done(self, name: str, *, safe: bool, free_bytes: int | None, at: datetime) -> None:
        """A job on ``name`` ended: powered off (``safe``) or not, with its free space."""
        with self._tx() as db:
            db.execute(
                "UPDATE disks SET safe_to_remove = ?, present = CASE WHEN ? THEN 0 ELSE present "
                "END, free_bytes = COALESCE(?, free_bytes), last_seen = ? WHERE name = ?",
                (int(safe), int(safe), free_bytes, _ts(at), name),
            )

    # --- archives -------------------------------------------------------------

    def archives(self, target: str) -> list[Archive] | None:
        """The archives known on ``target``, oldest first; None if never listed."""
        if (
            self._db.execute("SELECT 1 FROM archive_lists WHERE target = ?", (target,)).fetchone()
            is None
        ):
            return None
        rows = self._db.execute(
            "SELECT name, archive_id, time FROM archives WHERE target = ? ORDER BY time, name",
            (target,),
        ).fetchall()
        return [Archive(time=datetime.fromtimestamp(t, UTC), name=n, id=i) for n, i, t in rows]

    def archives_listed_at(self, target: str) -> datetime | None:
        """When borg last listed ``target``'s archives for state, or None."""
        row = self._db.execute(
            "SELECT listed_at FROM archive_lists WHERE target = ?", (target,)
        ).fetchone()
        return None if row is None else _dt(float(row[0]))

    def replace_archives(self, target: str, archives: Iterable[Archive], at: datetime) -> None:
        """Make ``archives`` (as just listed by borg) the known list of ``target``."""
        with self._tx() as db:
            db.execute("DELETE FROM archives WHERE target = ?", (target,))
            db.executemany(
                "INSERT INTO archives (target, name, archive_id, time) VALUES (?, ?, ?, ?)",
                [(target, a.name, a.id, _ts(a.time)) for a in archives],
            )
            db.execute(
                "INSERT INTO archive_lists (target, listed_at) VALUES (?, ?) "
                "ON CONFLICT (target) DO UPDATE SET listed_at = excluded.listed_at",
                (target, _ts(at)),
            )

    def forget_archives(self, target: str) -> None:
        """Mark ``target``'s archive list stale: still shown, but the next job asks borg for it.

        Kept, not dropped: after a backup cut short (a stop, a crash) status
        would say "not listed yet" of a repository full of archives until the
        next job; only a checkpoint may be missing from it meanwhile.
        """
        with self._tx() as db:
            db.execute(
                "UPDATE archive_lists SET listed_at = ? WHERE target = ?", (STALE_LISTING, target)
            )

    def add_archive(self, target: str, archive: Archive) -> None:
        """Remember an archive coffre just created."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO archives (target, name, archive_id, time) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (target, name) DO UPDATE SET archive_id = excluded.archive_id, "
                "time = excluded.time",
                (target, archive.name, archive.id, _ts(archive.time)),
            )

    def remove_archives(self, target: str, names: Iterable[str]) -> None:
        """Forget archives coffre just deleted."""
        with self._tx() as db:
            db.executemany(
                "DELETE FROM archives WHERE target = ? AND name = ?",
                [(target, name) for name in names],
            )


def _disk(row: tuple[object, ...]) -> DiskRecord:
    (name, uuid, repo, enrolled, seen, devnode, devpath, present, safe, free, streak, usb) = row
    enrolled_at = _dt(float(str(enrolled)))
    assert enrolled_at is not None
    return DiskRecord(
        name=str(name),
        fs_uuid=str(uuid),
        repository_id=str(repo),
        enrolled_at=enrolled_at,
        last_seen=_dt(None if seen is None else float(str(seen))),
        devnode=None if devnode is None else str(devnode),
        devpath=None if devpath is None else str(devpath),
        present=bool(present),
        safe_to_remove=bool(safe),
        free_bytes=None if free is None else int(str(free)),
        streak_started=_dt(None if streak is None else float(str(streak))),
        usb_device=None if usb is None else str(usb),
    )


def _connect_checked(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        # FULL: a run recorded as finished must survive a power cut right after.
        db.execute("PRAGMA synchronous = FULL")
        (verdict,) = db.execute("PRAGMA quick_check").fetchone()
        if verdict != "ok":
            raise sqlite3.DatabaseError(f"integrity check says: {verdict}")
        db.isolation_level = "DEFERRED"
        db.executescript(_SCHEMA)
        found = db.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"written by a newer coffre (schema {found}, this one knows {SCHEMA_VERSION})"
            )
        _upgrade(db)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        path.chmod(0o600)
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _upgrade(db: sqlite3.Connection) -> None:
    """Bring a database of an older schema to this one (CREATE IF NOT EXISTS adds no column).

    1 -> 2: runs.warnings, NULL for the runs before (they are what they said).
    Raises sqlite3.DatabaseError.
    """
    columns = {str(row[1]) for row in db.execute("PRAGMA table_info(runs)")}
    if "warnings" not in columns:
        with db:
            db.execute("ALTER TABLE runs ADD COLUMN warnings TEXT")


def _move_aside(path: Path, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.unreadable-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.rename(Path(f"{target}{suffix}"))
    return target


def _run(row: tuple[object, ...]) -> RunRecord:
    (
        run_id,
        target,
        kind,
        started,
        finished,
        outcome,
        error_kind,
        error_message,
        archive,
        original,
        compressed,
        dedup,
        nfiles,
        warnings,
    ) = row
    stats = None
    if archive is not None:
        stats = RunStats(
            archive=str(archive),
            original_bytes=int(str(original)),
            compressed_bytes=int(str(compressed)),
            deduplicated_bytes=int(str(dedup)),
            nfiles=int(str(nfiles)),
            warnings=_warnings(warnings),
        )
    started_at = _dt(float(str(started)))
    assert started_at is not None
    return RunRecord(
        id=int(str(run_id)),
        target=str(target),
        kind=str(kind),
        started_at=started_at,
        finished_at=_dt(None if finished is None else float(str(finished))),
        outcome=str(outcome),
        error_kind=None if error_kind is None else str(error_kind),
        error_message=None if error_message is None else str(error_message),
        stats=stats,
    )


def _warnings(stored: object) -> BackupWarnings | None:
    """The warnings column of a run: None when clean; unreadable counts read as "some warning"."""
    if stored is None:
        return None
    try:
        return BackupWarnings.from_json(str(stored))
    except ValueError:
        # Still a run with warnings: its outcome says so, only the counts are lost.
        return BackupWarnings()
