"""Each format adapter turns its real sample files into schema-valid ticks, deriving what the source lacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from feature_store.instruments import get_instrument, load_instruments
from feature_store.schema import TICK_COLUMNS, validate_ticks
from pipelines.ingest import ingest_files
from pipelines.sources import Mapping, MappingError, read_b3, read_dhan, read_kite, read_lobster, read_source
from tests.data import DATA

LOBSTER = DATA / "lobster" / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
DHAN = DATA / "nse" / "dhan_nifty_futures_ticks.csv"
KITE = DATA / "nse" / "kiteconnect_nifty_futures_ticks.csv"
EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"

# Rows read and rows quarantined by reason, counted by hand from the files.
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
    pytest.param("lobster", LOBSTER, 57_515, {}, id="lobster"),
    pytest.param("dhan", DHAN, 356, {}, id="dhan"),  # the one `oi` packet is folded in as a quote tick
    pytest.param("kite", KITE, 271, {}, id="kite"),
    *(
        pytest.param("b3", DATA / "b3" / f"PETR4_{day}.csv", rows, reasons, id=f"b3-{day}")
        for day, (rows, reasons) in B3_COUNTS.items()
    ),
]
READERS = {"lobster": read_lobster, "b3": read_b3, "dhan": read_dhan, "kite": read_kite}
# First and last tick (UTC) of each single-file source: checks the time-zone handling.
SPANS = [
    pytest.param(
        "lobster", LOBSTER, "2012-06-21 13:30:00.017459617", "2012-06-21 19:59:59.959359650", id="lobster"
    ),
    pytest.param("dhan", DHAN, "2025-12-29 07:17:02.553384", "2025-12-29 07:21:53.990422", id="dhan"),
    pytest.param("kite", KITE, "2025-12-29 07:17:00", "2025-12-29 07:21:59", id="kite"),
]


@pytest.fixture(autouse=True)
def user_instruments(tmp_path, monkeypatch) -> Path:
    """The user's instruments overlay lives in the test's directory: declaring a symbol touches nothing else."""
    path = tmp_path / "instruments.yaml"
    monkeypatch.setenv("TICKML_INSTRUMENTS", str(path))
    return path


@pytest.mark.parametrize(("fmt", "path", "rows_read", "reasons"), CASES)
def test_adapter_accounts_for_every_row(fmt, path, rows_read, reasons):
    result = read_source(path, fmt)

    quarantined = result.quarantine["reason"].value_counts().to_dict()

    assert (result.rows_read, quarantined, len(result.ticks)) == (
        rows_read,
        reasons,
        rows_read - sum(reasons.values()),
    )


@pytest.mark.parametrize(("fmt", "path", "rows_read", "reasons"), CASES)
def test_reader_returns_schema_valid_canonical_ticks(fmt, path, rows_read, reasons):
    ticks = READERS[fmt](path)

    validated = validate_ticks(ticks)

    assert tuple(validated.columns) == TICK_COLUMNS


# Not LOBSTER: its prices are exact integers / 10000, and 63 hidden executions are at a half-cent midpoint.
@pytest.mark.parametrize(("fmt", "path", "rows_read", "reasons"), CASES[1:])
def test_traded_prices_sit_on_the_tick_grid(fmt, path, rows_read, reasons):
    ticks = READERS[fmt](path)
    tick = get_instrument(ticks["symbol"].iloc[0]).tick_size

    traded = ticks.loc[ticks["size"] > 0, ["price", "bid", "ask"]].to_numpy().ravel()
    on_grid = traded[~np.isnan(traded)] / tick

    np.testing.assert_allclose(on_grid, np.round(on_grid), atol=1e-6)


@pytest.mark.parametrize(("fmt", "path", "rows_read", "reasons"), CASES)
def test_volume_is_nondecreasing_and_quotes_trade_nothing(fmt, path, rows_read, reasons):
    ticks = READERS[fmt](path)

    quotes = ticks["size"] == 0

    assert ticks["volume"].is_monotonic_increasing
    assert (ticks.loc[quotes, "side"] == 0).all()


@pytest.mark.parametrize(("fmt", "path"), [("lobster", LOBSTER), ("b3", DATA / "b3" / "PETR4_05032025.csv")])
def test_volume_is_derived_as_the_running_sum_of_size(fmt, path):
    ticks = READERS[fmt](path)

    running = ticks["size"].cumsum()

    np.testing.assert_array_equal(ticks["volume"].to_numpy(), running.to_numpy())


@pytest.mark.parametrize(("fmt", "path"), [("dhan", DHAN), ("kite", KITE)])
def test_size_is_derived_as_the_increase_of_the_cumulative_volume(fmt, path):
    ticks = READERS[fmt](path)

    increase = ticks["volume"].diff().fillna(0.0)

    np.testing.assert_array_equal(ticks["size"].to_numpy(), increase.to_numpy())


@pytest.mark.parametrize(("fmt", "path", "first", "last"), SPANS)
def test_adapter_converts_times_to_utc(fmt, path, first, last):
    ticks = READERS[fmt](path)

    span = (ticks["ts"].iloc[0], ticks["ts"].iloc[-1])

    assert span == (pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC"))


@pytest.mark.parametrize(
    ("fmt", "path", "chunk_rows"),
    [
        ("lobster", LOBSTER, 5_000),
        ("b3", DATA / "b3" / "PETR4_05032025.csv", 7),
        ("dhan", DHAN, 7),
        ("kite", KITE, 7),
    ],
)
def test_reading_in_small_chunks_gives_the_same_ticks(fmt, path, chunk_rows):
    whole = read_source(path, fmt)

    chunked = read_source(path, fmt, chunk_rows=chunk_rows)

    pd.testing.assert_frame_equal(chunked.ticks, whole.ticks)


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


def test_b3_seq_is_rpt_seq():
    ticks = read_b3(DATA / "b3" / "PETR4_05032025.csv")

    first = ticks.iloc[0]  # PETR4,3347,2025-03-05 15:30:00.072423823+00:00,book,,,,36.09,35.93

    assert (first["seq"], first["ts"]) == (3347, pd.Timestamp("2025-03-05 15:30:00.072423823", tz="UTC"))


def test_b3_quotes_before_the_first_trade_are_priced_at_their_own_mid():
    ticks = read_b3(DATA / "b3" / "PETR4_05032025.csv")

    first = ticks.iloc[0]  # bid 35.93, ask 36.09, nothing traded yet

    assert first["price"] == pytest.approx(36.01)


def test_b3_crossed_book_rows_are_quarantined_with_the_prices():
    result = read_source(DATA / "b3" / "PETR4_05032025.csv", "b3")

    first = result.quarantine.iloc[0]  # PETR4,3383,...,book,,,,35.4,35.93

    assert (first["row"], first["reason"], first["detail"]) == (1, "crossed_book", "bid=35.93 > ask=35.4")


def test_lobster_execution_aggressor_is_opposite_to_the_resting_order():
    ticks = read_lobster(LOBSTER)

    first = ticks.iloc[0]  # a hidden execution against a resting sell order (direction -1)

    assert (first["size"], first["side"], first["price"]) == (1.0, 1, 223.82)


def test_lobster_quotes_carry_the_last_trade_price():
    ticks = read_lobster(LOBSTER)

    second = ticks.iloc[1]  # a new limit order right after the first execution

    assert (second["size"], second["price"]) == (0.0, 223.82)


def test_lobster_identical_hidden_executions_are_distinct_fills():
    ticks = read_lobster(LOBSTER)

    # rows 1259 and 1260 are byte-identical hidden executions of 20 shares at the same nanosecond
    pair = ticks.loc[ticks["seq"].isin([1259, 1260]), ["ts", "size", "price"]]

    assert len(pair) == 2 and pair["size"].tolist() == [20.0, 20.0]


def _write_lobster(directory: Path, messages: list[str], books: list[str], levels: int = 1) -> Path:
    message = directory / f"AMZN_2012-06-21_34200000_57600000_message_{levels}.csv"
    message.write_text("".join(f"{m}\n" for m in messages))
    message.with_name(message.name.replace("_message_", "_orderbook_")).write_text(
        "".join(f"{b}\n" for b in books)
    )
    return message


def test_lobster_reads_an_orderbook_of_any_depth(tmp_path):
    messages = LOBSTER.read_text().splitlines()[:2000]
    books = (
        LOBSTER.with_name(LOBSTER.name.replace("_message_", "_orderbook_")).read_text().splitlines()[:2000]
    )
    deeper = [f"{b},{b},{b}" for b in books]  # three levels: level 1 first, padded with copies of it
    three_levels = _write_lobster(tmp_path, messages, deeper, levels=3)

    ticks = read_lobster(three_levels)

    pd.testing.assert_frame_equal(ticks, read_lobster(LOBSTER).iloc[:2000])


def test_lobster_symbol_and_date_override_the_file_name(tmp_path):
    message = tmp_path / "amazon_messages.csv"
    message.write_text("34200.1,4,11,50,2238100,1\n")
    orderbook = tmp_path / "amazon_book.csv"
    orderbook.write_text("2239500,100,2238100,50\n")

    ticks = read_lobster(message, orderbook, symbol="AMZN", date="2012-06-22")

    assert ticks["ts"].iloc[0] == pd.Timestamp("2012-06-22 13:30:00.1", tz="UTC")


def test_lobster_without_an_orderbook_beside_it_names_the_missing_file(tmp_path):
    message = tmp_path / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
    message.write_text("34200.1,4,11,50,2238100,1\n")

    with pytest.raises(FileNotFoundError, match="AMZN_2012-06-21_34200000_57600000_orderbook_1.csv"):
        read_lobster(message)


def test_dhan_side_is_the_tick_rule_where_volume_grew():
    ticks = read_dhan(DHAN)

    traded = ticks.loc[ticks["size"] > 0]
    direction = np.sign(ticks["price"].diff()).loc[traded.index]

    assert (traded.loc[direction != 0, "side"] == direction[direction != 0]).all()


def test_dhan_open_interest_packet_becomes_a_quote_tick_carrying_price_and_book():
    ticks = read_dhan(DHAN)

    oi_packet = ticks.loc[ticks["seq"] == 1].iloc[0]  # 12:47:02.555390,oi,,,11148150,,,...
    before = ticks.loc[ticks["seq"] == 0].iloc[0]

    assert (oi_packet["size"], oi_packet["oi"]) == (0.0, 11148150.0)
    assert oi_packet[["price", "volume", "bid", "ask", "bid_size", "ask_size"]].tolist() == (
        before[["price", "volume", "bid", "ask", "bid_size", "ask_size"]].tolist()
    )


def test_kite_symbol_is_the_root_of_the_futures_contract():
    ticks = read_source(KITE, "kite").ticks  # trading_symbol NIFTY25DECFUT

    symbols = ticks["symbol"].unique().tolist()

    assert symbols == ["NIFTY"]


def test_reading_an_unknown_symbol_of_a_known_venue_gives_its_ticks_and_declares_nothing(user_instruments):
    ticks = read_kite(KITE, symbol="NIFTYNXT50")

    assert (len(ticks), user_instruments.exists(), "NIFTYNXT50" in load_instruments()) == (271, False, False)


def test_ingesting_an_unknown_symbol_of_a_known_venue_declares_it_in_the_users_instruments(
    user_instruments, tick_store
):
    ingest_files([KITE], "kite", tick_store, symbol="NIFTYNXT50")

    declared = yaml.safe_load(user_instruments.read_text())["symbols"]["NIFTYNXT50"]

    assert (declared, len(tick_store.read_ticks("NIFTYNXT50")), get_instrument("NIFTYNXT50").timezone) == (
        {"venue": "NSE"},
        271,
        "Asia/Kolkata",
    )


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


def test_kite_reads_a_file_with_crlf_line_ends(tmp_path):
    crlf = tmp_path / "kite_crlf.csv"
    crlf.write_bytes(KITE.read_bytes().replace(b"\n", b"\r\n"))

    ticks = read_kite(crlf)

    pd.testing.assert_frame_equal(ticks, read_kite(KITE))


# The documented example: docs/examples/ticks-example.csv through docs/examples/mapping-example.yaml.
def test_mapped_example_derives_volume_side_and_carried_fields():
    result = read_source(EXAMPLES / "ticks-example.csv", "mapped", mapping=EXAMPLES / "mapping-example.yaml")

    ticks = result.ticks.set_index("seq")

    assert ticks["ts"].iloc[0] == pd.Timestamp("2025-12-29 07:17:02.553", tz="UTC")  # 12:47:02.553 IST
    assert ticks["price"].tolist() == [25974.9, 25974.9, 25974.8, 25974.9, 25974.9]  # paise / 100, carried
    assert ticks["volume"].tolist() == [75.0, 75.0, 225.0, 300.0, 375.0]  # running sum of qty
    assert ticks["side"].tolist() == [1, 0, -1, 1, 1]  # B, quote, S, N -> tick rule (up-tick, then zero tick)
    assert ticks.loc[3, ["bid", "bid_size", "oi"]].tolist() == [
        25974.7,
        75.0,
        11148225.0,
    ]  # blank cells carried


def test_mapped_example_quarantines_its_negative_price():
    result = read_source(EXAMPLES / "ticks-example.csv", "mapped", mapping=EXAMPLES / "mapping-example.yaml")

    row = result.quarantine.iloc[0]

    assert (len(result.quarantine), row["row"], row["reason"], row["detail"]) == (
        1,
        5,
        "bad_price",
        "price=-0.05",
    )


def test_mapped_reads_parquet_with_epoch_timestamps(tmp_path):
    source = tmp_path / "ticks.parquet"
    frame = pd.DataFrame(
        {
            "t": [1_766_992_622_553_000_000, 1_766_992_623_120_000_000],
            "price": [25974.9, 25974.8],
            "cum": [3_333_675, 3_333_825],
        }
    )
    frame.to_parquet(source)
    mapping = {
        "venue": "NSE",
        "columns": {
            "ts": {"column": "t", "format": "epoch", "unit": "ns"},
            "symbol": {"value": "NIFTY"},
            "price": "price",
            "volume": "cum",
        },
    }

    ticks = read_source(source, "mapped", mapping=Mapping.from_dict(mapping)).ticks

    assert ticks[["ts", "size", "side"]].values.tolist() == [
        [pd.Timestamp(1_766_992_622_553_000_000, tz="UTC"), 0.0, 0],
        [pd.Timestamp(1_766_992_623_120_000_000, tz="UTC"), 150.0, -1],
    ]


BASE_MAPPING = {"columns": {"ts": "time", "symbol": "sym", "price": "px", "size": "qty"}}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        pytest.param(
            {"columns": {**BASE_MAPPING["columns"], "prise": "px"}}, "columns.prise", id="unknown-field"
        ),
        pytest.param(
            {"columns": {"ts": "time", "symbol": "sym", "size": "qty"}}, "columns.price", id="missing-price"
        ),
        pytest.param({"timezone": "Asia/Bombay2"}, "timezone", id="bad-timezone"),
        pytest.param({"venue": "LSE"}, "venue", id="unknown-venue"),
        pytest.param({"price_scale": 0}, "price_scale", id="zero-scale"),
        pytest.param({"file": {"format": "xlsx"}}, "file.format", id="bad-format"),
        pytest.param({"file": {"header": False}}, "file.names", id="headerless-without-names"),
        pytest.param({"colums": {}}, "colums", id="misspelt-top-level-key"),
        pytest.param(
            {
                "columns": {
                    **BASE_MAPPING["columns"],
                    "ts": {"column": "time", "format": "epoch", "unit": "sec"},
                }
            },
            "columns.ts.unit",
            id="bad-epoch-unit",
        ),
        pytest.param(
            {"columns": {**BASE_MAPPING["columns"], "side": {"column": "s", "values": {"B": 2}}}},
            "columns.side.values.B",
            id="bad-side-value",
        ),
    ],
)
def test_a_mapping_error_names_the_bad_key(tmp_path, change, key):
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump({**BASE_MAPPING, **change}))

    with pytest.raises(MappingError, match=rf"mapping\.yaml: {key}:"):
        Mapping.load(path)


def test_a_mapped_column_missing_from_the_file_names_it(tmp_path):
    source = tmp_path / "ticks.csv"
    source.write_text("time,sym,price,qty\n2025-12-29T07:17:00Z,NIFTY,25974.9,75\n")
    mapping = Mapping.from_dict(BASE_MAPPING)

    with pytest.raises(MappingError, match=r"lacks column\(s\) \['px'\]"):
        read_source(source, "mapped", mapping=mapping)


def test_mapped_cumulative_volume_restarts_each_trading_day(tmp_path):
    source = tmp_path / "ticks.csv"
    source.write_text(
        "time,price,qty\n"
        "2025-12-29T04:30:00Z,26000,75\n"
        "2025-12-29T04:30:01Z,26000.05,75\n"
        "2025-12-30T04:30:00Z,26010,150\n"
    )
    mapping = {
        "venue": "NSE",
        "columns": {"ts": "time", "symbol": {"value": "NIFTY"}, "price": "price", "size": "qty"},
    }

    ticks = read_source(source, "mapped", mapping=Mapping.from_dict(mapping)).ticks

    assert ticks["volume"].tolist() == [75.0, 150.0, 150.0]


def test_mapped_reads_parquet_timestamps_with_a_zone(tmp_path):
    source = tmp_path / "ticks.parquet"
    pd.DataFrame(
        {
            "t": pd.to_datetime(["2025-12-29 10:00:00", "2025-12-29 10:00:01"]).tz_localize("Asia/Kolkata"),
            "sym": ["NIFTY", "NIFTY"],
            "px": [26000.0, 26000.05],
            "cum": [1000.0, 1075.0],
        }
    ).to_parquet(source)
    mapping = {"columns": {"ts": "t", "symbol": "sym", "price": "px", "volume": "cum"}}

    ticks = read_source(source, "mapped", mapping=Mapping.from_dict(mapping)).ticks

    assert ticks[["ts", "size"]].values.tolist() == [
        [pd.Timestamp("2025-12-29 04:30:00", tz="UTC"), 0.0],
        [pd.Timestamp("2025-12-29 04:30:01", tz="UTC"), 75.0],
    ]


def test_bytes_that_are_not_utf8_do_not_stop_the_file(tmp_path):
    source = tmp_path / "ticks.csv"
    source.write_bytes(
        b"time,price,qty,note\n"
        b"2025-12-29T04:30:00Z,26000,75,caf\xe9\n"  # latin-1, not UTF-8
        b"2025-12-29T04:30:01Z,26000.05,75,ok\n"
    )
    mapping = {
        "venue": "NSE",
        "columns": {"ts": "time", "symbol": {"value": "NIFTY"}, "price": "price", "size": "qty"},
    }

    result = read_source(source, "mapped", mapping=Mapping.from_dict(mapping))

    assert (len(result.ticks), len(result.quarantine)) == (2, 0)
