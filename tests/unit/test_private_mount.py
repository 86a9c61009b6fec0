"""``--to`` a folder only the service sees (PrivateTmp=) is found from mountinfo."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from coffre.support.desk import private_mount

#: The daemon's mounts under the unit: /tmp and /var/tmp are systemd's private folders.
UNDER_THE_UNIT = """\
67 45 254:0 / / ro,relatime - ext4 /dev/vda rw
80 67 254:0 /tmp/systemd-private-4f2e-coffre.service-Ab12/tmp /tmp rw - ext4 /dev/vda rw
81 67 254:0 /var/tmp/systemd-private-4f2e-coffre.service-Cd34/tmp /var/tmp rw - ext4 /dev/vda rw
82 67 254:0 /srv/coffre /srv/coffre rw - ext4 /dev/vda rw
83 80 0:50 / /tmp/some\\040mount rw - tmpfs tmpfs rw
"""
BY_HAND = """\
67 45 254:0 / / rw,relatime - ext4 /dev/vda rw
"""


def test_tmp_and_var_tmp_are_private_under_the_unit(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(UNDER_THE_UNIT, encoding="utf-8")
    found = {
        to: private_mount(PurePosixPath(to), str(info))
        for to in ("/tmp/ici", "/var/tmp", "/srv/coffre/partage/x", "/srv/../tmp/x", "/root")
    }
    assert found == {
        "/tmp/ici": "/tmp",
        "/var/tmp": "/var/tmp",
        "/srv/coffre/partage/x": None,
        "/srv/../tmp/x": "/tmp",
        "/root": None,
    }
    # A mount of its own under /tmp (escaped space) is not systemd's private folder.
    assert private_mount(PurePosixPath("/tmp/some mount/a"), str(info)) is None


def test_nothing_is_private_outside_systemd(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(BY_HAND, encoding="utf-8")
    assert private_mount(PurePosixPath("/tmp/ici"), str(info)) is None
    assert private_mount(PurePosixPath("/tmp/ici"), str(tmp_path / "absent")) is None
