"""The tick store contract, run against every backend through the parametrized `tick_store` fixture."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import re
import time

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from feature_store.schema import PREDICTION_COLUMNS, coerce_predictions, coerce_ticks, empty_ticks
from feature_store.store import ParquetTickStore, PostgresTickStore, TickKey, TickStore, open_store

# 2025-12-29 10:00 IST; a NIFTY session day on NSE
T0 = pd.Timestamp("2025-12-29 04:30:00", tz="UTC").value


def make_ticks(offsets_ns: list[int], seqs: list[int] | None = None, symbol: str = "NIFTY", **columns):
    """Canonical ticks of `symbol` at T0 + offsets (epoch ns, UTC); other columns may be overridden."""
    n = len(offsets_ns)
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(T0 + np.asarray(offsets_ns, dtype=np.int64), unit="ns", utc=True),
            "symbol": symbol,
            "seq": list(range(n)) if seqs is None else seqs,
            "price": 24000.0 + np.arange(n) * 0.05,
            "size": 75.0,
            "volume": 75.0 * (np.arange(n) + 1),
            "side": np.resize(np.array([1, -1, 0], dtype=np.int8), n),
            "bid": 23999.95,
            "ask": 24000.05,
            "bid_size": 150.0,
            "ask_size": 225.0,
            "oi": 1.2e7,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return coerce_ticks(frame)


def make_predictions(ticks: pd.DataFrame, version: str = "1") -> pd.DataFrame:
    """One prediction with every PREDICTION_COLUMNS field per tick, scored at a sub-microsecond time."""
    n = len(ticks)
    frame = pd.DataFrame({"symbol": ticks["symbol"], "ts": ticks["ts"], "seq": ticks["seq"]})
    for col in PREDICTION_COLUMNS:
        if col.startswith(("p15_", "p30_")):
            frame[col] = 0.125
    frame["signal"] = "UP"
    frame["confidence"] = 0.6180339887498949
    frame["action"] = ["BUY", None][:n] + ["NONE"] * max(n - 2, 0)  # None: a nullable text field
    frame["reason"] = ["", "cooldown, 30s left"][:n] + ["ok"] * max(n - 2, 0)
    frame["model_15m_version"] = version
    frame["model_30m_version"] = "7"
    frame["scored_at"] = ticks["ts"] + pd.Timedelta(nanoseconds=1_234_567)
    return coerce_predictions(frame)


def location(store: TickStore) -> tuple[type[TickStore], str]:
    """Backend class and where it stores, enough to open another handle (also in another process)."""
    if isinstance(store, ParquetTickStore):
        return ParquetTickStore, str(store.root)
    return PostgresTickStore, store.url


def reopen(store: TickStore) -> TickStore:
    """A second, independent handle on the same storage."""
    backend, where = location(store)
    return backend(where)


def utc_ts(ns: int | None) -> pd.Timestamp | None:
    return None if ns is None else pd.Timestamp(ns, tz="UTC")


# ticks: round trip and idempotency ---------------------------------------------------------------------


def test_round_trip_preserves_every_column_dtype_and_nanosecond(tick_store: TickStore) -> None:
    ticks = make_ticks([1, 2, 999, 1_000_001], price=[0.1 + 0.2, 33.980000000000004, 24000.05, 1e-9])

    tick_store.write_ticks(ticks)
    stored = tick_store.read_ticks("NIFTY")

    pd.testing.assert_frame_equal(stored, ticks, check_exact=True)


def test_write_returns_number_of_new_ticks(tick_store: TickStore) -> None:
    ticks = make_ticks([0, 10, 20])

    new = tick_store.write_ticks(ticks)

    assert new == 3


def test_writing_the_same_ticks_twice_stores_them_once(tick_store: TickStore) -> None:
    ticks = make_ticks([0, 10, 20])
    tick_store.write_ticks(ticks)

    new = tick_store.write_ticks(ticks)

    assert new == 0
    pd.testing.assert_frame_equal(tick_store.read_ticks("NIFTY"), ticks)


def test_overlapping_batch_adds_only_the_new_ticks(tick_store: TickStore) -> None:
    ticks = make_ticks(list(range(0, 90, 10)))
    tick_store.write_ticks(ticks.iloc[:6])

    new = tick_store.write_ticks(ticks.iloc[3:])

    assert new == 3
    pd.testing.assert_frame_equal(tick_store.read_ticks("NIFTY"), ticks)


def test_stored_tick_wins_over_a_resent_key_with_other_values(tick_store: TickStore) -> None:
    original = make_ticks([0, 10])
    tick_store.write_ticks(original)
    resent = make_ticks([0, 10, 20], price=[1.0, 2.0, 3.0])  # two known keys, one new tick

    tick_store.write_ticks(resent)

    expected = pd.concat([original, resent.iloc[2:]], ignore_index=True)
    pd.testing.assert_frame_equal(tick_store.read_ticks("NIFTY"), expected)


def test_batch_interleaved_with_stored_ticks_adds_only_the_new_ones(tick_store: TickStore) -> None:
    tick_store.write_ticks(make_ticks([10, 30], seqs=[1, 3]))

    new = tick_store.write_ticks(make_ticks([0, 10, 20, 40], seqs=[0, 1, 2, 4]))

    assert new == 3
    assert tick_store.read_ticks("NIFTY")["seq"].tolist() == [0, 1, 2, 3, 4]


def test_batch_appended_after_the_stored_ticks_of_a_day_adds_them_all(tick_store: TickStore) -> None:
    tick_store.write_ticks(make_ticks([0, 10], seqs=[0, 1]))

    new = tick_store.write_ticks(make_ticks([10, 20], seqs=[2, 3]))  # same ns as the last, later seq

    assert new == 2
    assert tick_store.read_ticks("NIFTY")["seq"].tolist() == [0, 1, 2, 3]


def test_appends_to_one_day_read_back_once_in_order(tick_store: TickStore) -> None:
    ticks = make_ticks(list(range(0, 400, 10)))
    for start in range(0, 40, 3):  # batches of 3 after the last stored tick, as a live feed writes them
        tick_store.write_ticks(ticks.iloc[start : start + 3])

    stored = tick_store.read_ticks("NIFTY")

    pd.testing.assert_frame_equal(stored, ticks)


def test_ticks_after_pages_through_appends_of_one_day_once(tick_store: TickStore) -> None:
    for start in range(0, 40, 3):
        seqs = list(range(start, min(start + 3, 40)))
        tick_store.write_ticks(make_ticks([seq * 10 for seq in seqs], seqs=seqs))
    pages, after = [], None

    while not (page := tick_store.ticks_after("NIFTY", after, limit=7)).empty:
        pages.append(page)
        after = TickKey(page["ts"].iloc[-1].value, int(page["seq"].iloc[-1]))

    assert pd.concat(pages)["seq"].tolist() == list(range(40))


def test_batch_overlapping_several_appends_adds_only_its_new_ticks(tick_store: TickStore) -> None:
    ticks = make_ticks(list(range(0, 120, 10)))
    for start in (0, 3, 6, 9):  # four appends of three ticks
        tick_store.write_ticks(ticks.iloc[start : start + 3])
    resent = make_ticks([5, 10, 45, 60, 125], seqs=[20, 1, 21, 6, 22], price=9.0)  # 10 and 60 are stored

    new = tick_store.write_ticks(resent)

    expected = pd.concat([ticks, resent.iloc[[0, 2, 4]]]).sort_values(["ts", "seq"], ignore_index=True)
    assert new == 3
    pd.testing.assert_frame_equal(tick_store.read_ticks("NIFTY"), expected)


def test_predictions_written_batch_by_batch_read_back_once_in_order(tick_store: TickStore) -> None:
    predictions = make_predictions(make_ticks(list(range(0, 100, 10))))
    for start in range(0, 10, 4):
        tick_store.write_predictions(predictions.iloc[start : start + 4])

    new = tick_store.write_predictions(predictions.iloc[2:7])  # all stored already

    assert new == 0
    pd.testing.assert_frame_equal(tick_store.read_predictions(), predictions)


def test_a_rejected_batch_over_several_days_stores_none_of_them(tick_store: TickStore) -> None:
    next_day = pd.Timedelta(days=1).value
    ticks = make_ticks([0, next_day, 2 * next_day])
    ticks.loc[2, "price"] = -1.0

    with pytest.raises(pa.errors.SchemaErrors):
        tick_store.write_ticks(ticks)

    assert (tick_store.days("NIFTY"), tick_store.stats()) == ([], [])


def test_ticks_written_out_of_order_are_read_in_ts_seq_order(tick_store: TickStore) -> None:
    ticks = make_ticks([30, 10, 10, 20], seqs=[4, 2, 1, 3])

    tick_store.write_ticks(ticks)

    assert tick_store.read_ticks("NIFTY")["seq"].tolist() == [1, 2, 3, 4]


def test_timestamps_in_another_zone_are_stored_and_read_as_utc(tick_store: TickStore) -> None:
    ticks = make_ticks([5, 6])
    local = ticks.assign(ts=ticks["ts"].dt.tz_convert("Asia/Kolkata"))

    tick_store.write_ticks(local)

    pd.testing.assert_frame_equal(tick_store.read_ticks("NIFTY"), ticks)


def test_missing_nullable_values_round_trip_as_nan(tick_store: TickStore) -> None:
    ticks = make_ticks([0, 1, 2], bid_size=[np.nan, 5.0, np.nan], bid=[np.nan, 23999.95, 23999.9], oi=np.nan)

    tick_store.write_ticks(ticks)

    pd.testing.assert_frame_equal(tick_store.read_ticks("NIFTY"), ticks)


def test_empty_frame_writes_nothing(tick_store: TickStore) -> None:
    new = tick_store.write_ticks(empty_ticks())

    assert (new, tick_store.symbols()) == (0, [])


# ticks: invalid input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "bad_value", "check"),
    [
        ("price", 0.0, "greater_than(0)"),
        ("price", -24000.0, "greater_than(0)"),
        ("bid", 24000.10, "book_not_crossed"),  # bid above the ask of 24000.05
        ("side", 2, "isin"),
        ("size", -1.0, "greater_than_or_equal_to(0)"),
    ],
)
def test_invalid_tick_rejects_the_whole_batch_naming_the_check(
    tick_store: TickStore, column: str, bad_value: float, check: str
) -> None:
    ticks = make_ticks([0, 10, 20])
    ticks.loc[1, column] = bad_value

    with pytest.raises(pa.errors.SchemaErrors, match=re.escape(check)):
        tick_store.write_ticks(ticks)

    assert tick_store.read_ticks("NIFTY").empty


@pytest.mark.parametrize(
    ("offsets", "seqs"),
    [([0, 10, 10], [0, 1, 1]), ([10, 0, 20, 10], [1, 0, 2, 1])],  # adjacent, and apart in an unsorted batch
)
def test_a_key_repeated_within_a_batch_rejects_it_naming_the_check(
    tick_store: TickStore, offsets: list[int], seqs: list[int]
) -> None:
    ticks = make_ticks(offsets, seqs=seqs)

    with pytest.raises(pa.errors.SchemaErrors, match="unique_key"):
        tick_store.write_ticks(ticks)

    assert tick_store.read_ticks("NIFTY").empty


@pytest.mark.parametrize("column", ["price", "size", "volume"])
def test_a_missing_required_value_rejects_the_batch(tick_store: TickStore, column: str) -> None:
    ticks = make_ticks([0, 10])
    ticks.loc[1, column] = np.nan

    with pytest.raises(pa.errors.SchemaErrors, match=column):
        tick_store.write_ticks(ticks)

    assert tick_store.read_ticks("NIFTY").empty


def test_tick_of_an_unknown_symbol_is_rejected(tick_store: TickStore) -> None:
    ticks = pd.concat([make_ticks([0]), make_ticks([0], symbol="NOSUCH")], ignore_index=True)

    with pytest.raises(KeyError, match="NOSUCH"):
        tick_store.write_ticks(ticks)

    assert tick_store.symbols() == []


# ticks: reading ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected_seqs"),
    [
        (None, None, [0, 1, 2, 3]),
        (T0 + 10, None, [1, 2, 3]),  # start is inclusive
        (None, T0 + 20, [0, 1]),  # end is exclusive
        (T0 + 11, T0 + 30, [2]),
        (T0 + 30, T0 + 30, []),
    ],
)
def test_read_ticks_bounds_are_start_inclusive_end_exclusive(
    tick_store: TickStore, start: int | None, end: int | None, expected_seqs: list[int]
) -> None:
    tick_store.write_ticks(make_ticks([0, 10, 20, 30]))

    stored = tick_store.read_ticks("NIFTY", utc_ts(start), utc_ts(end))

    assert stored["seq"].tolist() == expected_seqs


def test_read_ticks_of_a_symbol_without_ticks_is_an_empty_canonical_frame(tick_store: TickStore) -> None:
    tick_store.write_ticks(make_ticks([0]))

    stored = tick_store.read_ticks("AMZN")

    pd.testing.assert_frame_equal(stored, empty_ticks())


def test_ticks_after_none_returns_all_ticks(tick_store: TickStore) -> None:
    tick_store.write_ticks(make_ticks([0, 10, 20]))

    stored = tick_store.ticks_after("NIFTY", None)

    assert stored["seq"].tolist() == [0, 1, 2]


def test_ticks_after_a_key_is_strictly_after_in_ts_seq_order(tick_store: TickStore) -> None:
    # three events share one nanosecond; seq orders them
    tick_store.write_ticks(make_ticks([0, 10, 10, 10, 20], seqs=[0, 1, 2, 3, 4]))

    stored = tick_store.ticks_after("NIFTY", TickKey(T0 + 10, 1))

    assert stored["seq"].tolist() == [2, 3, 4]


@pytest.mark.parametrize(("limit", "expected_seqs"), [(2, [1, 2]), (0, []), (10, [1, 2, 3])])
def test_ticks_after_returns_at_most_limit_ticks(
    tick_store: TickStore, limit: int, expected_seqs: list[int]
) -> None:
    tick_store.write_ticks(make_ticks([0, 10, 20, 30]))

    stored = tick_store.ticks_after("NIFTY", TickKey(T0, 0), limit=limit)

    assert stored["seq"].tolist() == expected_seqs


def test_ticks_after_continues_into_the_next_trading_day(tick_store: TickStore) -> None:
    next_day = pd.Timedelta(days=1).value
    tick_store.write_ticks(make_ticks([0, 10, next_day, next_day + 10], seqs=[0, 1, 0, 1]))

    stored = tick_store.ticks_after("NIFTY", TickKey(T0 + 10, 1), limit=5)

    assert stored["ts"].tolist() == [utc_ts(T0 + next_day), utc_ts(T0 + next_day + 10)]


# stored seqs of a symbol-day ---------------------------------------------------------------------------

DAY0 = dt.date(2025, 12, 29)  # the NIFTY trading day of T0


def test_stored_seqs_are_the_sorted_distinct_seqs_of_one_symbol_day(tick_store: TickStore) -> None:
    next_day = pd.Timedelta(days=1).value
    tick_store.write_ticks(make_ticks([0, 10, 10, 20], seqs=[9, 3, 5, 3]))  # seq 3 twice, at two ts
    tick_store.write_ticks(make_ticks([next_day], seqs=[4]))
    tick_store.write_ticks(make_ticks([0], seqs=[7], symbol="AMZN"))

    seqs = tick_store.stored_seqs("NIFTY", DAY0)

    assert (seqs.dtype, seqs.tolist()) == (np.dtype(np.int64), [3, 5, 9])


@pytest.mark.parametrize(
    ("first", "last", "expected"), [(4, 9, [5, 9]), (None, 5, [3, 5]), (6, None, [9]), (6, 8, [])]
)
def test_stored_seqs_are_bounded_by_first_and_last_inclusive(
    tick_store: TickStore, first: int | None, last: int | None, expected: list[int]
) -> None:
    tick_store.write_ticks(make_ticks([0, 10, 20], seqs=[3, 5, 9]))

    seqs = tick_store.stored_seqs("NIFTY", DAY0, first, last)

    assert seqs.tolist() == expected


def test_stored_seqs_of_a_day_without_ticks_are_empty(tick_store: TickStore) -> None:
    tick_store.write_ticks(make_ticks([0]))

    assert tick_store.stored_seqs("NIFTY", DAY0 + dt.timedelta(days=1)).tolist() == []


# the derived cumulative volume of a symbol-day ---------------------------------------------------------


def test_rederive_volume_makes_it_the_running_sum_of_size_in_ts_seq_order(tick_store: TickStore) -> None:
    late, early = make_ticks([30, 40], seqs=[3, 4]), make_ticks([10, 20], seqs=[1, 2])
    late["volume"], early["volume"] = [75.0, 150.0], [75.0, 150.0]  # each file summed its own sizes
    tick_store.write_ticks(late)
    tick_store.write_ticks(early)

    changed = tick_store.rederive_volume("NIFTY", DAY0)

    assert (changed, tick_store.read_ticks("NIFTY")["volume"].tolist()) == (2, [75.0, 150.0, 225.0, 300.0])


def test_rederive_volume_of_a_consistent_day_changes_nothing(tick_store: TickStore) -> None:
    ticks = make_ticks([0, 10, 20])
    tick_store.write_ticks(ticks)

    changed = tick_store.rederive_volume("NIFTY", DAY0)

    assert changed == 0
    pd.testing.assert_frame_equal(tick_store.read_ticks("NIFTY"), ticks)


def test_rederive_volume_touches_only_its_symbol_day(tick_store: TickStore) -> None:
    next_day = pd.Timedelta(days=1).value
    other = pd.concat([make_ticks([next_day]), make_ticks([0], symbol="AMZN")], ignore_index=True)
    other["volume"] = 1.0
    tick_store.write_ticks(make_ticks([0, 10], volume=[5.0, 6.0]))
    tick_store.write_ticks(other)

    tick_store.rederive_volume("NIFTY", DAY0)

    assert tick_store.read_ticks("NIFTY")["volume"].tolist() == [75.0, 150.0, 1.0]
    assert tick_store.read_ticks("AMZN")["volume"].tolist() == [1.0]
    assert tick_store.rederive_volume("NIFTY", DAY0 - dt.timedelta(days=1)) == 0  # no ticks that day


def _rederive_often(backend: type[TickStore], where: str, rounds: int) -> None:
    """Alternately break the day's volume (a merge of early ticks) and rederive it."""
    store = backend(where)
    for r in range(rounds):
        early = make_ticks([-1_000 * (r + 1)], seqs=[10_000 + r], volume=0.0)
        store.write_ticks(early)
        store.rederive_volume("NIFTY", DAY0)
    store.close()


