"""The Parquet tick store's own layout: part files per day, compaction, publication order, earlier layouts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_store.store import ParquetTickStore
from feature_store.store.parquet import QUARANTINE_ARROW_SCHEMA, TICK_ARROW_SCHEMA
from tests.test_store_contract import make_ticks
from tests.test_store_quarantine import DAY, make_quarantine

NEXT_DAY = pd.Timedelta(days=1).value


@pytest.fixture
def store(tmp_path: Path) -> ParquetTickStore:
    return ParquetTickStore(tmp_path / "tickml")


def day_dir(store: ParquetTickStore, day: str = DAY) -> Path:
    return store.root / "ticks" / "symbol=NIFTY" / f"day={day}"


def parts(folder: Path) -> list[Path]:
    """The part files of a day, oldest ticks first (names start with the first tick's epoch ns)."""
    return sorted(folder.glob("part-*.parquet"))


def ticks_at(offsets: range) -> pd.DataFrame:
    """NIFTY ticks at T0 + offsets ns with seq = offset."""
    return make_ticks(list(offsets), seqs=list(offsets))


def write_parquet(frame: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), path)


# appends -----------------------------------------------------------------------------------------------


def test_an_append_after_the_last_tick_leaves_the_stored_part_untouched(store: ParquetTickStore) -> None:
    store.write_ticks(ticks_at(range(100)))
    [stored] = parts(day_dir(store))
    before = (stored.stat().st_ino, stored.read_bytes())

    store.write_ticks(ticks_at(range(100, 110)))

    assert (stored.stat().st_ino, stored.read_bytes()) == before


def test_an_append_reads_nothing_of_the_stored_ticks(store: ParquetTickStore) -> None:
    store.write_ticks(ticks_at(range(100)))
    [stored] = parts(day_dir(store))
    stored.write_bytes(b"not parquet")  # any read of the stored ticks would now fail

    new = store.write_ticks(ticks_at(range(100, 110)))

    assert new == 10


def test_many_small_appends_keep_a_day_in_few_parts(store: ParquetTickStore) -> None:
    for start in range(0, 1000, 10):
        store.write_ticks(ticks_at(range(start, start + 10)))

    # at most one part per bit of the 100 appends: sizes at least double towards the older parts
    assert len(parts(day_dir(store))) <= 7


def test_an_overlapping_write_rewrites_only_the_parts_it_overlaps(store: ParquetTickStore) -> None:
    for offsets in (range(100), range(100, 110), range(110, 115)):  # each smaller: never compacted
        store.write_ticks(ticks_at(offsets))
    first, middle, last = parts(day_dir(store))

    store.write_ticks(make_ticks([104, 105], seqs=[104, 1000]))  # one stored tick, one new

    now = parts(day_dir(store))
    assert (first in now, middle in now, last in now) == (True, False, True)


def test_a_part_left_by_a_writer_that_died_before_publishing_is_not_read(store: ParquetTickStore) -> None:
    store.write_ticks(make_ticks([0, 10]))
    write_parquet(make_ticks([5], seqs=[7]), TICK_ARROW_SCHEMA, day_dir(store) / "part-1-dead.parquet")

    stored = store.read_ticks("NIFTY")

    assert stored["seq"].tolist() == [0, 1]


def test_the_next_write_to_a_day_removes_a_part_left_by_a_writer_that_died(store: ParquetTickStore) -> None:
    store.write_ticks(make_ticks([0, 10]))
    orphan = day_dir(store) / "part-1-dead.parquet"
    write_parquet(make_ticks([5], seqs=[7]), TICK_ARROW_SCHEMA, orphan)

    store.write_ticks(make_ticks([20], seqs=[2]))

    assert not orphan.exists()


# publication order -------------------------------------------------------------------------------------


def test_a_later_day_is_not_published_when_an_earlier_day_of_the_write_fails(store: ParquetTickStore) -> None:
    # The days of a write are prepared in parallel but published in ascending order, so a stream reading
    # NIFTY never sees the 30th before the new ticks of the 29th. A day whose write fails stops the write:
    # the 30th, prepared meanwhile, must never appear.
    day_dir(store).mkdir(parents=True)
    (day_dir(store) / "_parts.json").write_text("not a manifest")

    with pytest.raises(json.JSONDecodeError):
        store.write_ticks(make_ticks([0, NEXT_DAY], seqs=[0, 0]))

    assert dt.date(2025, 12, 30) not in store.days("NIFTY")
    assert parts(day_dir(store, "2025-12-30")) == []


# earlier layouts ---------------------------------------------------------------------------------------


def test_a_day_stored_as_one_file_reads_and_takes_new_ticks(store: ParquetTickStore) -> None:
    write_parquet(make_ticks([0, 10]), TICK_ARROW_SCHEMA, day_dir(store) / "ticks.parquet")

    new = store.write_ticks(make_ticks([0, 10, 20]))

    assert new == 1
    assert store.read_ticks("NIFTY")["seq"].tolist() == [0, 1, 2]


def test_an_append_as_large_as_a_day_stored_as_one_file_compacts_the_file_away(
    store: ParquetTickStore,
) -> None:
    write_parquet(ticks_at(range(3)), TICK_ARROW_SCHEMA, day_dir(store) / "ticks.parquet")

    store.write_ticks(ticks_at(range(3, 6)))

    assert not (day_dir(store) / "ticks.parquet").exists()
    assert store.read_ticks("NIFTY")["seq"].tolist() == list(range(6))


def test_quarantine_stored_per_symbol_and_day_is_moved_to_its_source_on_open(tmp_path: Path) -> None:
    rows = make_quarantine([0, 1])
    legacy = tmp_path / "tickml" / "quarantine" / "symbol=NIFTY" / f"day={DAY}" / "quarantine.parquet"
    write_parquet(rows, QUARANTINE_ARROW_SCHEMA, legacy)

    store = ParquetTickStore(tmp_path / "tickml")

    pd.testing.assert_frame_equal(store.read_quarantine(), rows)
    assert not legacy.exists()
