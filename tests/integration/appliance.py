"""The appliance as it ships: systemd 252 booted as PID 1 in a throwaway namespace.

This machine's root filesystem is the lower layer of an overlay; the upper and
work dirs are in a test's temporary directory, so whatever the box does (dpkg,
the daemon's state, the share) lands there and nowhere else. Inside
``unshare --pid --fork --mount --uts --ipc`` the overlay gets its own proc,
sys, dev, run and tmp, becomes the namespace's root (``pivot_root``: with a
mere ``chroot`` the namespace's root would stay the host's, and ``nsenter
--mount``, as ``coffre browse`` runs it, would land there), and
``/lib/systemd/systemd`` is exec'ed with ``container=other``. The network
namespace is the host's: udev events (the host's udevd re-broadcasts them)
reach the daemon, and the loopback sshd and the metrics endpoint are the
host's 127.0.0.1.

Units that would fight the host are masked before boot: the container's own
udevd and udev trigger (the host's udevd runs; a second one would race it, a
trigger would replay every device of the host), gettys, logind, sysctl,
binfmt, modules, time sync, and every unit this machine itself enables
(sshd, smbd, Prometheus, timers, its init scripts...): they would bind the
host's ports or touch its kernel settings.

Cleanup never depends on the test passing: :func:`booted` kills the
container's systemd by PID (SIGKILL to a PID namespace's init ends every
process in it; unshare also runs with ``--kill-child``), waits for unshare,
removes the cgroups made for it and the overlay's upper dir. The overlay and
every mount made inside live only in the container's mount namespace
(propagation private), so they go with it: nothing is mounted on the host.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from tests.integration.harness import wait_for
from tests.parts import binary, missing

SYSTEMD = Path("/lib/systemd/systemd")
PR_SET_PDEATHSIG = 1
#: The PATH of commands run in the box.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Units of Debian 12's systemd that would fight the host or are pointless here.
MASKED = (
    # udev: the host's udevd is the one; the trigger would replay the host's devices.
    "systemd-udevd.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    # Terminals and seats of the host.
    "getty.target",
    "getty@.service",
    "serial-getty@.service",
    "console-getty.service",
    "container-getty@.service",
    "systemd-logind.service",
    # The host kernel's settings, modules, clock, entropy seed, /dev nodes.
    "systemd-sysctl.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "systemd-modules-load.service",
    "systemd-pstore.service",
    "systemd-timesyncd.service",
    "systemd-random-seed.service",
    "systemd-repart.service",
    "systemd-firstboot.service",
    "systemd-tmpfiles-setup-dev.service",
    "kmod-static-nodes.service",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "dev-hugepages.mount",
    "dev-mqueue.mount",
)

#: Run in the new namespaces: mount the overlay and the API filesystems, pivot_root,
#: exec systemd. $1 the overlay's mount point, $2 upper, $3 work.
_BOOT = r"""
set -eu
root=$1
mount -t overlay overlay -o "lowerdir=/,upperdir=$2,workdir=$3" "$root"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
# The host udevd's database: pyudev reads it to enumerate the disks plugged in.
if [ -d /run/udev ]; then
    mkdir -p "$root/run/udev"
    mount --bind /run/udev "$root/run/udev"
    mount -o remount,bind,ro "$root/run/udev"