def _running_sum(ticks: pd.DataFrame) -> bool:
    return np.array_equal(ticks["volume"].to_numpy(), ticks["size"].cumsum().to_numpy())


def test_readers_never_see_a_day_half_rederived(tick_store: TickStore) -> None:
    day = make_ticks(list(range(0, 4_000, 10)))
    for start in range(0, 400, 100):  # several appends: several parts of the day where parts exist
        tick_store.write_ticks(day.iloc[start : start + 100])
    rounds = 30
    spawn = multiprocessing.get_context("spawn")
    writer = spawn.Process(target=_rederive_often, args=(*location(tick_store), rounds))
    reads, broken = 0, 0

    writer.start()
    while writer.is_alive():
        ticks = tick_store.read_ticks("NIFTY")
        reads += 1
        broken += not (_running_sum(ticks) or _running_sum(ticks.iloc[1:]))  # iloc[1:]: before its rederive
    writer.join(timeout=60)

    assert (writer.exitcode, broken, reads > 0) == (0, 0, True)
    assert _running_sum(tick_store.read_ticks("NIFTY"))


# symbols and trading days ------------------------------------------------------------------------------


def test_symbols_are_sorted_and_only_those_with_ticks(tick_store: TickStore) -> None:
    both = pd.concat([make_ticks([0], symbol="NIFTY"), make_ticks([0], symbol="AMZN")], ignore_index=True)

    tick_store.write_ticks(both)

    assert tick_store.symbols() == ["AMZN", "NIFTY"]


