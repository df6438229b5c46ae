"""One exchange event, stored once: a second capture of the same events stores nothing new, whatever its
receive times, row numbers or the order its files arrive in (docs/ingest.md, "Identity")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.ingest import ingest_files
from pipelines.sources import read_source
from tests.data import DATA, DHAN, KITE

B3 = DATA / "b3" / "PETR4_05032025.csv"
B3_TICKS, B3_CROSSED = 3_961, 82


@pytest.fixture(autouse=True)
def user_instruments(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "instruments.yaml"
    monkeypatch.setenv("TICKML_INSTRUMENTS", str(path))
    return path


def _rewrite(path: Path, out: Path, column: str, change) -> Path:
    """`path` with `change` applied to every value of the CSV column `column` (the rest byte for byte)."""
    header, *rows = path.read_text().splitlines()
    k = header.split(",").index(column)
    cells = [row.split(",") for row in rows]
    for row in cells:
        row[k] = change(row[k])
    out.write_text("\n".join([header, *(",".join(row) for row in cells)]) + "\n")
    return out


def _later(text: str) -> str:
    return str(pd.Timestamp(text) + pd.Timedelta(nanoseconds=250_000))


def test_a_second_recorders_capture_with_later_receive_times_stores_nothing_new(tick_store, tmp_path):
    first = ingest_files([B3], "b3", tick_store).files[0]
    copy = _rewrite(B3, tmp_path / B3.name, "network_received_time", _later)

    again = ingest_files([copy], "b3", tick_store).files[0]

    assert (first.ticks_new, first.quarantined) == (B3_TICKS, {"crossed_book": B3_CROSSED})
    assert (again.ticks_new, again.ticks_already, again.quarantined) == (
        0,
        B3_TICKS,
        {"crossed_book": B3_CROSSED},
    )
    stored = tick_store.read_ticks("PETR4")
    assert (len(stored), stored["seq"].is_unique) == (B3_TICKS, True)


def test_a_day_whose_second_half_arrives_first_has_a_monotone_volume_adding_up(tick_store, tmp_path):
    header, *rows = B3.read_text().splitlines()
    half = len(rows) // 2
    second, first = tmp_path / "PETR4_second.csv", tmp_path / "PETR4_first.csv"
    second.write_text("\n".join([header, *rows[half:]]) + "\n")
    first.write_text("\n".join([header, *rows[:half]]) + "\n")

    report = ingest_files([second, first], "b3", tick_store)

    stored = tick_store.read_ticks("PETR4")
    assert sum(f.ticks_new for f in report.files) == len(stored) == B3_TICKS
    assert stored["volume"].is_monotonic_increasing
    assert stored["volume"].iloc[-1] == stored["size"].sum()
    np.testing.assert_array_equal(stored["volume"].to_numpy(), stored["size"].cumsum().to_numpy())


@pytest.mark.parametrize("chunk_rows", [7, 1000, 100_000])  # 1000: the repeat opens a chunk
def test_an_exchange_event_twice_in_one_file_is_a_duplicate_whatever_its_receive_time(tmp_path, chunk_rows):
    header, *rows = B3.read_text().splitlines()
    repeated = rows[999].split(",")  # an A/B feed pair: the same rpt_seq received again 250 µs later
    repeated[2] = _later(repeated[2])
    path = tmp_path / B3.name
    path.write_text("\n".join([header, *rows[:1000], ",".join(repeated), *rows[1000:]]) + "\n")

    result = read_source(path, "b3", chunk_rows=chunk_rows)

    duplicate = result.quarantine.loc[result.quarantine["reason"] == "duplicate"]
    assert duplicate[["row", "detail"]].values.tolist() == [
        [1000, f"(symbol, day, seq) = (PETR4, 2025-03-05, {repeated[1]}) was kept already"]
    ]
    assert len(result.ticks) == B3_TICKS


def _earlier(fmt: str, text: str, seconds: int) -> str:
    shifted = pd.Timestamp(text) - pd.Timedelta(seconds=seconds)
    return str(shifted) if fmt == "kite" else shifted.strftime("%Y-%m-%d %H:%M:%S.%f")


@pytest.mark.parametrize(("fmt", "path"), [("dhan", DHAN), ("kite", KITE)])
def test_an_overlapping_capture_without_exchange_seqs_is_found_by_content(tick_store, tmp_path, fmt, path):
    first = ingest_files([path], fmt, tick_store).files[0]
    header, *rows = path.read_text().splitlines()
    time, rest = rows[0].split(",", 1)
    earlier = [f"{_earlier(fmt, time, s)},{rest}" for s in (3, 2, 1)]  # three ticks before the capture began
    shifted = tmp_path / path.name
    shifted.write_text("\n".join([header, *earlier, *rows]) + "\n")  # every row number moves by three

    again = ingest_files([shifted], fmt, tick_store).files[0]

    stored = tick_store.read_ticks("NIFTY")
    assert (again.ticks_new, again.ticks_already, again.quarantined) == (3, first.ticks_new, {})
    assert len(stored) == first.ticks_new + 3
    assert not stored.duplicated(["ts", "price", "volume", "oi", "bid", "ask"]).any()
