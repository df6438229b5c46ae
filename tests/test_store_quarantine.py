"""Quarantine and stats, part of the tick store contract: run against every backend (`tick_store` fixture)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from feature_store.schema import QUARANTINE_COLUMNS, QUARANTINE_REASONS, coerce_quarantine
from feature_store.store import TickStore
from tests.test_store_contract import T0, make_ticks

SOURCE = "/data/nifty-2025-12-29.csv"
DAY = "2025-12-29"


def make_quarantine(rows: list[int], source: str = SOURCE, **columns) -> pd.DataFrame:
    """Quarantined rows of `source` at the given row numbers; other columns may be overridden."""
    n = len(rows)
    frame = pd.DataFrame(
        {
            "source": source,
            "row": rows,
            "symbol": "NIFTY",
            "day": DAY,
            "ts": pd.to_datetime(T0 + pd.Series(rows, dtype="int64") * 1_000 + 7, unit="ns", utc=True),
            "reason": "bad_price",
            "detail": "price -1.0 <= 0",
            "raw": [f"2025-12-29T10:00:00,NIFTY,-1.0,{r}" for r in rows],
            "quarantined_at": pd.Timestamp("2026-01-02 08:00:00.123456789", tz="UTC"),
        }
    )
    for name, values in columns.items():
        frame[name] = [values] * n if isinstance(values, str) else values
    return coerce_quarantine(frame)


# writing and reading ------------------------------------------------------------------------------------


def test_quarantine_round_trips_every_column_to_the_nanosecond(tick_store: TickStore) -> None:
    rows = make_quarantine([0, 1, 2], raw=["a,b\n", 'quoted "x",', ""], detail=["", "NaN", "é ü 日本"])

    tick_store.write_quarantine(rows)

    pd.testing.assert_frame_equal(tick_store.read_quarantine(), rows, check_exact=True)


def test_quarantine_unknown_symbol_day_and_time_round_trip_as_empty_and_nat(tick_store: TickStore) -> None:
    rows = make_quarantine([3], symbol="", day="", reason="unparseable", ts=pd.NaT)

    tick_store.write_quarantine(rows)

    pd.testing.assert_frame_equal(tick_store.read_quarantine(), rows, check_exact=True)


def test_write_quarantine_returns_the_number_of_new_rows(tick_store: TickStore) -> None:
    new = tick_store.write_quarantine(make_quarantine([0, 1, 2]))

    assert new == 3


def test_quarantining_the_same_rows_twice_stores_them_once(tick_store: TickStore) -> None:
    tick_store.write_quarantine(make_quarantine([0, 1, 2]))

    new = tick_store.write_quarantine(make_quarantine([1, 2, 3], detail="again"))

    assert new == 1
    assert tick_store.read_quarantine()["detail"].tolist() == ["price -1.0 <= 0"] * 3 + ["again"]


UNKNOWN_SYMBOL = {"symbol": "FOO", "day": "", "reason": "unknown_symbol"}
OUTSIDE_SESSION = {"symbol": "FOO", "day": DAY, "reason": "outside_session"}


@pytest.mark.parametrize(
    ("first", "again"),
    [
        (UNKNOWN_SYMBOL, OUTSIDE_SESSION),  # the instrument was configured between two ingests
        (OUTSIDE_SESSION, UNKNOWN_SYMBOL),
        (
            {"symbol": "NIFTY", "day": DAY, "reason": "bad_price"},
            {"symbol": "AMZN", "day": "2025-12-30", "reason": "crossed_book"},
        ),
    ],
    ids=["unknown-day-then-a-day", "a-day-then-unknown-day", "another-symbol-and-day"],
)
def test_a_row_quarantined_again_under_another_symbol_or_day_keeps_the_first(
    tick_store: TickStore, first: dict, again: dict
) -> None:
    tick_store.write_quarantine(make_quarantine([4], **first))

    new = tick_store.write_quarantine(make_quarantine([4], **again))

    assert new == 0
    assert tick_store.read_quarantine()[["symbol", "day", "reason"]].to_dict("records") == [first]


def test_stats_count_a_row_quarantined_again_under_another_day_once(tick_store: TickStore) -> None:
    tick_store.write_quarantine(make_quarantine([4], **UNKNOWN_SYMBOL))
    tick_store.write_quarantine(make_quarantine([4], **OUTSIDE_SESSION))

    stats = tick_store.stats()

    assert [(s["symbol"], s["day"], s["reasons"]) for s in stats] == [("FOO", "", {"unknown_symbol": 1})]


def test_same_row_number_of_another_source_is_another_row(tick_store: TickStore) -> None:
    tick_store.write_quarantine(make_quarantine([5]))

    new = tick_store.write_quarantine(make_quarantine([5], source="/data/other.csv"))

    assert new == 1


def test_quarantine_is_read_ordered_by_source_then_row(tick_store: TickStore) -> None:
    tick_store.write_quarantine(make_quarantine([10, 2], source="b.csv"))
    tick_store.write_quarantine(make_quarantine([7, 1], source="a.csv", symbol="AMZN"))

    stored = tick_store.read_quarantine()

    assert list(zip(stored["source"], stored["row"], strict=True)) == [
        ("a.csv", 1),
        ("a.csv", 7),
        ("b.csv", 2),
        ("b.csv", 10),
    ]


def test_quarantine_sources_are_ordered_byte_by_byte_like_python_sorts(tick_store: TickStore) -> None:
    sources = ["a.csv", "B.csv", "_x.csv", "Z.csv"]
    for source in sources:
        tick_store.write_quarantine(make_quarantine([0], source=source))

    stored = tick_store.read_quarantine()

    assert stored["source"].tolist() == sorted(sources)  # B, Z, _, a: not a locale's order


@pytest.mark.parametrize(
    ("symbol", "day", "expected_rows"),
    [
        (None, None, [0, 1, 2, 3]),
        ("NIFTY", None, [0, 1, 2]),
        (None, dt.date(2025, 12, 30), [2, 3]),
        ("NIFTY", dt.date(2025, 12, 30), [2]),
        ("AMZN", dt.date(2025, 12, 29), []),
    ],
)
def test_read_quarantine_filters_by_symbol_and_trading_day(
    tick_store: TickStore, symbol: str | None, day: dt.date | None, expected_rows: list[int]
) -> None:
    tick_store.write_quarantine(make_quarantine([0, 1, 2], day=[DAY, DAY, "2025-12-30"]))
    tick_store.write_quarantine(make_quarantine([3], symbol="AMZN", day="2025-12-30"))

    stored = tick_store.read_quarantine(symbol, day)

    assert stored["row"].tolist() == expected_rows


def test_read_quarantine_of_an_empty_store_is_an_empty_canonical_frame(tick_store: TickStore) -> None:
    stored = tick_store.read_quarantine()

    assert (list(stored.columns), len(stored)) == (list(QUARANTINE_COLUMNS), 0)


@pytest.mark.parametrize("symbol", ["NIFTY/25DEC", "..", "a b%2F"])
def test_a_quarantined_symbol_may_be_any_text(tick_store: TickStore, symbol: str) -> None:
    tick_store.write_quarantine(make_quarantine([0], symbol=symbol, reason="unknown_symbol"))

    stored = tick_store.read_quarantine(symbol)

    assert stored["symbol"].tolist() == [symbol]


def test_a_nul_character_in_a_raw_row_is_stored_as_the_replacement_character(tick_store: TickStore) -> None:
    tick_store.write_quarantine(make_quarantine([0], raw="24000.0,\0\0,75", reason="unparseable"))

    stored = tick_store.read_quarantine()

    assert stored["raw"].tolist() == ["24000.0,\ufffd\ufffd,75"]


@pytest.mark.parametrize(
    ("column", "bad_value", "error"),
    [("reason", "too_dirty", ValueError), ("day", "29/12/2025", ValueError), ("source", "", ValueError)],
)
def test_invalid_quarantine_rows_are_rejected_and_nothing_is_stored(
    tick_store: TickStore, column: str, bad_value: str, error: type[Exception]
) -> None:
    rows = make_quarantine([0, 1])
    rows[column] = bad_value

    with pytest.raises(error, match=column if column != "reason" else "too_dirty"):
        tick_store.write_quarantine(rows)

    assert tick_store.read_quarantine().empty


# stats ---------------------------------------------------------------------------------------------------


def test_stats_of_an_empty_store_is_an_empty_list(tick_store: TickStore) -> None:
    assert tick_store.stats() == []


def test_stats_count_ticks_per_symbol_and_trading_day(tick_store: TickStore) -> None:
    next_day = pd.Timedelta(days=1).value
    tick_store.write_ticks(make_ticks([0, 10, 20, next_day]))
    tick_store.write_ticks(make_ticks([0, 5], symbol="AMZN"))

    stats = tick_store.stats()

    assert [(s["symbol"], s["day"], s["ticks"]) for s in stats] == [
        ("AMZN", "2025-12-28", 2),  # 04:30 UTC is the evening before in New York
        ("NIFTY", "2025-12-29", 3),
        ("NIFTY", "2025-12-30", 1),
    ]


def test_stats_count_only_stored_ticks_after_a_repeated_write(tick_store: TickStore) -> None:
    tick_store.write_ticks(make_ticks([0, 10]))
    tick_store.write_ticks(make_ticks([0, 10, 20]))

    [stats] = tick_store.stats()

    assert stats["ticks"] == 3


def test_stats_count_quarantined_rows_by_reason_beside_the_ticks_of_the_day(tick_store: TickStore) -> None:
    tick_store.write_ticks(make_ticks([0, 10]))
    reasons = ["bad_price", "crossed_book", "bad_price", "duplicate"]
    tick_store.write_quarantine(make_quarantine([0, 1, 2, 3], reason=reasons))

    stats = tick_store.stats()

    assert stats == [
        {
            "symbol": "NIFTY",
            "day": DAY,
            "ticks": 2,
            "quarantined": 4,
            "reasons": {"bad_price": 2, "crossed_book": 1, "duplicate": 1},
        }
    ]


def test_stats_show_a_day_with_only_quarantined_rows_with_zero_ticks(tick_store: TickStore) -> None:
    tick_store.write_ticks(make_ticks([0]))
    tick_store.write_quarantine(make_quarantine([0], day="2025-12-30", reason="outside_session"))

    stats = tick_store.stats()

    assert stats[1] == {
        "symbol": "NIFTY",
        "day": "2025-12-30",
        "ticks": 0,
        "quarantined": 1,
        "reasons": {"outside_session": 1},
    }


def test_stats_list_unknown_symbol_and_day_as_empty_strings_first(tick_store: TickStore) -> None:
    tick_store.write_ticks(make_ticks([0]))
    tick_store.write_quarantine(make_quarantine([0], symbol="", day="", reason="truncated"))

    stats = tick_store.stats()

    assert [(s["symbol"], s["day"], s["ticks"], s["quarantined"]) for s in stats] == [
        ("", "", 0, 1),
        ("NIFTY", DAY, 1, 0),
    ]


def test_stats_reasons_follow_the_order_of_quarantine_reasons(tick_store: TickStore) -> None:
    reasons = list(reversed(QUARANTINE_REASONS))
    tick_store.write_quarantine(make_quarantine(list(range(len(reasons))), reason=reasons))

    [stats] = tick_store.stats()

    assert list(stats["reasons"]) == list(QUARANTINE_REASONS)