@pytest.mark.parametrize(
    ("symbol", "utc_time", "trading_day"),
    [
        ("NIFTY", "2025-12-29 23:30", dt.date(2025, 12, 30)),  # 05:00 IST the next morning
        ("AMZN", "2025-12-30 01:00", dt.date(2025, 12, 29)),  # 20:00 in New York the evening before
    ],
)
def test_days_are_exchange_local_trading_days_not_utc_dates(
    tick_store: TickStore, symbol: str, utc_time: str, trading_day: dt.date
) -> None:
    offset = pd.Timestamp(utc_time, tz="UTC").value - T0
    tick_store.write_ticks(make_ticks([offset], symbol=symbol))

    days = tick_store.days(symbol)

    assert days == [trading_day]


def test_days_of_a_symbol_without_ticks_is_empty(tick_store: TickStore) -> None:
    tick_store.write_ticks(make_ticks([0]))

    assert tick_store.days("AMZN") == []


# predictions -------------------------------------------------------------------------------------------


def test_predictions_round_trip_every_column(tick_store: TickStore) -> None:
    predictions = make_predictions(make_ticks([1, 2, 3]))

    tick_store.write_predictions(predictions)

    pd.testing.assert_frame_equal(tick_store.read_predictions(), predictions, check_exact=True)