fi
# pivot_root rather than chroot: the overlay must be the root of the mount
# namespace, as on a box; `nsenter --mount` (coffre browse's shell) lands there.
cd "$root"
mkdir -p .host
pivot_root . .host
umount -l /.host
rmdir /.host
exec /usr/bin/env -i container=other PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd
"""


def _cgroup_roots() -> list[Path]:
    """The hierarchies systemd keeps track of its processes in: cgroup2, name=systemd."""
    roots = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            fields = line.split()
            after = fields[fields.index("-") + 1 :]
            fstype, options = after[0], after[2] if len(after) > 2 else ""
            if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options):
                roots.append(Path(fields[4]))
    return roots


def _remove_cgroup(cgroup: Path) -> bool:
    """Remove ``cgroup`` and its children (each empty of processes); whether it is gone."""
    for directory in sorted(cgroup.rglob("*/"), key=lambda p: -len(p.parts)):
        if directory.is_dir():
            with contextlib.suppress(OSError):
                directory.rmdir()
    with contextlib.suppress(OSError):
        cgroup.rmdir()
    return not cgroup.exists()


def _remove_stale_cgroups(roots: list[Path]) -> None:
    """The cgroups of boxes whose test process died without cleaning up (SIGKILL)."""
    for root in roots:
        for cgroup in root.glob("coffre-appliance-*"):
            owner = cgroup.name.split("-")[2]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                _remove_cgroup(cgroup)


class Appliance:
    """A booted box: run commands in it, read its files, drive its systemd."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.upper = base / "upper"
        self.work = base / "work"
        self.mountpoint = base / "root"
        self.log = base / "boot.log"
        self.cgroups: list[Path] = []
        self.unshare: subprocess.Popen[bytes] | None = None
        self.pid = 0

    # --- life -----------------------------------------------------------------

    def boot(self, timeout: float = 120) -> None:
        if not SYSTEMD.exists():
            missing(f"systemd ({SYSTEMD})")
        for directory in (self.upper, self.work, self.mountpoint):
            directory.mkdir(parents=True)
        etc = self.upper / "etc"
        (etc / "systemd" / "system").mkdir(parents=True)
        (etc / "machine-id").write_text(secrets.token_hex(16) + "\n", encoding="ascii")
        for name in self._to_mask():
            (etc / "systemd" / "system" / name).symlink_to("/dev/null")
        # A cgroup of its own in each hierarchy systemd uses: the container's
        # systemd takes the cgroup it starts in as its root.
        tag = f"coffre-appliance-{os.getpid()}-{secrets.token_hex(3)}"
        roots = _cgroup_roots()
        _remove_stale_cgroups(roots)
        self.cgroups = [root / tag for root in roots]
        for cgroup in self.cgroups:
            cgroup.mkdir()
        cgroups = [str(c / "cgroup.procs") for c in self.cgroups]
        libc = ctypes.CDLL(None, use_errno=True)

        def enter_cgroups() -> None:
            # Should the tests' process die without cleaning up (SIGKILL, a CI
            # timeout), unshare dies with it, and takes the box along (--kill-child).
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
            for procs in cgroups:
                with open(procs, "w", encoding="ascii") as out:
                    out.write("0\n")

        argv = [
            binary("unshare"),
            "--pid",
            "--fork",
            "--kill-child=SIGKILL",
            "--mount",
            "--uts",
            "--ipc",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            _BOOT,
            "boot",
            str(self.mountpoint),
            str(self.upper),
            str(self.work),
        ]
        with self.log.open("ab") as log:
            self.unshare = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=enter_cgroups,
            )
        wait_for(self._found_init, timeout=30, what="the container's systemd")
        wait_for(self._booted, timeout=timeout, what="the container's boot to end")

    def _to_mask(self) -> list[str]:
        """MASKED, and every unit this machine enables or starts from an init script."""
        names = set(MASKED)
        for wants in Path("/etc/systemd/system").glob("*.wants"):
            names.update(link.name for link in wants.iterdir())
        for link in Path("/etc/rc2.d").glob("S*"):
            names.add(link.name[3:] + ".service")
        names.discard("coffre.service")
        return sorted(names)

    def _found_init(self) -> bool:
        assert self.unshare is not None
        if self.unshare.poll() is not None:
            raise AssertionError(f"the container did not start:\n{self.boot_log()}")
        children = Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children")
        with contextlib.suppress(OSError, ValueError):
            (child,) = children.read_text().split()
            argv0 = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0]
            if argv0 == bytes(SYSTEMD):
                self.pid = int(child)
                return True
        return False

    def _booted(self) -> bool:
        state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return True
        # "offline": no answer from systemd yet (still starting).
        if state in ("maintenance", "stopping"):
            raise AssertionError(f"the container's systemd is {state}:\n{self.boot_log()}")
        return False

    def boot_log(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def shutdown(self) -> None:
        """Kill everything in the container, and remove what was made for it."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self.unshare is not None:
            if self.unshare.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.unshare.pid, signal.SIGKILL)
            self.unshare.wait(timeout=60)
        try:
            for cgroup in self.cgroups:
                # Every process is gone with the PID namespace, but the kernel may
                # take a moment to empty the cgroups.
                if cgroup.exists():
                    wait_for(partial(_remove_cgroup, cgroup), timeout=30, what=f"{cgroup} removed")
        finally:
            # The overlay and every mount of the box were in its own mount
            # namespace: gone with it. Its files are left: the upper layer.
            shutil.rmtree(self.upper, ignore_errors=True)
            shutil.rmtree(self.work, ignore_errors=True)

    # --- inside -----------------------------------------------------------------

    def path(self, inside: str | Path) -> Path:
        """``inside`` (an absolute path in the box) as seen from the host."""
        return Path(f"/proc/{self.pid}/root") / str(inside).lstrip("/")

    def command(self, *argv: str, env: dict[str, str] | None = None) -> list[str]:
        """``argv`` run in the box's namespaces, root and environment."""
        environ = {"PATH": PATH, "LANG": "C.UTF-8", **(env or {})}
        return [
            binary("nsenter"),
            f"--target={self.pid}",
            "--mount",
            "--uts",
            "--ipc",
            "--pid",
            "--root",
            "--wd",
            "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in environ.items()),
            *argv,
        ]

    def run(
        self,
        *argv: str,
        check: bool = True,
        timeout: float = 300,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*argv, env=env),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"in the box: {' '.join(argv)} exited {result.returncode}\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def coffre(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return self.run("coffre", *args, check=check, timeout=timeout)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show -p …`` of ``unit``."""
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in properties)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str = "coffre.service", since: str = "") -> str:
        args = ["journalctl", "--no-pager", "-o", "cat", "-u", unit]
        if since:
            args += ["--since", since]
        return self.run(*args, check=False).stdout


@contextlib.contextmanager
def booted(base: Path, *, timeout: float = 120) -> Iterator[Appliance]:
    """A booted box for the ``with`` block; torn down after it, whatever happens."""
    box = Appliance(base)
    try:
        box.boot(timeout=timeout)
        yield box
    finally:
        box.shutdown()


def build_deb(repo: Path, revision: int = 1) -> Path:
    """``make deb`` with ``DEB_REVISION=revision``: dist/coffre_<version>-<revision>_<arch>.deb."""
    for tool in ("make", "dpkg-deb", "dpkg-shlibdeps", "strip"):
        binary(tool)
    result = subprocess.run(
        ["make", "-C", str(repo), "--no-print-directory", "deb"],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "DEB_REVISION": str(revision)},
    )
    if result.returncode != 0:
        raise AssertionError(
            f"make deb exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.name.split("_")[1].endswith(f"-{revision}"), path
    return path
