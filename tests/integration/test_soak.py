"""The short chaos soak of ``make test``: three cycles of faults from a fixed seed.

``make soak`` runs the long one (see :mod:`tests.integration.soak`), with the clock's
jumps too: they need the daemon under libfaketime throughout, left out here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.soak import SHORT_FAULTS, Soak
from tests.parts import in_ci

#: Seed 141 draws, over three cycles, every fault of SHORT_FAULTS: a full state disk
#: with the passphrase gone; the daemon SIGKILLed mid-backup after a disk pulled
#: mid-job; borg SIGKILLed mid-backup with the HDS host's sshd killed mid-upload.
SEED = 141
CYCLES = 3


@pytest.mark.borg
def test_a_short_soak_of_random_faults_keeps_every_invariant(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        message = "the soak mounts a tmpfs, FUSE and loop devices: it needs root"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path / "soak"
    root.mkdir()
    root.chmod(0o755)
    with Soak(root, seed=SEED, faults=SHORT_FAULTS) as soak:
        try:
            summary = soak.run(CYCLES)
        finally:
            print(soak.summary.render())
    assert summary.cycles == CYCLES and not summary.error
    assert set(summary.faults) == set(SHORT_FAULTS)
    assert summary.checks["`coffre backup --wait` returns (no hung lane)"] >= 2 * CYCLES
    assert summary.checks["the next backup succeeds once healed"] == CYCLES
    assert summary.checks["no stray mount nor loop device"] == CYCLES + 1
    assert summary.verified >= 2 * CYCLES