def test_writing_the_same_predictions_twice_stores_them_once(tick_store: TickStore) -> None:
    predictions = make_predictions(make_ticks([1, 2, 3]))
    tick_store.write_predictions(predictions)

    new = tick_store.write_predictions(make_predictions(make_ticks([1, 2, 3, 4]), version="2"))

    assert new == 1
    assert tick_store.read_predictions()["model_15m_version"].tolist() == ["1", "1", "1", "2"]


def test_shadow_predictions_are_kept_apart_from_the_champions(tick_store: TickStore) -> None:
    champion = make_predictions(make_ticks([1, 2, 3]))
    shadow = make_predictions(make_ticks([1, 2, 3]), version="7")
    tick_store.write_predictions(champion)

    new = tick_store.write_predictions(shadow, shadow=True)
    again = tick_store.write_predictions(shadow, shadow=True)

    assert (new, again) == (3, 0)
    pd.testing.assert_frame_equal(tick_store.read_predictions(), champion, check_exact=True)
    stored = tick_store.read_predictions("NIFTY", utc_ts(T0 + 2), None, shadow=True)
    assert stored["model_15m_version"].tolist() == ["7", "7"]


def test_read_predictions_filters_by_symbol_and_utc_bounds(tick_store: TickStore) -> None:
    tick_store.write_predictions(make_predictions(make_ticks([0, 10, 20], symbol="NIFTY")))
    tick_store.write_predictions(make_predictions(make_ticks([0, 10, 20], symbol="AMZN")))

    stored = tick_store.read_predictions("NIFTY", utc_ts(T0 + 10), utc_ts(T0 + 20))

    assert list(zip(stored["symbol"], stored["seq"], strict=True)) == [("NIFTY", 1)]


