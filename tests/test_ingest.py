"""Chunked ingest into both tick stores: every row accounted for, idempotent, and truncated files handled."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from feature_store.instruments import is_declared
from pipelines import ingest
from pipelines.ingest import FileReport, IngestReport, ingest_files
from pipelines.sources import open_source, read_b3, read_dhan, read_kite, read_lobster
from pipelines.sources.preflight import SourceFileError
from tests.data import B3_FILES, DATA

LOBSTER = DATA / "lobster" / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
DHAN = DATA / "nse" / "dhan_nifty_futures_ticks.csv"
KITE = DATA / "nse" / "kiteconnect_nifty_futures_ticks.csv"

B3_CROSSED = {
    "05032025": 82,
    "06032025": 1,
    "13032025": 1,
    "18032025": 1,
    "19032025": 3,
    "21032025": 1,
    "31032025": 5,
}
EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"

# (format, file, symbol, rows read, rows quarantined by reason)
REAL_FILES = [
    pytest.param("lobster", LOBSTER, "AMZN", 57_515, {}, id="lobster"),
    pytest.param("dhan", DHAN, "NIFTY", 356, {}, id="dhan"),
    pytest.param("kite", KITE, "NIFTY", 271, {}, id="kite"),
    *(
        pytest.param(
            "b3",
            path,
            "PETR4",
            sum(1 for _ in path.open()) - 1,
            {"crossed_book": B3_CROSSED[path.stem[-8:]]} if path.stem[-8:] in B3_CROSSED else {},
            id=path.stem,
        )
        for path in B3_FILES
    ),
]
READERS = {"lobster": read_lobster, "b3": read_b3, "dhan": read_dhan, "kite": read_kite}


@pytest.fixture(autouse=True)
def user_instruments(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "instruments.yaml"
    monkeypatch.setenv("TICKML_INSTRUMENTS", str(path))
    return path


@pytest.mark.parametrize(("fmt", "path", "symbol", "rows_read", "reasons"), REAL_FILES)
def test_real_file_ingest_accounts_for_every_row(tick_store, fmt, path, symbol, rows_read, reasons):
    report = ingest_files([path], fmt, tick_store)

    file = report.files[0]
    assert (file.rows_read, file.quarantined, file.ticks_already) == (rows_read, reasons, 0)
    assert file.ticks_new == len(tick_store.read_ticks(symbol)) == rows_read - sum(reasons.values())
    assert file.quarantine_new == len(tick_store.read_quarantine(symbol)) == sum(reasons.values())


@pytest.mark.parametrize(
    ("fmt", "path", "symbol"),
    [
        ("lobster", LOBSTER, "AMZN"),
        ("dhan", DHAN, "NIFTY"),
        ("kite", KITE, "NIFTY"),
        ("b3", B3_FILES[0], "PETR4"),
    ],
)
def test_stored_ticks_are_what_the_reader_returns(tick_store, fmt, path, symbol):
    ingest_files([path], fmt, tick_store, chunk_rows=10_000)

    stored = tick_store.read_ticks(symbol)

    expected = READERS[fmt](path).sort_values(["ts", "seq"], ignore_index=True)
    pd.testing.assert_frame_equal(stored, expected)


def test_ingesting_the_same_file_twice_changes_nothing(tick_store):
    first = ingest_files([B3_FILES[0]], "b3", tick_store).files[0]
    stats = tick_store.stats()

    again = ingest_files([B3_FILES[0]], "b3", tick_store).files[0]

    assert (again.ticks_new, again.ticks_already, again.quarantine_new) == (0, first.ticks_new, 0)
    assert again.quarantined == first.quarantined
    assert tick_store.stats() == stats


def test_ingest_in_small_chunks_stores_the_same_ticks_and_quarantine(tick_store, tmp_path):
    ingest_files([B3_FILES[0]], "b3", tick_store, chunk_rows=97)

    stored = tick_store.read_ticks("PETR4")

    pd.testing.assert_frame_equal(stored, read_b3(B3_FILES[0]).sort_values(["ts", "seq"], ignore_index=True))
    assert tick_store.stats()[0]["reasons"] == {"crossed_book": 82}


def test_a_file_cut_mid_row_stores_what_is_whole(tick_store, tmp_path):
    lines = KITE.read_bytes().split(b"\n")
    cut = tmp_path / "kite_cut.csv"
    cut.write_bytes(b"\n".join(lines[:201]) + b"\n" + lines[201][:75])  # 200 whole rows, then 75 bytes

    file = ingest_files([cut], "kite", tick_store, chunk_rows=64).files[0]

    assert (file.rows_read, file.ticks_new, file.quarantined) == (201, 200, {"truncated": 1})
    # a cut row names no symbol or time for sure: it is quarantined under symbol "" and day ""
    assert tick_store.read_quarantine()[["row", "reason", "symbol"]].values.tolist() == [
        [200, "truncated", ""]
    ]


def test_progress_is_called_after_each_chunk_with_its_rows(tick_store):
    done: list[int] = []

    ingest_files([DHAN], "dhan", tick_store, chunk_rows=100, progress=done.append)

    assert done == [100, 100, 100, 56]


def test_mapped_ingest_reads_the_mapping_file(tick_store):
    file = ingest_files(
        [EXAMPLES / "ticks-example.csv"], "mapped", tick_store, mapping=EXAMPLES / "mapping-example.yaml"
    ).files[0]

    assert (file.rows_read, file.ticks_new, file.quarantined) == (6, 5, {"bad_price": 1})


def test_report_table_has_a_row_per_file_a_total_and_a_column_per_reason():
    report = IngestReport(
        [
            FileReport(
                "/data/a.csv", "b3", rows_read=10, ticks_new=8, quarantined={"crossed_book": 2}, seconds=0.5
            ),
            FileReport(
                "/data/b.csv", "b3", rows_read=5, ticks_new=4, quarantined={"duplicate": 1}, seconds=0.25
            ),
        ]
    )

    header, _, first, second, _, total = report.table().splitlines()

    assert header.split() == [
        "file",
        "rows",
        "read",
        "stored",
        "already",
        "stored",
        "quarantined",
        "new",
        "in",
        "quarantine",
        "crossed_book",
        "duplicate",
        "seconds",
    ]
    assert first.split() == ["a.csv", "10", "8", "0", "2", "0", "2", "0", "0.50"]
    assert total.split() == ["total", "15", "12", "0", "3", "0", "2", "1", "0.75"]


def test_every_real_file_ingests_with_every_row_accounted_for(tick_store, capsys):
    runs = [("lobster", [LOBSTER]), ("b3", B3_FILES), ("dhan", [DHAN]), ("kite", [KITE])]

    reports = {fmt: ingest_files(paths, fmt, tick_store) for fmt, paths in runs}

    with capsys.disabled():  # the tables go into the closing note
        for fmt, report in reports.items():
            print(f"\n{type(tick_store).__name__} --format {fmt}\n{report.table()}")
    assert all(report.accounted for report in reports.values())


def test_report_table_has_a_column_per_kind_of_line_that_is_not_a_tick():
    file = FileReport(
        "/data/btc.gz",
        "binance",
        rows_read=10,
        ticks_new=9,
        quarantined={"duplicate": 1},
        not_ticks={"depth update": 3451, "REST snapshot": 1},
    )

    header, _, row = IngestReport([file]).table().splitlines()

    assert header.split()[-6:] == ["duplicate", "REST", "snapshot", "depth", "update", "seconds"]
    assert row.split()[-4:] == ["1", "1", "3,451", "0.00"]
    assert file.accounted  # rows read are the tick-bearing lines: 10 == 9 + 0 + 1


def test_ingest_reports_the_lines_the_adapter_counted_as_not_ticks(tick_store, monkeypatch):
    def opened(*args, **kwargs):
        source = open_source(*args, **kwargs)
        candidates = source.chunks

        def chunks():
            for chunk in candidates:
                source.not_ticks["heartbeat"] += 2  # as an adapter counts them while reading
                yield chunk

        source.chunks = chunks()
        return source

    monkeypatch.setattr(ingest, "open_source", opened)

    file = ingest_files([DHAN], "dhan", tick_store, chunk_rows=100).files[0]

    assert (file.not_ticks, file.rows_read, file.accounted) == ({"heartbeat": 8}, 356, True)


def test_a_bad_file_anywhere_in_the_list_stores_nothing(tick_store, tmp_path):
    missing = tmp_path / "PETR4_06032025.csv"

    with pytest.raises(SourceFileError, match="no such file"):
        ingest_files([B3_FILES[0], missing], "b3", tick_store)

    assert (tick_store.symbols(), tick_store.stats()) == ([], [])


def test_reading_a_file_declares_nothing_and_ingesting_it_declares_its_new_symbol(
    tick_store, user_instruments
):
    ticks = read_b3(B3_FILES[0], symbol="NEWSYM")
    assert (len(ticks), user_instruments.exists(), is_declared("NEWSYM")) == (3_961, False, False)

    file = ingest_files([B3_FILES[0]], "b3", tick_store, symbol="NEWSYM").files[0]

    declared = yaml.safe_load(user_instruments.read_text())["symbols"]
    assert (file.ticks_new, declared, tick_store.symbols()) == (
        3_961,
        {"NEWSYM": {"venue": "B3"}},
        ["NEWSYM"],
    )
