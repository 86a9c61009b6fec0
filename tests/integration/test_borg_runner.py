"""The borg door against the real borg 1.4.5: argv, runner, parsers and errors together."""

from __future__ import annotations

import asyncio
import errno
import filecmp
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coffre.borg import argv, parse
from coffre.borg.env import BorgEnvironment
from coffre.borg.repository import read_repository_id
from coffre.borg.runner import BorgRunner, Progress
from coffre.core.errors import (
    BorgArchiveExists,
    BorgArchiveMissing,
    BorgLockTimeout,
    BorgRepositoryExists,
    BorgRepositoryMissing,
    BorgWrongPassphrase,
)
from coffre.core.model import Archive
from tests.parts import binary

pytestmark = pytest.mark.borg

ENCRYPTION = "repokey-blake2"


@pytest.fixture(scope="module")
def borg_binary() -> str:
    return binary("borg")


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(secrets.token_urlsafe(24) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def borg_env(tmp_path: Path, borg_binary: str) -> BorgEnvironment:
    return BorgEnvironment(borg_binary, tmp_path / "borg-base", tmp_path / "borg-cache")


def make_runner(
    env: BorgEnvironment,
    passphrase: Callable[[], bytes],
    *,
    lock_wait: int = 1,
    stop_timeout: float = 30.0,
) -> BorgRunner:
    return BorgRunner(
        env,
        passphrase,
        lock_wait=lock_wait,
        stop_timeout=stop_timeout,
        logger=logging.getLogger("coffre.test.borg"),
    )


@pytest.fixture
def runner(borg_env: BorgEnvironment, passphrase_file: Path) -> BorgRunner:
    return make_runner(borg_env, passphrase_file.read_bytes)


@pytest.fixture
def repo(tmp_path: Path, runner: BorgRunner) -> Path:
    """An initialised repository (parents made by borg)."""
    path = tmp_path / "disk" / "coffre" / "repo"
    asyncio.run(runner.run(argv.init(str(path), encryption=ENCRYPTION)))
    return path


def make_source(root: Path) -> Path:
    source = root / "share"
    (source / "patients" / "été").mkdir(parents=True)
    (source / "agenda.db").write_bytes(os.urandom(300_000))
    (source / "patients" / "dupont.pdf").write_bytes(b"%PDF" + os.urandom(50_000))
    (source / "patients" / "été" / "notes.txt").write_text("séance du jour\n")
    (source / "vide").mkdir()
    return source


def create(
    runner: BorgRunner,
    repo: Path,
    name: str,
    source: Path,
    *,
    timestamp: datetime | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> parse.CreateStats:
    args = argv.create(
        str(repo),
        name,
        [str(source)],
        compression="zstd,3",
        checkpoint_interval=1800,
        timestamp=timestamp,
        progress=on_progress is not None,
    )
    result = asyncio.run(runner.run(args, on_progress=on_progress))
    assert result.rc == 0, result.logs
    return parse.create(result.json())


def archives(runner: BorgRunner, repo: Path) -> list[Archive]:
    return parse.archives(asyncio.run(runner.run(argv.list_archives(str(repo)))).json())


def test_version(runner: BorgRunner) -> None:
    assert asyncio.run(runner.version()) == "1.4.5"


def test_a_repository_life(tmp_path: Path, runner: BorgRunner, repo: Path) -> None:
    source = make_source(tmp_path)
    info = asyncio.run(runner.run(argv.info_repository(str(repo)))).json()
    repository_id = parse.repository_id(info)
    assert read_repository_id(repo) == repository_id

    seen: list[Progress] = []
    first = create(runner, repo, "cabinet-1", source, on_progress=seen.append)
    assert seen, "no progress reported"
    assert any(p.finished for p in seen)
    assert first.repository_id == repository_id
    assert first.nfiles == 3
    assert first.original_size == 300_000 + 4 + 50_000 + len("séance du jour\n".encode())
    assert first.archive.time.tzinfo is UTC
    assert abs((datetime.now(UTC) - first.archive.time).total_seconds()) < 120

    second = create(runner, repo, "cabinet-2", source)
    assert second.deduplicated_size < first.deduplicated_size  # nothing new to store
    third = create(runner, repo, "cabinet-3", source)
    listed = archives(runner, repo)
    assert [(a.name, a.id) for a in listed] == [
        ("cabinet-1", first.archive.id),
        ("cabinet-2", second.archive.id),
        ("cabinet-3", third.archive.id),
    ]
    assert [a.time for a in listed] == [first.archive.time, second.archive.time, third.archive.time]

    deleted = asyncio.run(runner.run(argv.delete(str(repo), ["cabinet-1", "cabinet-2"])))
    assert deleted.rc == 0
    assert [a.name for a in archives(runner, repo)] == ["cabinet-3"]
    assert asyncio.run(runner.run(argv.compact(str(repo)))).rc == 0
    assert asyncio.run(runner.run(argv.check(str(repo)))).rc == 0

    restore = tmp_path / "restore"
    restore.mkdir()
    asyncio.run(runner.run(argv.extract(str(repo), "cabinet-3"), cwd=restore))
    restored = restore / source.relative_to("/")
    _assert_same_tree(source, restored)

    partial = tmp_path / "partial"
    partial.mkdir()
    wanted = str((source / "patients" / "été").relative_to("/"))
    asyncio.run(runner.run(argv.extract(str(repo), "cabinet-3", [wanted]), cwd=partial))
    assert (partial / wanted / "notes.txt").read_text() == "séance du jour\n"
    assert not (partial / source.relative_to("/") / "agenda.db").exists()

    # --list: one progress call per item written, none of them a log record.
    listed_dir = tmp_path / "listed"
    listed_dir.mkdir()
    written_items: list[Progress] = []
    stripped = len(source.relative_to("/").parts)
    result = asyncio.run(
        runner.run(
            argv.extract(str(repo), "cabinet-3", list_items=True, strip_components=stripped),
            cwd=listed_dir,
            on_progress=written_items.append,
        )
    )
    written = sorted(str(p.relative_to(listed_dir)) for p in listed_dir.rglob("*"))
    assert sorted(p.message for p in written_items) == written and written
    assert not [r for r in result.logs if r.name == "borg.output.list"]
    _assert_same_tree(source, listed_dir)

    paper = asyncio.run(runner.run(argv.key_export_paper(str(repo)))).stdout
    assert "BORG PAPER KEY v1" in paper


def _assert_same_tree(left: Path, right: Path) -> None:
    compared = filecmp.dircmp(left, right)
    assert not compared.left_only and not compared.right_only and not compared.funny_files
    for name in compared.common_files:
        assert (left / name).read_bytes() == (right / name).read_bytes(), name
    for name in compared.common_dirs:
        _assert_same_tree(left / name, right / name)


def test_timestamp_round_trip(tmp_path: Path, runner: BorgRunner, repo: Path) -> None:
    """An archive made with --timestamp lists back at the very instant given."""
    source = make_source(tmp_path)
    paris = ZoneInfo("Europe/Paris")
    # The night clocks went back: 02:30 happened twice in Paris (00:30 and 01:30 UTC).
    first_0230 = datetime(2024, 10, 27, 2, 30, tzinfo=paris, fold=0)
    second_0230 = datetime(2024, 10, 27, 2, 30, tzinfo=paris, fold=1)
    summer = datetime(2024, 7, 14, 23, 59, 59, tzinfo=paris)
    made = {
        "before-dst-end": create(runner, repo, "before-dst-end", source, timestamp=first_0230),
        "after-dst-end": create(runner, repo, "after-dst-end", source, timestamp=second_0230),
        "summer": create(runner, repo, "summer", source, timestamp=summer),
    }
    expected = {
        "before-dst-end": datetime(2024, 10, 27, 0, 30, tzinfo=UTC),
        "after-dst-end": datetime(2024, 10, 27, 1, 30, tzinfo=UTC),
        "summer": datetime(2024, 7, 14, 21, 59, 59, tzinfo=UTC),
    }
    for name, stats in made.items():
        assert stats.archive.time == expected[name], name
    listed = {a.name: a.time for a in archives(runner, repo)}
    assert listed == expected
    # Through UTC: Python never finds an ambiguous local time (02:30, fold 0 or 1)
    # equal to a datetime of another zone (PEP 495), even at the same instant.
    assert listed["before-dst-end"] == first_0230.astimezone(UTC)
    assert listed["after-dst-end"] == second_0230.astimezone(UTC)
    assert listed["summer"] == summer
    assert all(t.tzinfo is UTC for t in listed.values())


def test_warnings_do_not_raise(tmp_path: Path, runner: BorgRunner, repo: Path) -> None:
    source = make_source(tmp_path)
    args = argv.create(
        str(repo),
        "with-a-missing-path",
        [str(source), str(tmp_path / "absent")],
        compression="lz4",
        checkpoint_interval=1800,
    )
    result = asyncio.run(runner.run(args))
    assert result.rc == 1 or 100 <= result.rc <= 127
    assert any("absent" in w.message for w in result.warnings)
    assert parse.create(result.json()).nfiles == 3


def test_wrong_passphrase(borg_env: BorgEnvironment, repo: Path) -> None:
    wrong = make_runner(borg_env, lambda: b"not the passphrase")
    with pytest.raises(BorgWrongPassphrase) as caught:
        asyncio.run(wrong.run(argv.list_archives(str(repo))))
    assert caught.value.rc == 52
    assert caught.value.msgid == "PassphraseWrong"
    assert "incorrect" in caught.value.message


def test_missing_repository(tmp_path: Path, runner: BorgRunner) -> None:
    absent = tmp_path / "absent"
    with pytest.raises(BorgRepositoryMissing) as caught:
        asyncio.run(runner.run(argv.list_archives(str(absent))))
    assert caught.value.rc == 13
    assert str(absent) in caught.value.message
    with pytest.raises(BorgRepositoryMissing):
        read_repository_id(absent)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BorgRepositoryMissing) as caught:
        asyncio.run(runner.run(argv.list_archives(str(empty))))
    assert caught.value.rc == 15


def test_existing_repository_and_archives(tmp_path: Path, runner: BorgRunner, repo: Path) -> None:
    with pytest.raises(BorgRepositoryExists) as caught:
        asyncio.run(runner.run(argv.init(str(repo), encryption=ENCRYPTION)))
    assert caught.value.rc == 10
    source = make_source(tmp_path)
    create(runner, repo, "once", source)
    with pytest.raises(BorgArchiveExists):
        create(runner, repo, "once", source)
    with pytest.raises(BorgArchiveMissing):
        asyncio.run(runner.run(argv.extract(str(repo), "never"), cwd=tmp_path))


def test_lock_held_by_another_borg(
    borg_env: BorgEnvironment, runner: BorgRunner, repo: Path
) -> None:
    holder = subprocess.Popen(
        [
            borg_env.binary,
            "with-lock",
            str(repo),
            sys.executable,
            "-c",
            "import sys; print('locked', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=borg_env.build(),
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline() == b"locked\n"  # returns once the lock is held
        began = time.monotonic()
        with pytest.raises(BorgLockTimeout) as caught:
            asyncio.run(runner.run(argv.list_archives(str(repo))))
        assert time.monotonic() - began < 20
        assert caught.value.rc == 73
        assert "borg break-lock" in caught.value.hint
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0


def _borg_children() -> list[int]:
    """Our direct children (zombies included) that are borg."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"borg" in cmdline:
            found.append(int(entry.name))
    return found


def test_passphrase_is_not_in_borgs_environment_or_command_line(
    tmp_path: Path, runner: BorgRunner, repo: Path, passphrase_file: Path
) -> None:
    passphrase = passphrase_file.read_bytes().strip()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    async def scenario() -> None:
        # --read-special: borg reads the FIFO as a file, and waits there for data,
        # after it has opened the repository with its key.
        args = ("create", "--json", "--read-special", f"{repo}::fifo", str(fifo))
        task = asyncio.create_task(runner.run(args))
        deadline = time.monotonic() + 60
        while True:
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
            if task.done():
                await task
                pytest.fail("borg ended before reading the FIFO")
            assert time.monotonic() < deadline, "borg never opened the FIFO"
            await asyncio.sleep(0.02)
        try:
            pids = _borg_children()
            assert len(pids) == 1
            environ = Path(f"/proc/{pids[0]}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pids[0]}/cmdline").read_bytes()
            assert not any(passphrase in item for item in environ)
            assert passphrase not in cmdline
            assert not any(item.startswith(b"BORG_PASSPHRASE=") for item in environ)
            fd_vars = [item for item in environ if item.startswith(b"BORG_PASSPHRASE_FD=")]
            assert len(fd_vars) == 1
            # borg has read and closed the pipe: nothing of it is left open.
            fd = fd_vars[0].split(b"=", 1)[1].decode()
            assert not Path(f"/proc/{pids[0]}/fd/{fd}").exists()
            os.write(writer, b"content of the fifo\n")
        finally:
            os.close(writer)
        result = await task
        assert parse.create(result.json()).original_size == len(b"content of the fifo\n")

    asyncio.run(scenario())


def test_cancelled_create_leaves_a_checkpoint(
    tmp_path: Path, borg_env: BorgEnvironment, passphrase_file: Path, repo: Path
) -> None:
    source = tmp_path / "big"
    source.mkdir()
    for index in range(64):  # 256 MiB of incompressible data: seconds of borg work
        (source / f"image-{index:02}.bin").write_bytes(os.urandom(4 << 20))
    stop_timeout = 60.0
    runner = make_runner(borg_env, passphrase_file.read_bytes, stop_timeout=stop_timeout)
    # A checkpoint interval longer than the test: the checkpoint found is the one
    # borg writes on the SIGINT that cancellation sends.
    args = argv.create(
        str(repo), "cabinet-big", [str(source)], compression="zstd,3", checkpoint_interval=3600
    )

    async def scenario() -> float:
        reading = asyncio.Event()

        def on_progress(progress: Progress) -> None:
            if progress.original_size > 0:
                reading.set()

        task = asyncio.create_task(runner.run(args, on_progress=on_progress))
        await asyncio.wait_for(reading.wait(), timeout=60)
        began = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - began

    took = asyncio.run(scenario())
    assert took < stop_timeout, "borg did not stop on SIGINT"
    assert _borg_children() == []
    names = [a.name for a in archives(make_runner(borg_env, passphrase_file.read_bytes), repo)]
    assert names == ["cabinet-big.checkpoint"]
