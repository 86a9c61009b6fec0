"""storage.btrfs's pure part: entry names, ioctl numbers and struct layouts (linux/btrfs.h)."""

from __future__ import annotations

import errno
import struct

import pytest

from coffre.core.errors import SnapshotError, SnapshotNoSpace
from coffre.storage import btrfs


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/", "a\0b", "é" * 128, "x" * 256])
def test_a_name_that_is_not_one_entry_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        btrfs.check_name(name)


@pytest.mark.parametrize("name", ["@GMT-2026.01.02-03.04.05", "partage", "x" * 255, "..a", "a b"])
def test_a_single_entry_name_is_accepted_as_its_bytes(name: str) -> None:
    assert btrfs.check_name(name) == name.encode()


def test_the_request_numbers_are_those_of_linux_btrfs_h() -> None:
    # Values as the kernel's headers compute them (_IOW/_IOWR with 4096-byte args).
    assert btrfs.IOC_SYNC == 0x9408
    assert btrfs.IOC_SUBVOL_CREATE == 0x5000940E
    assert btrfs.IOC_SNAP_DESTROY == 0x5000940F
    assert btrfs.IOC_TREE_SEARCH == 0xD0009411
    assert btrfs.IOC_FS_INFO == 0x8400941F
    assert btrfs.IOC_SNAP_CREATE_V2 == 0x50009417
    assert btrfs.IOC_SNAP_DESTROY_V2 == 0x5000943F


def test_vol_args_v2_puts_fd_flags_and_name_where_the_kernel_reads_them() -> None:
    args = btrfs.pack_vol_args_v2(7, "@GMT-2026.01.02-03.04.05", btrfs.SUBVOL_RDONLY)
    assert len(args) == 4096
    assert struct.unpack_from("=qQQ", args) == (7, 0, 2)
    assert args[24:56] == bytes(32)  # size, qgroup_inherit, unused: zero
    assert args[56:80] == b"@GMT-2026.01.02-03.04.05"
    assert args[80:] == bytes(4096 - 80)


def test_vol_args_holds_the_name_after_the_fd() -> None:
    args = btrfs.pack_vol_args("partage")
    assert len(args) == 4096
    assert args[8:16] == b"partage\0"


def test_packing_refuses_a_bad_name_before_any_call() -> None:
    with pytest.raises(ValueError):
        btrfs.pack_vol_args_v2(3, "../partage")
    with pytest.raises(ValueError):
        btrfs.pack_vol_args("a/b")


def test_a_search_key_asks_for_one_objectid_and_type_over_every_offset() -> None:
    args = btrfs.pack_search(1, 2**64 - 5, 48, 100)
    assert len(args) == 4096
    key = struct.unpack_from("=QQQQQQQIIII", args)
    assert key == (1, 2**64 - 5, 2**64 - 5, 0, 2**64 - 1, 0, 2**64 - 1, 48, 48, 100, 0)


def test_the_items_a_search_wrote_back_are_read_with_their_keys() -> None:
    args = btrfs.pack_search(1, 2**64 - 5, 48, 100)
    struct.pack_into("=I", args, 64, 2)  # nr_items: two found
    struct.pack_into("=QQQII", args, 104, 9, 2**64 - 5, 257, 48, 0)
    struct.pack_into("=QQQII", args, 136, 9, 2**64 - 5, 300, 48, 4)  # 4 bytes of item data
    struct.pack_into("=QQQII", args, 172, 0, 0, 0, 0, 0)
    assert btrfs.parse_search(bytes(args)) == [(2**64 - 5, 48, 257), (2**64 - 5, 48, 300)]


def test_no_item_found_reads_as_none() -> None:
    args = btrfs.pack_search(1, 5, 48, 100)
    struct.pack_into("=I", args, 64, 0)
    assert btrfs.parse_search(bytes(args)) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_filesystem_is_snapshot_no_space(code: int) -> None:
    error = btrfs._snapshot_error(OSError(code, "full"), "snapshot 'x'")
    assert isinstance(error, SnapshotNoSpace)
    assert "snapshot 'x'" in error.message and error.hint


def test_a_folder_not_on_btrfs_says_to_run_share_setup() -> None:
    error = btrfs._snapshot_error(OSError(errno.ENOTTY, "no"), "snapshot 'x'")
    assert type(error) is SnapshotError
    assert "coffre share setup" in error.hint
