"""Does a night's backup look like ransomware? Pure rules over counts and ratios.

What goes in (:class:`NightFigures`) are figures only, never a name: they go to
the status, the metrics and the journal. Where they come from (borg 1.4.5,
checked with the real binary):

- ``files`` is borg's ``nfiles`` of the new archive: regular files only, a
  hard-linked inode counted once (its other paths are ``h``); directories,
  symlinks, FIFOs and devices are not counted.
- ``added``/``modified`` are the ``A``/``M`` statuses of ``create --list``.
  They are decided by borg's files cache (per repository, keyed by path): a
  path the cache lacks is ``A`` (a new file, or a renamed one), a known path
  whose ctime, size or inode changed is ``M``. borg never memorises the files
  with the newest ctime of a run, so an unchanged night still shows an ``A``
  or two.
- ``vanished`` is derived: every path of the previous archive that is still
  there is not ``A`` tonight, so ``previous_files + added - files`` counted the
  files gone (clamped at 0). When the files cache was lost, every file is ``A``
  and that sum would call the whole share gone: then only a fall of the count
  (``previous_files - files``) is known, and that is what is used.

A **lost files cache** (a rebuilt cache dir, a new disk's first run after a
cache wipe) shows as: almost every file ``A`` (90 % or more), none ``M``, and
little new data (deduplicated size under 5 % of the share: the chunks are
already in the repository). Mass renaming of encrypted files
also makes every file ``A`` but brings as much new data as the share holds,
since ciphertext neither compresses nor deduplicates; so the two do not
look alike, and a lost cache only turns the ``rewritten`` rule off for the night.

``rewritten`` counts the files whose previous content was *replaced*: the
modified ones, plus the added ones that stand for vanished ones (a file
encrypted then renamed ``.locked`` is one ``A`` and one name gone):
``modified + min(added, vanished)``. Files merely added (a scanner session,
a patient file imported, a share that grows) replace nothing and count for
nothing there, however many: no attack hides in a growing share, and a
practice adds hundreds of scans some nights.

The count rules (``rewritten``, ``vanished``, ``new_data``) need a baseline:
the previous backup to the same repository, no older than
``compare_within_hours`` (a USB disk plugged after three weeks sees three
weeks of churn), and a share of at least ``min_files`` files. The canaries and
the content sample judge every night.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from coffre.core.config_types import GuardConfig

#: Every reason a signal can give, in the order they are reported.
REASONS: Final = ("canary", "encrypted_sample", "rewritten", "vanished", "new_data")

# A lost files cache lists (nearly) every file as added, and brings next to no
# new data (the night's real churn only): under 5 % of the share, where files
# encrypted and renamed bring about 100 %.
_LOST_CACHE_ADDED_PERCENT = 90
_LOST_CACHE_NEW_DATA_PERCENT = 5
# new_data also asks for this share of rewritten_percent in files rewritten
# (replaced, not merely added), so that new files (a scanner session's PDFs, a
# dump) never fire it alone.
_NEW_DATA_FILES_DIVISOR = 10


@dataclass(frozen=True)
class NightFigures:
    """What one backup showed about the share: counts, sizes, hours; never a name.

    ``previous_files`` and ``hours_since_previous`` are None without a
    baseline (first backup to this repository). ``new_bytes`` is borg's
    deduplicated size of the archive, ``share_bytes`` its original size.
    ``sampled``/``suspects``/``unreadable``: the content sample;
    ``canaries_checked``/``canaries_touched``: the witness files.
    """

    files: int
    previous_files: int | None
    added: int
    modified: int
    new_bytes: int
    share_bytes: int
    sampled: int = 0
    suspects: int = 0
    unreadable: int = 0
    canaries_checked: int = 0
    canaries_touched: int = 0
    hours_since_previous: float | None = None

    @property
    def lost_files_cache(self) -> bool:
        """True when the statuses look like a lost files cache (module doc), not like churn."""
        return (
            self.files > 0
            and self.modified == 0
            and self.added * 100 >= _LOST_CACHE_ADDED_PERCENT * self.files
            and not _at_least(self.new_bytes, self.share_bytes, _LOST_CACHE_NEW_DATA_PERCENT)
        )

    @property
    def replaced(self) -> int:
        """Files whose previous content was replaced tonight (module doc; 0 without a
        baseline but the modified ones)."""
        return self.modified + min(self.added, self.vanished)

    @property
    def vanished(self) -> int:
        """Files of the previous backup gone tonight (0 without a baseline; module doc)."""
        if self.previous_files is None:
            return 0
        if self.lost_files_cache:
            return max(0, self.previous_files - self.files)
        return max(0, self.previous_files + self.added - self.files)


@dataclass(frozen=True)
class Thresholds:
    """The rules' limits, from the ``[guard]`` section (see ``GuardConfig``)."""

    min_files: int
    rewritten_percent: int
    vanished_percent: int
    suspect_percent: int
    min_suspects: int
    new_data_percent: int
    compare_within_hours: int

    @classmethod
    def from_config(cls, config: GuardConfig) -> Thresholds:
        """The thresholds of ``config`` (the other keys are not the signal's)."""
        return cls(
            min_files=config.min_files,
            rewritten_percent=config.rewritten_percent,
            vanished_percent=config.vanished_percent,
            suspect_percent=config.suspect_percent,
            min_suspects=config.min_suspects,
            new_data_percent=config.new_data_percent,
            compare_within_hours=config.compare_within_hours,
        )


