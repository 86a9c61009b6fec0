"""Samba's open files as smbstatus lists them (consistency.smb_opens): who writes where."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coffre.consistency.smb_opens import SmbOpen, parse, writers_under

#: Captured verbatim on Debian 12 (Samba 4.17.12): ``smbstatus --locks --json`` while an
#: smbclient session held "a é.txt" open with its ``open`` command (read and write).
HELD_FOR_WRITING = (
    '{"timestamp": "2026-12-06T10:06:13.313193+0000", "version": "4.17.12-Debian", '
    '"smb_conf": "/tmp/smbexp/smb.conf", "open_files": {"/tmp/smbexp/share/a é.txt": '
    '{"service_path": "/tmp/smbexp/share", "filename": "a é.txt", "fileid": {"devid": 65024, '
    '"inode": 2719878, "extid": 0}, "num_pending_deletes": 0, "opens": {"16302/3": '
    '{"server_id": {"pid": "16302", "task_id": "0", "vnn": "4294967295", '
    '"unique_id": "6030758250988657277"}, "uid": 999, "share_file_id": "3", "sharemode": '
    '{"hex": "0x00000003", "READ": true, "WRITE": true, "DELETE": false, "text": "RW"}, '
    '"access_mask": {"hex": "0x00000003", "READ_DATA": true, "WRITE_DATA": true, '
    '"APPEND_DATA": false, "READ_EA": false, "WRITE_EA": false, "EXECUTE": false, '
    '"READ_ATTRIBUTES": false, "WRITE_ATTRIBUTES": false, "DELETE_CHILD": false, '
    '"DELETE": false, "READ_CONTROL": false, "WRITE_DAC": false, "SYNCHRONIZE": false, '
    '"ACCESS_SYSTEM_SECURITY": false, "text": "RW"}, "caching": {"READ": false, '
    '"WRITE": false, "HANDLE": false, "hex": "0x00000000", "text": ""}, "oplock": {}, '
    '"lease": {}, "opened_at": "2026-12-06T10:06:11.817196+00:00"}}}}}'
)
#: Captured verbatim: the same, on a file the user may only read (smbclient's ``open``
#: falls back to reading): access mask 0x1, READ_DATA only.
HELD_FOR_READING = (
    '{"timestamp": "2026-12-06T10:06:24.408749+0000", "version": "4.17.12-Debian", '
    '"smb_conf": "/tmp/smbexp/smb.conf", "open_files": {"/tmp/smbexp/share/lu.txt": '
    '{"service_path": "/tmp/smbexp/share", "filename": "lu.txt", "fileid": {"devid": 65024, '
    '"inode": 2719895, "extid": 0}, "num_pending_deletes": 0, "opens": {"16385/5": '
    '{"server_id": {"pid": "16385", "task_id": "0", "vnn": "4294967295", '
    '"unique_id": "878485887160215804"}, "uid": 999, "share_file_id": "5", "sharemode": '
    '{"hex": "0x00000003", "READ": true, "WRITE": true, "DELETE": false, "text": "RW"}, '
    '"access_mask": {"hex": "0x00000001", "READ_DATA": true, "WRITE_DATA": false, '
    '"APPEND_DATA": false, "READ_EA": false, "WRITE_EA": false, "EXECUTE": false, '
    '"READ_ATTRIBUTES": false, "WRITE_ATTRIBUTES": false, "DELETE_CHILD": false, '
    '"DELETE": false, "READ_CONTROL": false, "WRITE_DAC": false, "SYNCHRONIZE": false, '
    '"ACCESS_SYSTEM_SECURITY": false, "text": "R"}, "caching": {"READ": false, '
    '"WRITE": false, "HANDLE": false, "hex": "0x00000000", "text": ""}, "oplock": {}, '
    '"lease": {}, "opened_at": "2026-12-06T10:06:22.879030+00:00"}}}}}'
)
#: Captured verbatim: smbd running, nothing open.
NOTHING_OPEN = (
    '{"timestamp": "2026-12-06T10:04:06.599244+0000", "version": "4.17.12-Debian", '
    '"smb_conf": "/tmp/smbexp/smb.conf", "open_files": {}}'
)
#: Captured verbatim: smbd never ran with this lock directory (stderr: "locking.tdb not
#: initialised"), or the configuration could not be loaded (stderr: "Can't load").
NO_LOCKING_DATABASE = (
    '{"timestamp": "2026-12-06T10:04:02.822419+0000", "version": "4.17.12-Debian", '
    '"smb_conf": "/tmp/smbexp/smb.conf"}'
)


def with_mask(sample: str, mask: int, *, filename: str | None = None) -> str:
    """``sample`` (one file, one open) with its open's access mask (and file name) replaced."""
    document = json.loads(sample)
    [entry] = document["open_files"].values()
    [detail] = entry["opens"].values()
    detail["access_mask"]["hex"] = f"0x{mask:08x}"
    if filename is not None:
        entry["filename"] = filename
    return json.dumps(document)


def test_a_file_held_open_for_writing_is_one_writing_open_at_its_full_path() -> None:
    assert parse(HELD_FOR_WRITING) == (
        SmbOpen(
            path="/tmp/smbexp/share/a é.txt",
            writing=True,
            opened_at=datetime(2026, 12, 6, 10, 6, 11, 817196, tzinfo=UTC),
        ),
    )


def test_a_file_held_open_for_reading_is_an_open_that_does_not_write() -> None:
    [found] = parse(HELD_FOR_READING)
    assert found.path == "/tmp/smbexp/share/lu.txt"
    assert found.writing is False