def test_predictions_of_all_symbols_are_ordered_by_symbol_ts_seq(tick_store: TickStore) -> None:
    tick_store.write_predictions(make_predictions(make_ticks([10, 0], seqs=[1, 0], symbol="NIFTY")))
    tick_store.write_predictions(make_predictions(make_ticks([5], symbol="AMZN")))

    stored = tick_store.read_predictions()

    keys = list(zip(stored["symbol"], stored["seq"], strict=True))
    assert keys == [("AMZN", 0), ("NIFTY", 0), ("NIFTY", 1)]


# cursors -----------------------------------------------------------------------------------------------


def test_cursor_never_set_is_none(tick_store: TickStore) -> None:
    assert tick_store.get_cursor("stream:NIFTY") is None


def test_cursor_set_then_get_returns_the_value(tick_store: TickStore) -> None:
    tick_store.set_cursor("stream:NIFTY", "1767000000000000001:7")

    assert tick_store.get_cursor("stream:NIFTY") == "1767000000000000001:7"


def test_cursor_set_again_overwrites(tick_store: TickStore) -> None:
    tick_store.set_cursor("stream/NIFTY", "a")

    tick_store.set_cursor("stream/NIFTY", "b")

    assert tick_store.get_cursor("stream/NIFTY") == "b"


