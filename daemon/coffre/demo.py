"""``make run``: the daemon on a demo practice, out of the box.

Creates (once) a sample practice share, a passphrase and a configuration
with a local target under a temporary directory, starts ``coffre daemon`` in
the foreground, creates the repository, makes a first backup, and says what
to try next. Ctrl-C stops the daemon.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEMO_ROOT = Path(os.environ.get("COFFRE_DEMO_DIR", Path(tempfile.gettempdir()) / "coffre-demo"))

SAMPLE_FILES = {
    "agenda/rendez-vous-2026.db": "RDV;2026-11-30 09:00;M. Martin;consultation\n" * 200,
    "facturation/feuilles-de-soins-novembre.csv": "date;acte;montant\n2026-11-02;AMK 8;17.20\n"
    * 100,
    "dossiers/dupont-jeanne/bilan-kine.txt": "Bilan initial: lombalgie chronique.\n" * 50,
    "dossiers/durand-paul/ordonnance.txt": "Ordonnance: 10 séances de rééducation.\n" * 20,
    "logiciel/config.ini": "[cabinet]\nnom=Cabinet de démonstration\n",
}


def write_demo(root: Path) -> Path:
    """Create the demo share, passphrase and configuration under ``root``; returns the config."""
    share, run = root / "partage", root / "run"
    for relative, content in SAMPLE_FILES.items():
        path = share / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(content, encoding="utf-8")
    passphrase = root / "passphrase"
    if not passphrase.exists():
        passphrase.write_text(os.urandom(24).hex() + "\n", encoding="ascii")
    passphrase.chmod(0o600)
    config = root / "coffre.toml"
    config.write_text(
        f"""# coffre demo configuration (written by `make run`)
[source]
paths = ["{share}"]
exclude = ["*.tmp"]

[retention]
prefix = "demo"

[encryption]
passphrase_file = "{passphrase}"

[quiescence]
# The demo's share is not on btrfs: backups read it live, after a short quiet wait.
max_wait_seconds = 20
quiet_seconds = 5

[paths]
state = "{root / "state"}"
cache = "{root / "cache"}"
runtime = "{run}"

[[target]]
name = "local"
kind = "local"
path = "{root / "repositories" / "local"}"
""",
        encoding="utf-8",
    )
    return config


def _coffre(config: Path, *args: str) -> int:
    return subprocess.call([sys.executable, "-m", "coffre.cli", "--config", str(config), *args])


def main() -> int:
    root = DEMO_ROOT
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = write_demo(root)
    print(f"demo practice in {root}: share {root / 'partage'}, configuration {config}")
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coffre.cli",
            "--config",
            str(config),
            "daemon",
            "--log-target",
            "stderr",
        ]
    )
    socket = root / "run" / "control.sock"
    deadline = time.monotonic() + 30
    while not socket.exists():
        if daemon.poll() is not None or time.monotonic() > deadline:
            print("the daemon did not start; see the messages above", file=sys.stderr)
            daemon.kill()
            return 1
        time.sleep(0.1)  # polling a child's socket, not waiting for a test condition
    try:
        if _coffre(config, "target", "init", "local") != 0:
            return 1
        if _coffre(config, "backup", "--wait") != 0:
            return 1
        if os.environ.get("COFFRE_DEMO_ONCE"):
            # Used by the test of `make run`: stop once the first backup is made.
            daemon.send_signal(signal.SIGTERM)
            return daemon.wait()
        cli = f"{sys.executable} -m coffre.cli --config {config}"
        print(
            "\nThe daemon runs in the foreground (Ctrl-C stops it). Try, in another terminal:\n"
            f"  COFFRE_CONFIG={config} .venv/bin/coffre status\n"
            f"  COFFRE_CONFIG={config} .venv/bin/coffre archives\n"
            f"  COFFRE_CONFIG={config} .venv/bin/coffre backup --wait\n"
            f"  COFFRE_CONFIG={config} .venv/bin/coffre prune --dry-run\n"
            f"(or: {cli} status)\n"
        )
        return daemon.wait()
    except KeyboardInterrupt:
        daemon.send_signal(signal.SIGTERM)
        return daemon.wait()
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait()


if __name__ == "__main__":
    sys.exit(main())
