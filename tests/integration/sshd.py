"""HDS hosts for tests: real OpenSSH ``sshd`` instances on loopback ports.

Each :class:`Host` has its own host key, its own ``authorized_keys`` (the
box's key with its forced ``borg serve --append-only`` command, and an admin
key without one, standing for the host operator's own account) and its own
repository directory. The host side runs as the test's user (root); its
borg is the project's, by absolute path, since sshd's PATH does not hold
the virtualenv.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.integration.harness import PASSPHRASE, wait_for
from tests.parts import binary, missing


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _sshd() -> str:
    for candidate in ("/usr/sbin/sshd", "/sbin/sshd"):
        if Path(candidate).exists():
            return candidate
    missing("sshd (openssh-server)")
    raise AssertionError("unreachable")


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        [binary("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren... (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


class Host:
    """One HDS host: sshd on ``127.0.0.1:port``, repositories under ``root/repos``."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root / f"host-{name}"
        self.root.mkdir(parents=True)
        self.name = name
        self.port = _free_port()
        self.host_key = self.root / "ssh_host_ed25519_key"
        self.authorized_keys = self.root / "authorized_keys"
        self.admin_key = self.root / "admin_ed25519"
        self.repo = self.root / "repos" / "coffre"
        self.repo.parent.mkdir(parents=True)
        self.log = self.root / "sshd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.box_line = ""
        _keygen(self.host_key, f"host-{name}")
        _keygen(self.admin_key, f"admin@{name}")
        self._write_authorized_keys()
        self.config = self.root / "sshd_config"
        self.config.write_text(
            f"ListenAddress 127.0.0.1:{self.port}\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "AuthenticationMethods publickey\n"
            "PermitUserEnvironment no\n"
            "MaxStartups 100\n"
            "LogLevel VERBOSE\n",
            encoding="utf-8",
        )

    # --- life ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}{self.repo}"

    def start(self) -> Host:
        """Start sshd and wait until it accepts connections."""
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [_sshd(), "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log
            )

        def accepting() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"sshd {self.name} exited:\n{self.log.read_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return True
            return False

        wait_for(accepting, timeout=20, what=f"sshd {self.name} on port {self.port}")
        return self

    def kill(self) -> None:
        """Cut the host off: sshd and every session it serves (borg serve too), at once."""
        if self.process is None:
            return
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        self.kill()

    def new_host_key(self) -> None:
        """Give the host another key (as an interceptor would show); restart it if running."""
        running = self.process is not None
        self.kill()
        for path in (self.host_key, self.host_key.with_name(self.host_key.name + ".pub")):
            path.unlink()
        _keygen(self.host_key, f"other-{self.name}")
        if running:
            self.start()

    # --- keys -----------------------------------------------------------------

    def fingerprint(self) -> str:
        """The host key's fingerprint as ``ssh-keygen -lf`` prints it."""
        out = subprocess.run(
            [binary("ssh-keygen"), "-lf", f"{self.host_key}.pub"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.split()[1]

    def authorize(self, line: str) -> None:
        """Install the box's authorized_keys line, its ``borg`` made the project's."""
        assert line.startswith('restrict,command="borg serve '), line
        self.box_line = line.replace('command="borg serve ', f'command="{binary("borg")} serve ', 1)
        self._write_authorized_keys()

    def _write_authorized_keys(self) -> None:
        admin = Path(f"{self.admin_key}.pub").read_text(encoding="ascii").strip()
        lines = [admin] + ([self.box_line] if self.box_line else [])
        self.authorized_keys.write_text("\n".join(lines) + "\n", encoding="ascii")

    # --- the operator's side ----------------------------------------------------

    def admin_env(self, base: Path) -> dict[str, str]:
        """borg's environment for the admin key (no forced command), borg base dir ``base``."""
        rsh = (
            f"ssh -F none -i {self.admin_key} -o IdentitiesOnly=yes -o BatchMode=yes "
            f"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        )
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(base),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "BORG_BASE_DIR": str(base),
            "BORG_RSH": rsh,
            "BORG_REMOTE_PATH": binary("borg"),
            "BORG_PASSPHRASE": PASSPHRASE,
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        }

    def admin_borg(
        self, base: Path, *args: str, check: bool = True, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """borg through the admin key, as the host's operator (or a restore) would run it."""
        result = subprocess.run(
            [binary("borg"), *args],
            env=self.admin_env(base),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=cwd,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"admin borg {' '.join(args)} exited {result.returncode}\n{result.stderr}"
            )
        return result

    def archives(self, base: Path) -> list[dict[str, Any]]:
        """The archives of the host's repository (checkpoints included), via the admin key."""
        listed = json.loads(
            self.admin_borg(base, "list", "--json", "--consider-checkpoints", self.url).stdout
        )
        archives: list[dict[str, Any]] = listed["archives"]
        return archives

    def transactions(self) -> list[int]:
        """The transaction IDs the append-only repository logged, oldest first."""
        path = self.repo / "transactions"
        if not path.exists():
            return []
        ids = []
        for line in path.read_text(encoding="ascii").splitlines():
            if line.startswith("transaction "):
                ids.append(int(line.split()[1].rstrip(",")))
        return ids

    def files(self) -> dict[str, tuple[int, int]]:
        """Every file of the repository directory: relative path -> (size, mtime in ns)."""
        return {
            str(p.relative_to(self.repo)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(self.repo.rglob("*"))
            if p.is_file()
        }

    def sshd_log(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def running_host(root: Path, name: str) -> Iterator[Host]:
    """Generator for fixtures: the host ``name`` (its sshd under ``root``), stopped afterwards."""
    started = Host(root, name).start()
    try:
        yield started
    finally:
        started.stop()


def stop_all(hosts: list[Host]) -> None:
    for host in hosts:
        host.stop()


def timed(action: Any) -> float:
    """Seconds ``action()`` took."""
    began = time.monotonic()
    action()
    return time.monotonic() - began