def test_nothing_open_is_no_opens() -> None:
    assert parse(NOTHING_OPEN) == ()


@pytest.mark.parametrize(
    ("mask", "writing"),
    [
        (0x00000002, True),  # FILE_WRITE_DATA: rewrite, truncate
        (0x00000004, True),  # FILE_APPEND_DATA
        (0x00010000, True),  # DELETE: delete, or rename over (Word's save)
        (0x40000000, True),  # GENERIC_WRITE
        (0x10000000, True),  # GENERIC_ALL
        (0x00120089, False),  # FILE_GENERIC_READ: what a reader asks for
        (0x00000100, False),  # WRITE_ATTRIBUTES: timestamps only
        (0x00000010, False),  # WRITE_EA
        (0x000C0000, False),  # WRITE_DAC | WRITE_OWNER: permissions only
        (0x00100080, False),  # SYNCHRONIZE | READ_ATTRIBUTES: Explorer looking
    ],
)
def test_an_open_writes_when_its_mask_may_change_or_replace_the_content(
    mask: int, writing: bool
) -> None:
    [found] = parse(with_mask(HELD_FOR_READING, mask))
    assert found.writing is writing


def test_every_open_of_a_file_counts_each_with_its_own_mask() -> None:
    document = json.loads(HELD_FOR_WRITING)
    [entry] = document["open_files"].values()
    [detail] = entry["opens"].values()
    reader = json.loads(json.dumps(detail))
    reader["access_mask"]["hex"] = "0x00000001"
    entry["opens"]["16303/4"] = reader
    opens = parse(json.dumps(document))
    assert sorted(o.writing for o in opens) == [False, True]
    assert {o.path for o in opens} == {"/tmp/smbexp/share/a é.txt"}


def test_a_file_in_a_subfolder_is_joined_to_the_share_and_normalised() -> None:
    [found] = parse(with_mask(HELD_FOR_WRITING, 2, filename="dossier/./lettre.docx"))
    assert found.path == "/tmp/smbexp/share/dossier/lettre.docx"
    # A leading slash in the name does not make the join drop the share's folder.
    [rooted] = parse(with_mask(HELD_FOR_WRITING, 2, filename="/lettre.docx"))
    assert rooted.path == "/tmp/smbexp/share/lettre.docx"


def test_an_open_without_its_time_has_none() -> None:
    document = json.loads(HELD_FOR_WRITING)
    [entry] = document["open_files"].values()
    [detail] = entry["opens"].values()
    del detail["opened_at"]
    [found] = parse(json.dumps(document))
    assert found.opened_at is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "not JSON"),
        ("Locked files:\nPid  User(ID)", "not JSON"),
        ("[]", "not a JSON object"),
        (NO_LOCKING_DATABASE, "no open_files"),
        ('{"open_files": []}', "open_files in smbstatus's output is not a JSON object"),
        ('{"open_files": {"/s/a": {"filename": "a", "opens": {}}}}', "service_path"),
        ('{"open_files": {"/s/a": {"service_path": "/s", "filename": "a"}}}', "opens"),
        (with_mask(HELD_FOR_WRITING, 2).replace('"0x00000002"', '"RW"'), "hexadecimal"),
        (HELD_FOR_WRITING.replace('"access_mask"', '"mask"'), "access_mask"),
        (HELD_FOR_WRITING.replace("2026-12-06T10:06:11", "hier soir"), "ISO 8601"),
    ],
)
def test_output_it_cannot_read_raises_value_error_naming_what_is_wrong(
    text: str, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        parse(text)


def test_malformed_entries_never_quote_a_file_name() -> None:
    broken = HELD_FOR_WRITING.replace('"hex": "0x00000003", "READ_DATA"', '"hex": "zz", "R"')
    with pytest.raises(ValueError) as raised:
        parse(broken)
    assert "a é.txt" not in str(raised.value) and "smbexp" not in str(raised.value)


def opens(*paths: str, writing: bool = True) -> list[SmbOpen]:
    return [SmbOpen(path, writing, None) for path in paths]


def test_writers_are_counted_under_a_root_and_at_the_root_itself() -> None:
    found = opens("/srv/coffre/partage/a.txt", "/srv/coffre/partage/d/b.txt", "/srv/coffre/partage")
    assert writers_under(found, [Path("/srv/coffre/partage")]) == 3


def test_a_sibling_whose_name_starts_like_the_root_is_not_under_it() -> None:
    found = opens("/srv/ab/a.txt", "/srv/a.txt", "/srv/a")
    assert writers_under(found, [Path("/srv/a")]) == 1


def test_readers_are_not_writers() -> None:
    found = opens("/srv/a/r.txt", writing=False) + opens("/srv/a/w.txt")
    assert writers_under(found, [Path("/srv/a")]) == 1


def test_each_open_counts_once_even_under_two_overlapping_roots() -> None:
    found = opens("/srv/a/b/c.txt", "/srv/z/d.txt")
    assert writers_under(found, [Path("/srv/a"), Path("/srv/a/b"), Path("/srv/z")]) == 2


def test_roots_are_compared_normalised_and_no_roots_count_nothing() -> None:
    found = opens("/srv/a/c.txt")
    assert writers_under(found, [Path("/srv/a/")]) == 1
    assert writers_under(found, [Path("/srv/x/../a")]) == 1
    assert writers_under(found, []) == 0
