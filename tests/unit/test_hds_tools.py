"""The HDS host's tools around the measure (packaging/hds): the transactions log, the
exporter's textfile, the rollback's refusals, the compaction's exit statuses."""

from __future__ import annotations

import datetime
from pathlib import Path

import hds_compact
from hds_exporter import Row, render, write_atomically
from hds_ledger import Measure, Transaction
from hds_log import compaction_note, parse
from hds_rollback import listing, refusal

LOG = (
    "transaction 1, UTC time 2026-11-01T01:30:00.000001\n"
    "transaction 5, UTC time 2026-11-02T01:30:00.5\n"
    "transaction 9, UTC time 2026-11-03T01:30:00\n"
)


def test_the_log_gives_transactions_with_their_utc_times() -> None:
    log = parse(LOG)
    assert list(log.transactions) == [1, 5, 9]
    assert log.transactions[5] == datetime.datetime(2026, 11, 2, 1, 30, 0, 500000, datetime.UTC)
    assert log.compacted_through is None


def test_the_compaction_note_is_read_back_and_a_rollback_undoes_transactions() -> None:
    note = compaction_note(5, datetime.datetime(2026, 11, 2, 3, 0, tzinfo=datetime.UTC))
    log = parse(LOG + note + "# rolled back to transaction 5 at X; files in Y\n")
    assert (log.compacted_through, log.compacted_at) == (5, "2026-11-02T03:00:00Z")
    assert list(log.transactions) == [1, 5]


def test_rollback_refuses_what_is_out_of_reach_and_lists_the_figures() -> None:
    log = parse(LOG + compaction_note(2, datetime.datetime.now(datetime.UTC)))
    done = [Transaction(5, puts=3, put_bytes=300), Transaction(9, deletes=4, deleted_bytes=90)]
    done[1].live_bytes_before = 300
    measure = Measure(transactions=done, last_transaction=9)
    assert refusal(log, measure, 5) is None
    assert "newest" in (refusal(log, measure, 9) or "")
    assert "before the last compaction" in (refusal(log, measure, 1) or "")
    assert "not a logged" in (refusal(log, measure, 7) or "")
    text = "\n".join(listing(log, measure))
    assert "DELETE      4 (90 B, 30 % of the live bytes)" in text
    assert "cannot roll back to it" in text.splitlines()[1]


def test_the_exporter_writes_labelled_values_and_marks_unreadable_repositories(
    tmp_path: Path,
) -> None:
    rows = [
        Row("cabinet-dupont", {"live_bytes": 1234.0, "last_transaction_timestamp_seconds": 1.5}),
        Row('odd"name', {}),
    ]
    out = tmp_path / "coffre-hds.prom"
    write_atomically(out, render(rows, 1000.0))
    text = out.read_text()
    assert 'coffre_hds_live_bytes{repository="cabinet-dupont"} 1234\n' in text
    assert 'coffre_hds_last_transaction_timestamp_seconds{repository="cabinet-dupont"} 1.5' in text
    assert 'coffre_hds_measure_ok{repository="cabinet-dupont"} 1\n' in text
    assert 'coffre_hds_measure_ok{repository="odd\\"name"} 0\n' in text
    assert "coffre_hds_exporter_last_run_timestamp_seconds 1000.000" in text
    assert [p.name for p in tmp_path.iterdir()] == ["coffre-hds.prom"]


def test_compaction_exit_statuses(tmp_path: Path) -> None:
    assert hds_compact.main([]) == 1
    assert hds_compact.main(["ssh://u@h/r"]) == 2
    assert hds_compact.main([str(tmp_path)]) == 2
