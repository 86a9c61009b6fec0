"""The arguments of ``coffre recover`` (its work is in ``cli_recover``, imported only to run it).

Apart so that every other ``coffre`` command starts without loading the
recovery's modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coffre.cli.support import iso_day
from coffre.core.config_types import PathsConfig

#: Where the state (the audit log, the recovery key) goes when nothing says otherwise.
DEFAULT_STATE = PathsConfig().state


def add_parser(sub: Any) -> None:
    """Add the ``recover`` command to the main parser's subparsers."""
    parser = sub.add_parser(
        "recover",
        help="disaster recovery: get the data back from an offsite host onto this (new) box",
        description="Get the practice's data back from an offsite host, with the passphrase "
        "and the paper key alone. Runs without the daemon and without a configuration. "
        "See docs/disaster-recovery.md.",
    )
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="the offsite repository, ssh://user@host:port/path (from the host's operator)",
    )
    parser.add_argument(
        "--passphrase-file",
        required=True,
        type=Path,
        metavar="FILE",
        help="a file holding the passphrase (typed from the paper copy)",
    )
    parser.add_argument(
        "--paper-key",
        required=True,
        type=Path,
        metavar="FILE",
        help="the paper key typed back in (or the printout of `coffre key export --paper`)",
    )
    parser.add_argument(
        "--host-key",
        required=True,
        metavar="SHA256:...",
        help="the fingerprint of the host's SSH key, read to you by the host's operator",
    )
    parser.add_argument(
        "--ssh-key",
        type=Path,
        metavar="FILE",
        help="this box's SSH key for the recovery (default STATE/ssh/recover_ed25519; "
        "created, with the line for the host's operator, when missing)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help=f"where the audit log and the recovery key go (default {DEFAULT_STATE})",
    )
    parser.add_argument("--list", action="store_true", help="list the archives and stop")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--archive", metavar="NAME", help="this archive (default: the latest)")
    which.add_argument(
        "--date",
        type=iso_day,
        metavar="YYYY-MM-DD",
        help="the latest complete archive of that day",
    )
    parser.add_argument(
        "--to",
        type=Path,
        metavar="DIR",
        help="write into DIR (default: the share of this box's configuration)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace files in the way")
    parser.add_argument(
        "--replace-key",
        action="store_true",
        help="write the paper key into the repository even though it has a key "
        "(when that key is damaged in a way borg takes for a wrong passphrase)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="only these paths (relative to the share, or absolute); default: everything",
    )
