"""Each real-file reader turns its sample into schema-valid canonical ticks and accounts for every row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_store.instruments import get_instrument
from feature_store.schema import TICK_COLUMNS, validate_ticks
from pipelines.sources import read_b3, read_dhan, read_kite, read_lobster, read_report

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LOBSTER = DATA / "lobster" / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
DHAN = DATA / "nse" / "dhan_nifty_futures_ticks.csv"
KITE = DATA / "nse" / "kiteconnect_nifty_futures_ticks.csv"

# (reader, file, rows read, rows returned, rows skipped by reason), counted by hand from the files.
B3_COUNTS = {
    "05032025": (4043, {"crossed_book": 82}),  # Ash Wednesday: a crossed pre-open book for 30 minutes
    "06032025": (5711, {"crossed_book": 1}),
    "07032025": (3948, {}),
    "10032025": (4050, {}),
    "11032025": (4639, {}),
    "12032025": (2471, {}),
    "13032025": (2898, {"crossed_book": 1}),
    "14032025": (6836, {}),
    "17032025": (4078, {}),
    "18032025": (2136, {"crossed_book": 1}),
    "19032025": (1819, {"crossed_book": 3}),
    "20032025": (4502, {}),
    "21032025": (4552, {"crossed_book": 1}),
    "24032025": (2748, {}),
    "25032025": (4264, {}),
    "26032025": (2664, {}),
    "27032025": (2964, {}),
    "28032025": (3577, {}),
    "31032025": (3294, {"crossed_book": 5}),
}
CASES = [
    pytest.param(read_lobster, LOBSTER, 57_515, {}, id="lobster"),
    pytest.param(read_dhan, DHAN, 356, {"oi_packet": 1}, id="dhan"),
    pytest.param(read_kite, KITE, 271, {}, id="kite"),
    *(
        pytest.param(read_b3, DATA / "b3" / f"PETR4_{day}.csv", rows, skipped, id=f"b3-{day}")
        for day, (rows, skipped) in B3_COUNTS.items()
    ),
]
# First and last tick (UTC) of each single-file source: checks the time-zone handling.
SPANS = [
    pytest.param(
        read_lobster, LOBSTER, "2012-06-21 13:30:00.017459617", "2012-06-21 19:59:59.959359650", id="lobster"
    ),
    pytest.param(read_dhan, DHAN, "2025-12-29 07:17:02.553384", "2025-12-29 07:21:53.990422", id="dhan"),
    pytest.param(read_kite, KITE, "2025-12-29 07:17:00", "2025-12-29 07:21:59", id="kite"),
]


@pytest.mark.parametrize(("reader", "path", "rows_read", "skipped"), CASES)
def test_reader_accounts_for_every_row(reader, path, rows_read, skipped):
    ticks = reader(path)

    report = read_report(ticks)

    assert (report.rows_read, report.skipped, report.rows_returned) == (
        rows_read,
        skipped,
        rows_read - sum(skipped.values()),
    )
    assert len(ticks) == report.rows_returned


@pytest.mark.parametrize(("reader", "path", "rows_read", "skipped"), CASES)
def test_reader_returns_schema_valid_canonical_ticks(reader, path, rows_read, skipped):
    ticks = reader(path)

    validated = validate_ticks(ticks)

    assert tuple(validated.columns) == TICK_COLUMNS


# Not LOBSTER: its prices are exact integers / 10000, and 63 hidden executions are at a half-cent midpoint.
@pytest.mark.parametrize(("reader", "path", "rows_read", "skipped"), CASES[1:])
def test_reader_prices_sit_on_the_tick_grid(reader, path, rows_read, skipped):
    ticks = reader(path)
    tick = get_instrument(ticks["symbol"].iloc[0]).tick_size

    traded = ticks.loc[ticks["size"] > 0, ["price", "bid", "ask"]].to_numpy().ravel()
    on_grid = traded / tick

    np.testing.assert_allclose(on_grid[~np.isnan(on_grid)], np.round(on_grid[~np.isnan(on_grid)]), atol=1e-6)


@pytest.mark.parametrize(("reader", "path", "rows_read", "skipped"), CASES)
def test_reader_volume_is_nondecreasing_and_quotes_trade_nothing(reader, path, rows_read, skipped):
    ticks = reader(path)

    quotes = ticks["size"] == 0

    assert ticks["volume"].is_monotonic_increasing
    assert (ticks.loc[quotes, "side"] == 0).all()


@pytest.mark.parametrize(("reader", "path", "first", "last"), SPANS)
def test_reader_converts_times_to_utc(reader, path, first, last):
    ticks = reader(path)

    span = (ticks["ts"].iloc[0], ticks["ts"].iloc[-1])

    assert span == (pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC"))


def test_b3_float_artefacts_are_snapped_to_the_tick():
    ticks = read_b3(DATA / "b3" / "PETR4_12032025.csv")

    first_bid = ticks["bid"].iloc[0]  # 34.160000000000004 in the file

    assert first_bid == 34.16


def test_b3_aggressor_code_4_is_a_buy_and_3_a_sell():
    ticks = read_b3(DATA / "b3" / "PETR4_07032025.csv")
    trades = ticks.loc[ticks["size"] > 0]

    # Buyers lift the ask and sellers hit the bid: the aggressor shows in where the trade prints.
    mid = (trades["bid"] + trades["ask"]) / 2

    assert (trades.loc[trades["side"] == 1, "price"] >= mid[trades["side"] == 1]).mean() > 0.6
    assert (trades.loc[trades["side"] == -1, "price"] <= mid[trades["side"] == -1]).mean() > 0.6


def test_lobster_execution_aggressor_is_opposite_to_the_resting_order():
    ticks = read_lobster(LOBSTER)

    first = ticks.iloc[0]  # a hidden execution against a resting sell order (direction -1)

    assert (first["size"], first["side"], first["price"]) == (1.0, 1, 223.82)


def test_lobster_quotes_carry_the_last_trade_price():
    ticks = read_lobster(LOBSTER)

    second = ticks.iloc[1]  # a new limit order right after the first execution

    assert (second["size"], second["price"]) == (0.0, 223.82)


def test_lobster_skips_and_counts_trading_halt_rows(tmp_path):
    messages = tmp_path / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
    orderbook = tmp_path / "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv"
    messages.write_text("34200.1,1,11,100,2238100,1\n34200.2,7,0,0,-1,-1\n34200.3,4,11,50,2238100,1\n")
    orderbook.write_text("2239500,100,2238100,100\n2239500,100,2238100,100\n2239500,100,2238100,50\n")

    ticks = read_lobster(messages)

    assert (list(ticks["seq"]), read_report(ticks).skipped) == ([0, 2], {"trading_halt": 1})


def test_dhan_side_is_the_tick_rule_where_volume_grew():
    ticks = read_dhan(DHAN)

    traded = ticks.loc[ticks["size"] > 0]
    direction = np.sign(ticks["price"].diff()).loc[traded.index]

    assert (traded.loc[direction != 0, "side"] == direction[direction != 0]).all()


def test_kite_size_is_the_increase_of_volume_traded():
    ticks = read_kite(KITE)

    size = ticks["volume"].diff().fillna(0.0)

    np.testing.assert_array_equal(ticks["size"].to_numpy(), size.to_numpy())


@pytest.mark.parametrize("where", ["header", "rows"])
def test_kite_reads_a_file_with_trailing_commas(tmp_path, where):
    header, *rows = KITE.read_text().splitlines()
    if where == "header":
        header += ","
    else:
        rows = [row + "," for row in rows]
    trailing = tmp_path / "kite_trailing_commas.csv"
    trailing.write_text("\n".join([header, *rows]) + "\n")

    ticks = read_kite(trailing)

    pd.testing.assert_frame_equal(ticks, read_kite(KITE))