def test_cursor_survives_reopening_the_store(tick_store: TickStore) -> None:
    tick_store.set_cursor("stream:NIFTY", "42")
    tick_store.close()

    reopened = reopen(tick_store)

    assert reopened.get_cursor("stream:NIFTY") == "42"
    reopened.close()


# a live feed: one process appends every few ms while this one follows with ticks_after -----------------


def _feed(backend: type[TickStore], where: str, batches: int, batch_size: int) -> None:
    store = backend(where)  # the writer process's own handle: own connection, own file descriptors
    for b in range(batches):
        seqs = list(range(b * batch_size, (b + 1) * batch_size))
        store.write_ticks(make_ticks([seq * 1_000 for seq in seqs], seqs=seqs))
        time.sleep(0.005)
    store.close()


def test_reader_following_a_live_writer_sees_every_tick_once_in_order(tick_store: TickStore) -> None:
    batches, batch_size = 60, 20
    spawn = multiprocessing.get_context("spawn")  # not fork: pyarrow and libpq hold threads and sockets
    writer = spawn.Process(target=_feed, args=(*location(tick_store), batches, batch_size))
    seen: list[int] = []
    after: TickKey | None = None
    deadline = time.monotonic() + 120

    writer.start()
    while len(seen) < batches * batch_size and time.monotonic() < deadline:
        new = tick_store.ticks_after("NIFTY", after, limit=50)
        if new.empty:
            time.sleep(0.002)
            continue
        seen += new["seq"].tolist()
        after = TickKey(new["ts"].iloc[-1].value, int(new["seq"].iloc[-1]))
    writer.join(timeout=60)

    assert writer.exitcode == 0
    assert seen == list(range(batches * batch_size))