@dataclass(frozen=True)
class Signal:
    """A night that looks like ransomware: why (``reasons``, from REASONS) and the figures.

    ``figures`` holds counts and percentages only, for status, metrics and journal.
    """

    reasons: tuple[str, ...]
    figures: dict[str, int | float]


def _at_least(part: int, whole: int, percent: int) -> bool:
    """True when ``part`` is at least ``percent`` % of ``whole`` (False for an empty whole)."""
    return whole > 0 and part * 100 >= percent * whole


def has_baseline(figures: NightFigures, thresholds: Thresholds) -> bool:
    """True when the count rules may judge: a recent previous backup of enough files."""
    if figures.previous_files is None or figures.hours_since_previous is None:
        return False
    if not 0 <= figures.hours_since_previous <= thresholds.compare_within_hours:
        # A baseline "in the future" (a clock that went back) is no baseline either.
        return False
    return max(figures.files, figures.previous_files) >= thresholds.min_files


def reasons(figures: NightFigures, thresholds: Thresholds) -> tuple[str, ...]:
    """The rules ``figures`` cross, in REASONS order (empty: a normal night)."""
    found: set[str] = set()
    if figures.canaries_touched > 0:
        found.add("canary")
    if figures.suspects >= thresholds.min_suspects and _at_least(
        figures.suspects, figures.sampled, thresholds.suspect_percent
    ):
        found.add("encrypted_sample")
    if has_baseline(figures, thresholds):
        assert figures.previous_files is not None
        rewritten = figures.replaced
        if not figures.lost_files_cache and _at_least(
            rewritten, figures.files, thresholds.rewritten_percent
        ):
            found.add("rewritten")
        if _at_least(figures.vanished, figures.previous_files, thresholds.vanished_percent):
            found.add("vanished")
        enough_files = rewritten * 100 * _NEW_DATA_FILES_DIVISOR >= (
            thresholds.rewritten_percent * figures.files
        )
        if enough_files and _at_least(
            figures.new_bytes, figures.share_bytes, thresholds.new_data_percent
        ):
            found.add("new_data")
    return tuple(r for r in REASONS if r in found)


def figures_dict(figures: NightFigures, thresholds: Thresholds) -> dict[str, int | float]:
    """``figures`` as a flat dict of numbers (None left out), with the derived ones."""
    out: dict[str, int | float] = {
        "files": figures.files,
        "added": figures.added,
        "modified": figures.modified,
        "new_bytes": figures.new_bytes,
        "share_bytes": figures.share_bytes,
        "sampled": figures.sampled,
        "suspects": figures.suspects,
        "unreadable": figures.unreadable,
        "canaries_checked": figures.canaries_checked,
        "canaries_touched": figures.canaries_touched,
        "lost_files_cache": int(figures.lost_files_cache),
        "baseline": int(has_baseline(figures, thresholds)),
    }
    if figures.previous_files is not None:
        out["previous_files"] = figures.previous_files
        out["vanished"] = figures.vanished
    if figures.hours_since_previous is not None:
        out["hours_since_previous"] = round(figures.hours_since_previous, 2)
    if figures.files:
        out["rewritten_percent"] = round(100 * figures.replaced / figures.files, 2)
    if figures.share_bytes:
        out["new_data_percent"] = round(100 * figures.new_bytes / figures.share_bytes, 2)
    if figures.sampled:
        out["suspect_percent"] = round(100 * figures.suspects / figures.sampled, 2)
    return out


def evaluate(figures: NightFigures, thresholds: Thresholds) -> Signal | None:
    """The signal ``figures`` give under ``thresholds``, or None for a normal night.

    Pure; raises nothing.
    """
    found = reasons(figures, thresholds)
    if not found:
        return None
    return Signal(reasons=found, figures=figures_dict(figures, thresholds))
