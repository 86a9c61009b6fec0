"""consistency.share_layout: what `coffre share setup` decides to do to one source path."""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

import pytest

from coffre.consistency.layout import versions_folder, views_folder
from coffre.consistency.share_layout import (
    Action,
    Found,
    ShareFacts,
    plan_share,
    refuse_conversion_while_served,
    smb_connections,
)
from coffre.core.errors import SnapshotError

SHARE = PurePosixPath("/srv/coffre/partage")
FRESH = ShareFacts(
    path=SHARE,
    parent_found=Found.FOLDER,
    on_btrfs=True,
    same_filesystem=True,
    share=Found.MISSING,
    versions_root=Found.MISSING,
    versions=Found.MISSING,
    views=Found.MISSING,
)


def facts(**changes: object) -> ShareFacts:
    return dataclasses.replace(FRESH, **changes)  # type: ignore[arg-type]


def test_the_layout_lies_in_the_shares_parent() -> None:
    assert versions_folder(SHARE) == PurePosixPath("/srv/coffre/.coffre-versions/partage")
    assert views_folder(SHARE) == PurePosixPath("/srv/coffre/.coffre-versions/.vues")


def test_a_missing_share_is_created_mode_2770_then_the_three_folders() -> None:
    plan = plan_share(FRESH, convert=False)
    assert plan.warning is None
    assert [(s.action, str(s.path), s.mode) for s in plan.steps] == [
        (Action.CREATE_SUBVOLUME, "/srv/coffre/partage", 0o2770),
        (Action.MAKE_FOLDER, "/srv/coffre/.coffre-versions", 0o755),
        (Action.MAKE_FOLDER, "/srv/coffre/.coffre-versions/partage", 0o755),
        (Action.MAKE_FOLDER, "/srv/coffre/.coffre-versions/.vues", 0o700),
    ]


def test_an_existing_subvolume_and_folders_are_kept_their_modes_set() -> None:
    plan = plan_share(
        facts(
            share=Found.SUBVOLUME,
            versions_root=Found.FOLDER,
            versions=Found.EMPTY_FOLDER,
            views=Found.FOLDER,
        ),
        convert=False,
    )
    assert [s.action for s in plan.steps] == [Action.KEEP_SUBVOLUME] + [Action.FIX_FOLDER] * 3


def test_an_empty_folder_is_replaced() -> None:
    assert plan_share(facts(share=Found.EMPTY_FOLDER), convert=False).steps[0].action is (
        Action.REPLACE_EMPTY
    )


def test_a_full_folder_is_refused_without_convert_and_says_how() -> None:
    with pytest.raises(SnapshotError) as raised:
        plan_share(facts(share=Found.FOLDER), convert=False)
    assert "--convert" in raised.value.hint and "smbd" in raised.value.hint


def test_a_full_folder_is_converted_with_convert() -> None:
    assert plan_share(facts(share=Found.FOLDER), convert=True).steps[0].action is Action.CONVERT


def test_a_conversion_refuses_when_its_names_are_taken() -> None:
    with pytest.raises(SnapshotError) as raised:
        plan_share(facts(share=Found.FOLDER, leftovers=("partage.avant-coffre",)), convert=True)
    assert "partage.avant-coffre" in raised.value.message


@pytest.mark.parametrize("found", [Found.LINK, Found.OTHER])
@pytest.mark.parametrize("where", ["versions_root", "versions", "views"])
def test_a_link_or_file_in_place_of_a_layout_folder_is_refused(found: Found, where: str) -> None:
    with pytest.raises(SnapshotError) as raised:
        plan_share(facts(**{where: found}), convert=False)
    assert found.value in raised.value.message


@pytest.mark.parametrize("found", [Found.LINK, Found.OTHER])
def test_a_link_or_file_in_place_of_the_share_is_refused(found: Found) -> None:
    with pytest.raises(SnapshotError):
        plan_share(facts(share=found), convert=True)


@pytest.mark.parametrize("found", [Found.MISSING, Found.LINK])
def test_a_missing_or_linked_parent_is_refused(found: Found) -> None:
    with pytest.raises(SnapshotError):
        plan_share(facts(parent_found=found), convert=False)


def test_a_parent_on_another_filesystem_is_refused() -> None:
    with pytest.raises(SnapshotError) as raised:
        plan_share(facts(share=Found.SUBVOLUME, same_filesystem=False), convert=False)
    assert "parent" in raised.value.message


def test_off_btrfs_nothing_is_done_and_the_loss_is_said() -> None:
    plan = plan_share(facts(share=Found.FOLDER, on_btrfs=False), convert=False)
    assert plan.steps == ()
    assert plan.warning is not None
    assert "torn" in plan.warning and "Previous Versions" in plan.warning


def test_a_control_character_in_the_path_is_escaped_in_what_is_said() -> None:
    odd = PurePosixPath("/srv/coffre/par\x1b[2Jtage")
    plan = plan_share(facts(path=odd), convert=False)
    assert "\x1b" not in str(plan.steps[0])
    with pytest.raises(SnapshotError) as raised:
        plan_share(facts(path=odd, share=Found.FOLDER), convert=False)
    assert "\x1b" not in raised.value.message


SMBSTATUS_IDLE = '{"timestamp": "2026-12-06T10:15:35+0000", "sessions": {}, "tcons": {}}'
SMBSTATUS_SERVING = (
    '{"sessions": {"3": {}}, "tcons": {"1": {"service": "cabinet"}, "2": {"service": "IPC$"}}}'
)


def test_smbstatus_json_is_read_as_its_count_of_tree_connects() -> None:
    assert smb_connections(SMBSTATUS_IDLE) == 0
    assert smb_connections(SMBSTATUS_SERVING) == 2
    with pytest.raises(ValueError):
        smb_connections("/run/samba/locking.tdb not initialised")


def test_a_conversion_is_refused_while_smbd_serves_workstations() -> None:
    plans = [plan_share(facts(share=Found.FOLDER), convert=True)]
    with pytest.raises(SnapshotError) as raised:
        refuse_conversion_while_served(plans, 2)
    assert "systemctl stop smbd" in raised.value.hint
    refuse_conversion_while_served(plans, 0)
    refuse_conversion_while_served(plans, None)  # unknown: the CLI says to stop smbd


def test_a_setup_without_conversion_is_not_refused_for_smbd() -> None:
    refuse_conversion_while_served([plan_share(FRESH, convert=True)], 5)
