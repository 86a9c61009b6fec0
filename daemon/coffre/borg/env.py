"""The environment borg runs in: built whole, never inherited from the daemon."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

#: Used when the daemon itself has no PATH (borg needs one to find ssh).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Ways of handing borg a passphrase that would put it in the environment or
#: run a command: coffre only ever uses the BORG_PASSPHRASE_FD pipe of the runner.
FORBIDDEN_EXTRA = frozenset(
    {"BORG_PASSPHRASE", "BORG_NEW_PASSPHRASE", "BORG_PASSCOMMAND", "BORG_PASSPHRASE_FD"}
)


@dataclass(frozen=True)
class BorgEnvironment:
    """Where borg is and where it keeps its state.

    ``base_dir`` is stable storage (config, keys, security dirs: losing the
    security dir loses borg's protection against repository replay);
    ``cache_dir`` may be wiped at the price of a slow next run. ``extra``
    adds variables (``BORG_RSH`` for offsite targets); it may not override
    what ``build`` sets, nor carry a passphrase (ValueError at construction).
    """

    binary: str
    base_dir: Path
    cache_dir: Path
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        owned = set(self._own()) | FORBIDDEN_EXTRA
        clashes = sorted(owned.intersection(self.extra))
        if clashes:
            raise ValueError(f"extra borg environment may not set {', '.join(clashes)}")

    def build(self) -> dict[str, str]:
        """The complete environment of a borg process (the runner adds BORG_PASSPHRASE_FD).

        Only PATH comes from the daemon's environment. ``TZ=UTC`` makes borg
        print archive times in UTC (it prints them in its local zone, without
        an offset); ``parse`` relies on it. The ``*_IS_OK=no`` and
        ``*_I_KNOW_WHAT_I_AM_DOING=NO`` answers make borg refuse, without
        asking, a relocated or unknown unencrypted repository, ``check
        --repair`` and the deletion of a whole repository.
        """
        env = self._own()
        env.update(self.extra)
        return env

    def _own(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH") or DEFAULT_PATH,
            "LANG": "C.UTF-8",
            "HOME": str(self.base_dir),
            "TZ": "UTC",
            "BORG_EXIT_CODES": "modern",
            "BORG_BASE_DIR": str(self.base_dir),
            "BORG_CONFIG_DIR": str(self.base_dir / "config"),
            "BORG_SECURITY_DIR": str(self.base_dir / "security"),
            "BORG_KEYS_DIR": str(self.base_dir / "keys"),
            "BORG_CACHE_DIR": str(self.cache_dir),
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "no",
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "no",
            "BORG_CHECK_I_KNOW_WHAT_I_AM_DOING": "NO",
            "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING": "NO",
            "BORG_DISPLAY_PASSPHRASE": "no",
        }


def default_binary() -> str:
    """The borg to run: the one installed beside this Python (coffre's virtualenv), else PATH's.

    Falls back to plain ``"borg"``, so that a missing borg shows up as
    BorgNotFound when the runner starts it, not here.
    """
    beside = Path(sys.executable).parent / "borg"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("borg") or "borg"
