"""Every key of the configuration file, described once: the one source of every default.

Each :class:`Key` says its name, its type, its default (or that it is required,
or computed on the box), its bounds or choices, and what it does, in words a
technician reads. From this table:

- the dataclasses of :mod:`coffre.core.config_types` take their defaults
  (:func:`default_int` and its siblings, typed, so ``mypy`` checks each field);
- the loader (:mod:`coffre.config.loader`) takes which keys exist, which are
  required, the integers' bounds and the choices;
- :mod:`coffre.config.reference` writes the shipped ``packaging/coffre.toml``,
  the README's configuration reference and the man page's CONFIGURATION
  section (``make docs``; a unit test fails when they drift).

To add a key: one :class:`Key` in its :class:`Section` below, the dataclass
field reading its default, the loader's converter when its type needs one
(``coffre.config.converters``), then ``make docs``.

Defaults and examples are written as TOML gives them (a path is a string, a
list a tuple), so that the loader and the documents read them alike.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import TypeAlias

__all__ = [
    "KEYS",
    "REQUIRED",
    "SECTIONS",
    "Bound",
    "Computed",
    "Key",
    "Required",
    "Section",
    "Type",
    "Value",
    "default_bool",
    "default_int",
    "default_path",
    "default_str",
    "default_strings",
    "default_time",
]

#: A value as TOML gives it (an array is a tuple here, so that the table stays frozen).
Value: TypeAlias = str | int | bool | tuple[str, ...]


class Type(enum.Enum):
    """What a key takes; the value is how the documents name it."""

    INTEGER = "integer"
    BOOLEAN = "boolean"
    STRING = "string"
    PATH = "absolute path"
    STRINGS = "list of strings"
    PATHS = "list of absolute paths"
    TIME = 'time "HH:MM"'


@dataclass(frozen=True)
class Bound:
    """The integers a key takes: ``minimum`` to ``maximum``, and why no more (for messages)."""

    minimum: int
    maximum: int
    why: str


@dataclass(frozen=True)
class Required:
    """The default of a key that must be written."""


@dataclass(frozen=True)
class Computed:
    """The default of a key that depends on the box, ``said`` in words."""

    said: str


REQUIRED = Required()


@dataclass(frozen=True)
class Key:
    """One key of a section.

    ``default`` is the value taken when the key is absent, as TOML gives it;
    ``example`` is what the documents show for a required or computed key.
    ``kind``: for target keys, the one target kind that has it ("" for all).
    """

    name: str
    type: Type
    default: Value | Required | Computed
    doc: str
    example: Value | None = None
    bound: Bound | None = None
    choices: tuple[str, ...] = ()
    kind: str = ""

    def __post_init__(self) -> None:
        # Checked on import: a table mistake stops every test at once.
        plain = not isinstance(self.default, Required | Computed)
        if plain == (self.example is not None):
            raise ValueError(f"{self.name}: an example, and only one, for a key without a default")
        if (self.bound is not None) != (self.type is Type.INTEGER):
            raise ValueError(f"{self.name}: every integer key has bounds, and only they do")


@dataclass(frozen=True)
class Section:
    """A TOML table (``[name]``), or an array of tables (``[[name]]``) when ``array``.

    ``note`` is said beside its header ("required", "one or more").
    """

    name: str
    doc: str
    keys: tuple[Key, ...]
    note: str = ""
    required: bool = False
    array: bool = False


def _int(name: str, default: int, low: int, high: int, why: str, doc: str, kind: str = "") -> Key:
    return Key(name, Type.INTEGER, default, doc, bound=Bound(low, high, why), kind=kind)


# The wording is the README's and the shipped file's of before the table; each
# `doc` is one to three lines of the shipped file.
SECTIONS: tuple[Section, ...] = (
    Section(
        "source",
        "What is backed up.",
        note="required",
        required=True,
        keys=(
            Key(
                "paths",
                Type.PATHS,
                REQUIRED,
                'The absolute paths backed up (at least one); none inside another, no "..".',
                example=("/srv/coffre/partage",),
            ),
            Key(
                "exclude",
                Type.STRINGS,
                (),
                'Borg exclude patterns, e.g. "*.tmp", "*/~$*": fnmatch, or after a style prefix '
                'borg knows ("fm:", "sh:", "re:", "pp:", "pf:"); none may be empty.',
            ),
        ),
    ),
    Section(
        "schedule",
        "A run missed while the box was off or the daemon down is made once at the next start.",
        keys=(
            Key(
                "daily",
                Type.TIME,
                "01:30",
                'The local time of the nightly run, "HH:MM" (00:00 to 23:59).',
            ),
            Key(
                "timezone",
                Type.STRING,
                "Europe/Paris",
                "The IANA timezone that decides what a day and a month are (for the nightly "
                "run and for retention).",
            ),
        ),
    ),
    Section(
        "retention",
        "The restore points kept on every repository.",
        keys=(
            _int(
                "daily",
                3,
                1,
                366,
                "a year of daily restore points; older ones are monthly",
                "J, J-1, J-2: the last archive of each of the last `daily` days having one.",
            ),
            _int(
                "monthly",
                2,
                0,
                240,
                "20 years, the time a French medical record is kept; each is a metric series",
                "M, M-1: the FIRST archive of each of the last `monthly` months having one.",
            ),
            Key(
                "prefix",
                Type.STRING,
                Computed("this box's hostname"),
                'Archive names are "<prefix>-<local date and time>"; only archives starting '
                'with "<prefix>-" are ever deleted. 1 to 64 letters, digits, ".", "_" or "-".',
                example="cabinet",
            ),
        ),
    ),
    Section(
        "encryption",
        "Keep a copy of the passphrase on paper with the exported keys: without both, no "
        "backup can be read after a fire.",
        note="required",
        required=True,
        keys=(
            Key(
                "passphrase_file",
                Type.PATH,
                REQUIRED,
                "The passphrase of the repositories: a file of mode 0600 (no group or other "
                "access), created with a random passphrase when the package was installed.",
                example="/etc/coffre/passphrase",
            ),
            Key(
                "mode",
                Type.STRING,
                "repokey-blake2",
                "The borg encryption mode of repositories created from now on (unencrypted "
                "modes are refused: the backups hold health data).",
                choices=("repokey-blake2", "repokey", "keyfile-blake2", "keyfile"),
            ),
        ),
    ),
    Section(
        "paths",
        "Moving them needs a systemd drop-in too (see the unit's ReadWritePaths=).",
        keys=(
            Key(
                "state",
                Type.PATH,
                "/var/lib/coffre",
                "The sqlite state, borg's config, keys and security dirs: stable storage, "
                "never a cache.",
            ),
            Key("cache", Type.PATH, "/var/cache/coffre", "Borg's caches."),
            Key(
                "runtime",
                Type.PATH,
                "/run/coffre",
                'The control socket and the USB disks\' mount points; no "::", "{" or "}" '
                "(borg reads them).",
            ),
        ),
    ),
    Section(
        "borg",
        "How borg is run.",
        keys=(
            Key(
                "binary",
                Type.STRING,
                "",
                "The borg program; empty: the one installed with coffre (/opt/coffre/bin/borg).",
            ),
            _int(
                "lock_wait",
                60,
                0,
                3600,
                "an hour: a lock held longer is stale or another host's, never broken silently",
                "Seconds to wait for a repository lock held by another borg.",
            ),
            _int(
                "checkpoint_interval",
                1800,
                10,
                86400,
                "a day: a cut backup resumes from its last checkpoint",
                "Seconds between checkpoints of a long backup: an interrupted backup resumes "
                "from the last one.",
            ),
            Key(
                "compression",
                Type.STRING,
                "zstd,3",
                '"none", "lz4", "zstd[,1-22]", "zlib[,0-9]" or "lzma[,0-9]", optionally after '
                '"auto,".',
            ),
            _int(
                "stop_timeout",
                60,
                1,
                600,
                "10 minutes; the unit's TimeoutStopSec= must leave room for it",
                "Seconds borg gets to write its checkpoint when the daemon stops it (the unit's "
                "TimeoutStopSec= must leave room for it).",
            ),
        ),
    ),
    Section(
        "usb",
        'Rotating USB disks, when the box has some (README, "USB disks").',
        keys=(
            _int(
                "swap_after_days",
                7,
                1,
                365,
                "a year",
                "A disk that has been the only one plugged in for more days than this must be "
                "swapped with the spare: status says so.",
            ),
            _int(
                "missing_after_days",
                30,
                1,
                365,
                "a year",
                "A disk not seen for more days than this is reported missing.",
            ),
            _int(
                "check_max_duration",
                120,
                10,
                3600,
                "an hour per disk job; the check resumes where it stopped next time",
                "Seconds each disk job may spend on `borg check --repository-only`; a partial "
                "check resumes where it stopped the next time.",
            ),
        ),
    ),
    Section(
        "metrics",
        'The Prometheus exporter, scraped by the box\'s Prometheus agent (README, "Monitoring"). '
        "It shows names and numbers only (targets, disks, sizes, times), never a path or a "
        "file name.",
        keys=(
            Key("enabled", Type.BOOLEAN, True, "Serve the metrics."),
            Key(
                "listen",
                Type.STRING,
                "127.0.0.1:9851",
                '"host:port"; an IPv6 address in brackets ("[::1]:9851"). Beyond loopback '
                "the exporter answers anyone who reaches the port (no authentication): "
                '`coffre config check` warns; see the README\'s firewall note ("Monitoring").',
            ),
        ),
    ),
    Section(
        "leds",
        "The box's lights (LED class devices): green steady all good, green blinking fast a "
        "backup runs, green blinking slowly a disk may be removed, amber attention, red call "
        'support (README, "Lights").',
        keys=(
            Key("enabled", Type.BOOLEAN, True, "Drive the lights."),
            Key(
                "sysfs_root",
                Type.PATH,
                "/sys/class/leds",
                "The directory holding one directory per LED.",
            ),
            Key("green", Type.STRING, "coffre:green", "The green LED's name under sysfs_root."),
            Key("amber", Type.STRING, "coffre:amber", "The amber LED's name under sysfs_root."),
            Key("red", Type.STRING, "coffre:red", "The red LED's name under sysfs_root."),
        ),
    ),
    Section(
        "restore",
        "Restores, finds and browsing by support staff (coffre restore, find, browse).",
        keys=(
            _int(
                "disk_wait",
                600,
                10,
                3600,
                "an hour: the person who asked waits at the terminal",
                "Seconds a restore from a USB disk that is away waits for it to be plugged in.",
            ),
            _int(
                "browse_idle",
                900,
                1,
                86400,
                "a day",
                "Seconds a `coffre browse` folder stays mounted with nobody using it.",
            ),
            _int(
                "browse_max",
                7200,
                60,
                86400,
                "a day: while mounted, the target's backups wait for the browse",
                "Seconds a `coffre browse` folder stays mounted at most (the target's jobs wait "
                "for it).",
            ),
            _int(
                "find_max_results",
                1000,
                1,
                100_000,
                "the hits travel in one answer and are printed one per line",
                "Matches one `coffre find` lists (the others are only counted).",
            ),
            _int(
                "rto_hours",
                24,
                1,
                720,
                "a month: beyond it a restore is no objective any more",
                "The practice's recovery time objective: hours a full restore may take. A "
                "target whose estimate (from its last restore drill) exceeds it is shown in "
                "`coffre status` and alerts (an offsite copy over the Internet link usually "
                "does; the USB disks are the fast way back).",
            ),
        ),
    ),
    Section(
        "guard",
        'The ransomware guard (README, "Ransomware guard"): after each backup, what changed '
        "in the share is measured; a night that looks like mass encryption, renaming or "
        "deletion freezes pruning on every target until support clears it.",
        keys=(
            Key(
                "canaries",
                Type.BOOLEAN,
                True,
                'Plant witness files ("!COFFRE-TEMOIN-NE-PAS-MODIFIER.*") at the top of each '
                "source path and check them after every backup.",
            ),
            _int(
                "sample_files",
                200,
                0,
                10_000,
                "each is opened and its head read after the backup",
                "Changed files whose head is checked (magic bytes against the extension, "
                "entropy); 0 checks none.",
            ),
            _int(
                "sample_head_bytes",
                16384,
                512,
                1_048_576,
                "a MiB: the head is read into memory",
                "Bytes read at the start of each sampled file.",
            ),
            _int(
                "min_files",
                50,
                0,
                1_000_000,
                "a million files",
                "The count rules (rewritten, vanished, new data) judge only a share of at "
                "least this many files.",
            ),
            _int(
                "rewritten_percent",
                30,
                1,
                100,
                "a percentage",
                "Signal when the files whose content was replaced (modified, or renamed away) "
                "are this percentage of the share; files merely added never count.",
            ),
            _int(
                "vanished_percent",
                30,
                1,
                100,
                "a percentage",
                "Signal when the files gone since the previous backup are this percentage of it.",
            ),
            _int(
                "suspect_percent",
                30,
                1,
                100,
                "a percentage",
                "Signal when this percentage of the sampled files look encrypted (and at least "
                "min_suspects of them).",
            ),
            _int(
                "min_suspects",
                10,
                1,
                10_000,
                "no more than sample_files can reach",
                "Suspect sampled files needed for the sample to signal.",
            ),
            _int(
                "new_data_percent",
                25,
                1,
                100,
                "a percentage",
                "Signal when the night's new (deduplicated) data is this percentage of the share "
                "and the files rewritten are a tenth of rewritten_percent.",
            ),
            _int(
                "compare_within_hours",
                48,
                1,
                8760,
                "a year",
                "The count rules compare with the previous backup only when it is at most this "
                "old (a USB disk back after weeks is judged by canaries and the sample).",
            ),
            _int(
                "clock_tolerance_minutes",
                60,
                1,
                10_080,
                "a week",
                "An archive dated more than this after the box's clock is suspect.",
            ),
            _int(
                "clock_max_leap_days",
                45,
                1,
                3660,
                "ten years",
                "A clock that jumps forward more than this since the newest archive is suspect.",
            ),
        ),
    ),
    # --- [checks]: the scheduled borg checks (issue 13; docs/repair.md) ---
    Section(
        "checks",
        'The scheduled borg checks of every repository (README, "Checks"): the segments '
        "read back (rolling), the archives' metadata, the data decrypted; a failure names "
        "the target and what to do (docs/repair.md).",
        keys=(
            _int(
                "repository_every_days",
                30,
                1,
                365,
                "a year",
                "Every segment of the box's repository is read back at least this often: a "
                "pass of time-boxed slices (`borg check --repository-only --max-duration`).",
            ),
            _int(
                "repository_max_duration",
                600,
                10,
                21600,
                "six hours: a slice must end long before the next night",
                "Seconds of one slice of the rolling repository check; the next slice "
                "resumes where it stopped.",
            ),
            _int(
                "archives_every_days",
                7,
                1,
                365,
                "a year",
                "The archives' metadata is checked this often on the box's repository and, "
                "from the box, on each offsite one (`borg check --archives-only`).",
            ),
            _int(
                "data_every_days",
                30,
                1,
                365,
                "a year",
                "Every chunk is decrypted and verified this often, on the box's repository "
                "(`borg check --verify-data`) and on each USB disk at its plug.",
            ),
            _int(
                "disk_data_budget",
                1800,
                60,
                86400,
                "a day: the disk stays mounted meanwhile",
                "Seconds each disk job may spend on the data check when it is due, archive "
                "by archive; the next plug goes on with the archives left.",
            ),
        ),
    ),
    # --- [drills] (restore drills, README "Restore drills") ---
    Section(
        "drills",
        'Restore drills (README, "Restore drills"): a sample of the latest archive\'s files is '
        "extracted into a private folder under paths.cache and compared with the share, or "
        "with borg's own hash of each file edited since.",
        keys=(
            _int(
                "every_days",
                30,
                1,
                366,
                "a year: a drill proves little after that",
                "Days between two scheduled drills of each target.",
            ),
            _int(
                "files",
                50,
                1,
                2000,
                "each path is an argument of the drill's one borg extract",
                "Files read back per drill, at most.",
            ),
            _int(
                "mib",
                200,
                1,
                102_400,
                "100 GiB: the scratch folder holds the sample",
                "MiB read back per drill, at most (the sample's total size).",
            ),
            _int(
                "largest",
                5,
                0,
                1000,
                "no more than the whole sample",
                "Of the sample, the largest files that fit in the budget (always drilled).",
            ),
            _int(
                "recent",
                5,
                0,
                1000,
                "no more than the whole sample",
                "Of the sample, the files most recently changed (always drilled).",
            ),
        ),
    ),
    # --- [snapshots] (README "Snapshots and Previous Versions") ---
    Section(
        "snapshots",
        'btrfs snapshots (README, "Snapshots and Previous Versions"): each backup reads a '
        "read-only snapshot of the share, and the practice finds earlier versions of its "
        "files in Windows' Previous Versions tab.",
        keys=(
            Key(
                "enabled",
                Type.BOOLEAN,
                True,
                "Snapshot the share when every source path is a btrfs subvolume (`coffre "
                "share setup` makes it one); otherwise backups wait for a quiet moment "
                "([quiescence]).",
            ),
            Key(
                "office_days",
                Type.STRING,
                "mon-fri",
                'The days of the office hours\' Previous Versions: "mon-fri", "mon-sat", "all".',
            ),
            Key(
                "office_from",
                Type.STRING,
                "08:00",
                'The local time the office hours start, "HH:MM".',
            ),
            Key(
                "office_to",
                Type.STRING,
                "19:00",
                'The local time they end, "HH:MM" ("24:00": the end of the day); after "from".',
            ),
            _int(
                "every_minutes",
                60,
                10,
                1440,
                "from every 10 minutes to once a day",
                "Minutes between two Previous Versions during the office hours.",
            ),
            _int(
                "keep_hours",
                48,
                0,
                24 * 31,
                "a month: the backups keep what is older",
                "Hours every Previous Version is kept (office hours' and backups' alike).",
            ),
            _int(
                "keep_nights",
                3,
                0,
                31,
                "a month: the backups keep what is older",
                "Besides, the last backup's snapshot of each of the last this many days "
                "(J, J-1, J-2) is kept.",
            ),
            _int(
                "min_free_percent",
                10,
                1,
                90,
                "a percentage of the filesystem",
                "When the share's filesystem has less free space than this, the oldest "
                "Previous Versions are removed first (a backup or a restore never fails for "
                "them).",
            ),
        ),
    ),
    # --- [quiescence] (README "Snapshots and Previous Versions") ---
    Section(
        "quiescence",
        "Before a backup walks the share (and before its snapshot is taken), wait until no "
        "file is open for writing over SMB and nothing changed for a while; past the bound, "
        "back up anyway and say so (status, the archive's comment).",
        keys=(
            _int(
                "max_wait_seconds",
                900,
                0,
                4 * 3600,
                "four hours: a night's backup must still end before the practice opens",
                "Seconds a backup waits at most for a quiet share (0: it never waits).",
            ),
            _int(
                "disk_max_wait_seconds",
                60,
                0,
                3600,
                "an hour",
                "Seconds a USB disk's backup waits at most: disks are swapped while the "
                "practice works, and someone waits at the box.",
            ),
            _int(
                "quiet_seconds",
                30,
                1,
                3600,
                "an hour",
                "Seconds without any change in the share that make it quiet.",
            ),
            Key(
                "smbstatus",
                Type.STRING,
                "/usr/bin/smbstatus",
                "Samba's smbstatus, which tells the files open over SMB (missing: only the "
                "changes are watched).",
            ),
            Key(
                "samba_config",
                Type.STRING,
                "",
                "The smb.conf smbstatus reads; empty: Samba's own (/etc/samba/smb.conf).",
            ),
        ),
    ),
    Section(
        "target",
        "One [[target]] table per repository. Create the repository once with "
        "`coffre target init NAME`.",
        note="one or more",
        required=True,
        array=True,
        keys=(
            Key(
                "name",
                Type.STRING,
                REQUIRED,
                '1 to 32 lowercase letters, digits, "_" or "-", starting with a letter or '
                "digit; it appears in messages and metrics.",
                example="local",
            ),
            Key(
                "kind",
                Type.STRING,
                REQUIRED,
                '"local": a repository in a directory of the box; "offsite": one on an HDS '
                'host, over SSH (README, "Offsite hosts").',
                example="local",
                choices=("local", "offsite"),
            ),
            Key(
                "path",
                Type.PATH,
                REQUIRED,
                'The repository\'s directory: not inside a source path; no "::", "{" or "}" '
                "(borg reads them).",
                example="/srv/coffre/depots/local",
                kind="local",
            ),
            Key(
                "url",
                Type.STRING,
                REQUIRED,
                "ssh://user@host:port/path: the user, the host, the port (22 when left out), "
                "the repository's absolute path (/~/x: under the user's home).",
                example="ssh://cabinet@hds1.example.fr:22/srv/borg/cabinet",
                kind="offsite",
            ),
            Key(
                "host_keys",
                Type.STRINGS,
                (),
                'The host\'s pinned keys, "ssh-ed25519 AAAA..."; empty: those `coffre offsite '
                "enroll` pinned.",
                kind="offsite",
            ),
            _int(
                "retry_for",
                360,
                0,
                10080,
                "a week of minutes",
                "Minutes during which a cut upload is retried (0: no retry).",
                kind="offsite",
            ),
            _int(
                "retry_delay",
                60,
                1,
                1800,
                "the longest wait between two retries, 30 minutes",
                "Seconds before the first retry, doubled at each retry (30 minutes at most).",
                kind="offsite",
            ),
            _int(
                "connect_timeout",
                30,
                1,
                300,
                "5 minutes",
                "Seconds to reach the host.",
                kind="offsite",
            ),
            Key(
                "ssh_key",
                Type.PATH,
                Computed("<paths.state>/ssh/<name>_ed25519"),
                "The box's private key for this host.",
                example="/var/lib/coffre/ssh/hds1_ed25519",
                kind="offsite",
            ),
        ),
    ),
    Section(
        "target.upload_window",
        "When an offsite target's uploads are slowed down; outside every window: no limit. "
        "Where windows overlap, the lowest limit wins.",
        note="zero or more, in an offsite target",
        array=True,
        keys=(
            Key(
                "days",
                Type.STRING,
                "all",
                '"mon-fri", "sat,sun", "fri-mon" (a range may wrap around the week\'s end) '
                'or "all".',
            ),
            Key(
                "from",
                Type.TIME,
                REQUIRED,
                'The local time the window opens, "HH:MM".',
                example="08:00",
            ),
            Key(
                "to",
                Type.TIME,
                REQUIRED,
                'The local time it closes ("24:00": the end of the day); a "to" not after '
                '"from" runs past midnight.',
                example="19:00",
            ),
            Key(
                "limit_kbps",
                Type.INTEGER,
                REQUIRED,
                "KiB/s (borg's --upload-ratelimit).",
                example=2000,
                bound=Bound(
                    1,
                    1_000_000,
                    "about 8 Gbit/s, more than a practice's uplink; for no limit, no window",
                ),
            ),
        ),
    ),
)

#: Every key by its dotted path: ``"borg.lock_wait"``, ``"target.upload_window.days"``.
KEYS: dict[str, Key] = {f"{s.name}.{k.name}": k for s in SECTIONS for k in s.keys}


def _default(path: str) -> Value:
    """The default of the key at ``path``; KeyError or ValueError (on import) for a mistake."""
    default = KEYS[path].default
    if isinstance(default, Required | Computed):
        raise ValueError(f"{path} has no default value of its own")
    return default


def default_int(path: str) -> int:
    """The default of the integer key at ``path`` (e.g. ``"borg.lock_wait"``).

    Raises KeyError for an unknown key, TypeError for one of another type.
    """
    value = _default(path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{path}: {value!r} is not an integer")
    return value


def default_bool(path: str) -> bool:
    """The default of the boolean key at ``path``; KeyError, TypeError as :func:`default_int`."""
    value = _default(path)
    if not isinstance(value, bool):
        raise TypeError(f"{path}: {value!r} is not a boolean")
    return value


def default_str(path: str) -> str:
    """The default of the string key at ``path``; KeyError, TypeError as :func:`default_int`."""
    value = _default(path)
    if not isinstance(value, str):
        raise TypeError(f"{path}: {value!r} is not a string")
    return value


def default_path(path: str) -> Path:
    """The default of the path key at ``path``; KeyError, TypeError as :func:`default_int`."""
    return Path(default_str(path))


def default_strings(path: str) -> tuple[str, ...]:
    """The default of the list key at ``path``; KeyError, TypeError as :func:`default_int`."""
    value = _default(path)
    if not isinstance(value, tuple):
        raise TypeError(f"{path}: {value!r} is not a list")
    return value


def default_time(path: str) -> time:
    """The default of the ``"HH:MM"`` key at ``path``; KeyError, TypeError, ValueError."""
    hours, _, minutes = default_str(path).partition(":")
    return time(int(hours), int(minutes))