def test_full_reads_while_a_live_writer_appends_are_each_a_gapless_prefix(tick_store: TickStore) -> None:
    batches, batch_size = 60, 20
    spawn = multiprocessing.get_context("spawn")
    writer = spawn.Process(target=_feed, args=(*location(tick_store), batches, batch_size))
    broken: list[list[int]] = []  # reads with a tick twice, or one missing before the newest shown
    last: list[int] = []
    deadline = time.monotonic() + 120

    writer.start()
    while len(last) < batches * batch_size and time.monotonic() < deadline:
        last = tick_store.read_ticks("NIFTY")["seq"].tolist()
        if last != list(range(len(last))):
            broken.append(last)
    writer.join(timeout=60)

    assert writer.exitcode == 0
    assert broken == []
    assert last == list(range(batches * batch_size))


def _feed_across_days(backend: type[TickStore], where: str, batches: int, per_day: int) -> None:
    """Batch b holds the last `per_day` ticks of day b and the first `per_day` of day b + 1."""
    store = backend(where)
    day = pd.Timedelta(days=1).value
    for b in range(batches):
        offsets = [b * day + 1_000 * (per_day + i) for i in range(per_day)]
        offsets += [(b + 1) * day + 1_000 * i for i in range(per_day)]
        store.write_ticks(
            make_ticks(offsets, seqs=[per_day + i for i in range(per_day)] + list(range(per_day)))
        )
        time.sleep(0.005)
    store.close()


def test_reader_following_a_writer_of_two_day_batches_sees_every_tick_once(tick_store: TickStore) -> None:
    batches, per_day = 40, 10
    spawn = multiprocessing.get_context("spawn")
    writer = spawn.Process(target=_feed_across_days, args=(*location(tick_store), batches, per_day))
    seen: list[int] = []
    after: TickKey | None = None
    deadline = time.monotonic() + 120

    writer.start()
    while len(seen) < 2 * batches * per_day and time.monotonic() < deadline:
        new = tick_store.ticks_after("NIFTY", after, limit=50)
        if new.empty:
            time.sleep(0.001)
            continue
        seen += new["ts"].map(lambda ts: ts.value).tolist()
        after = TickKey(new["ts"].iloc[-1].value, int(new["seq"].iloc[-1]))
    writer.join(timeout=60)

    day = pd.Timedelta(days=1).value
    expected = [T0 + d * day + 1_000 * i for d in range(batches + 1) for i in range(2 * per_day)]
    expected = expected[per_day:-per_day]  # day 0 starts and the last day ends mid-way
    assert writer.exitcode == 0
    assert seen == expected


# choosing the backend ----------------------------------------------------------------------------------


def test_open_store_without_url_is_parquet_under_tickml_home(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("TICKML_PG_URL", raising=False)
    monkeypatch.setenv("TICKML_HOME", str(tmp_path / "home"))

    store = open_store()

    assert isinstance(store, ParquetTickStore)
    assert store.root == tmp_path / "home"


def test_open_store_treats_an_empty_pg_url_as_unset(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TICKML_PG_URL", "")

    store = open_store(home=tmp_path)

    assert isinstance(store, ParquetTickStore)


def test_open_store_with_tickml_pg_url_is_postgres(monkeypatch, pg_db_url: str) -> None:
    monkeypatch.setenv("TICKML_PG_URL", pg_db_url)

    store = open_store()

    assert isinstance(store, PostgresTickStore)
    store.close()
