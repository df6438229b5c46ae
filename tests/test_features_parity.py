"""Batch and online engines give the same features (the whole catalogue) for the same ticks: simulated,
random and real files; and `parity_report`, the check users run on their own files."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from feature_store.features import FEATURE_NAMES, OnlineFeatures, compute_features, parity_report
from feature_store.features.parity import compare
from feature_store.instruments import Instrument, get_instrument
from feature_store.schema import coerce_ticks, validate_ticks
from pipelines.simulate import simulate_session
from pipelines.sources import read_b3, read_dhan, read_kite, read_lobster
from tests.data import B3_FILES, DATA

RTOL = 1e-9

REAL_FILES = [
    pytest.param(
        read_lobster, DATA / "lobster" / "AMZN_2012-06-21_34200000_57600000_message_1.csv", id="lobster"
    ),
    pytest.param(read_dhan, DATA / "nse" / "dhan_nifty_futures_ticks.csv", id="dhan"),
    pytest.param(read_kite, DATA / "nse" / "kiteconnect_nifty_futures_ticks.csv", id="kite"),
    *(pytest.param(read_b3, path, id=path.stem) for path in B3_FILES),
]


def assert_parity(batch: np.ndarray, online: np.ndarray, names: tuple[str, ...]) -> None:
    """Equal NaN masks and relative differences <= RTOL; on failure, name the worst feature and tick."""
    assert batch.shape == online.shape, f"shapes differ: batch {batch.shape}, online {online.shape}"
    nan_mismatch = np.isnan(batch) != np.isnan(online)
    if nan_mismatch.any():
        rows, cols = np.nonzero(nan_mismatch)
        per_feature = {names[c]: int((cols == c).sum()) for c in np.unique(cols)}
        raise AssertionError(
            f"NaN in one engine only for {per_feature}; first at tick {rows[0]} ({names[cols[0]]}): "
            f"batch {batch[rows[0], cols[0]]!r}, online {online[rows[0], cols[0]]!r}"
        )
    with np.errstate(invalid="ignore"):
        scale = np.maximum(np.abs(batch), np.abs(online))
        rel = np.where(batch == online, 0.0, np.abs(batch - online) / scale)
    rel = np.nan_to_num(rel, nan=0.0)
    worst_row, worst_col = np.unravel_index(np.argmax(rel), rel.shape)
    assert rel[worst_row, worst_col] <= RTOL, (
        f"worst feature {names[worst_col]}: relative difference {rel[worst_row, worst_col]:.3g} at tick "
        f"{worst_row} (batch {batch[worst_row, worst_col]!r}, online {online[worst_row, worst_col]!r})"
    )


def online_one_by_one(ticks: pd.DataFrame, instrument: Instrument) -> np.ndarray:
    """Every tick through `OnlineFeatures.update`, one call each, as the service does."""
    engine = OnlineFeatures(instrument)
    ts = ticks["ts"].array.asi8
    cols = [ticks[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in ("price", "size", "volume", "side")]
    book = [
        ticks[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in ("bid", "ask", "bid_size", "ask_size")
    ]
    out = np.empty((len(ticks), len(FEATURE_NAMES)))
    for i in range(len(ticks)):
        out[i] = engine.update(
            int(ts[i]),
            cols[0][i],
            cols[1][i],
            cols[2][i],
            int(cols[3][i]),
            book[0][i],
            book[1][i],
            book[2][i],
            book[3][i],
        )
    return out


def batch_matrix(ticks: pd.DataFrame, instrument: Instrument) -> np.ndarray:
    return compute_features(ticks, instrument)[list(FEATURE_NAMES)].to_numpy()


def random_walk_ticks(instrument: Instrument, days: list[dt.date], n_per_day: int, seed: int) -> pd.DataFrame:
    """Random-walk canonical ticks over `days`: mixed trades and quotes, and some ticks missing book sizes."""
    rng = np.random.default_rng(seed)
    frames = []
    for day in days:
        open_ts, close_ts = instrument.session_bounds(day)
        ts = np.sort(rng.integers(open_ts.value, close_ts.value, n_per_day))
        tick = instrument.tick_size
        price = instrument.reference_price + tick * np.cumsum(
            rng.choice([-1, 0, 1], n_per_day, p=[0.3, 0.4, 0.3])
        )
        traded = rng.random(n_per_day) < 0.5
        size = np.where(traded, rng.integers(1, 20, n_per_day), 0).astype(float)
        bid = price - tick * rng.integers(0, 2, n_per_day)
        no_sizes = rng.random(n_per_day) < 0.05
        frames.append(
            pd.DataFrame(
                {
                    "ts": ts,
                    "symbol": instrument.symbol,
                    "seq": np.arange(n_per_day),
                    "price": price,
                    "size": size,
                    "volume": np.cumsum(size),
                    "side": np.where(traded, rng.choice([-1, 1], n_per_day), 0),
                    "bid": bid,
                    "ask": bid + tick * rng.integers(1, 4, n_per_day),
                    "bid_size": np.where(no_sizes, np.nan, rng.integers(1, 100, n_per_day)),
                    "ask_size": np.where(no_sizes, np.nan, rng.integers(1, 100, n_per_day)),
                }
            )
        )
    return validate_ticks(coerce_ticks(pd.concat(frames, ignore_index=True)))


TWO_DAYS = [dt.date(2025, 3, 6), dt.date(2025, 3, 7)]


@pytest.mark.parametrize("symbol", ["NIFTY", "AMZN", "PETR4", "BTCUSDT"])
def test_parity_on_random_walk_ticks_over_two_trading_days(symbol):
    instrument = get_instrument(symbol)
    ticks = random_walk_ticks(instrument, TWO_DAYS, n_per_day=3_000, seed=7)

    batch, online = batch_matrix(ticks, instrument), online_one_by_one(ticks, instrument)

    assert_parity(batch, online, FEATURE_NAMES)


@pytest.mark.parametrize("symbol", ["NIFTY", "AMZN"])
def test_parity_on_simulated_sessions_over_two_trading_days(symbol):
    instrument = get_instrument(symbol)
    ticks = pd.concat(
        [simulate_session(instrument, day, seed=11, signal=0.5) for day in TWO_DAYS], ignore_index=True
    )

    batch, online = batch_matrix(ticks, instrument), online_one_by_one(ticks, instrument)

    assert_parity(batch, online, FEATURE_NAMES)


@pytest.mark.parametrize(("reader", "path"), REAL_FILES)
def test_parity_on_real_file(reader, path):
    ticks = reader(path)
    instrument = get_instrument(ticks["symbol"].iloc[0])

    batch, online = batch_matrix(ticks, instrument), online_one_by_one(ticks, instrument)

    assert_parity(batch, online, FEATURE_NAMES)


def test_parity_on_the_b3_month_as_one_multi_day_stream():
    ticks = pd.concat([read_b3(path) for path in B3_FILES], ignore_index=True)
    instrument = get_instrument("PETR4")

    batch, online = batch_matrix(ticks, instrument), online_one_by_one(ticks, instrument)

    assert_parity(batch, online, FEATURE_NAMES)


def test_online_update_many_in_chunks_equals_batch():
    instrument = get_instrument("NIFTY")
    ticks = random_walk_ticks(instrument, TWO_DAYS, n_per_day=1_000, seed=3)
    engine = OnlineFeatures(instrument)

    # Chunk edges fall mid-warm-up, mid-day and on the day boundary.
    chunks = [engine.update_many(ticks.iloc[a:b]) for a, b in [(0, 17), (17, 500), (500, 1000), (1000, 2000)]]

    assert_parity(batch_matrix(ticks, instrument), np.vstack(chunks), FEATURE_NAMES)


def test_assert_parity_names_the_worst_feature():
    batch = np.ones((3, len(FEATURE_NAMES)))
    online = batch.copy()
    online[2, FEATURE_NAMES.index("spread_ticks")] = 1.001

    with pytest.raises(AssertionError, match="worst feature spread_ticks"):
        assert_parity(batch, online, FEATURE_NAMES)


def test_assert_parity_flags_nan_in_one_engine_only():
    batch = np.ones((3, len(FEATURE_NAMES)))
    online = batch.copy()
    online[1, 0] = np.nan

    with pytest.raises(AssertionError, match="NaN in one engine only"):
        assert_parity(batch, online, FEATURE_NAMES)


def test_parity_report_passes_on_a_simulated_session():
    instrument = get_instrument("NIFTY")
    ticks = simulate_session(instrument, TWO_DAYS[0], seed=3, signal=0.5).iloc[:2_000]

    report = parity_report(ticks, instrument)

    assert (report.ok, report.ticks, report.nan_mismatches) == (True, 2_000, 0)


def test_parity_report_names_the_worst_feature_and_its_relative_difference():
    batch = np.ones((3, len(FEATURE_NAMES)))
    online = batch.copy()
    online[2, FEATURE_NAMES.index("rsi_14")] = 1.001

    report = compare(batch, online)

    assert (report.ok, report.worst_feature, report.worst_tick) == (False, "rsi_14", 2)
    assert report.worst_rel_diff == pytest.approx(0.001 / 1.001)


def test_parity_report_fails_on_nan_in_one_engine_only():
    batch = np.ones((3, len(FEATURE_NAMES)))
    online = batch.copy()
    online[0, 5] = np.nan

    report = compare(batch, online)

    assert (report.ok, report.nan_mismatches, report.worst_feature) == (False, 1, FEATURE_NAMES[5])


def test_parity_report_renders_what_was_compared():
    report = compare(np.zeros((4, len(FEATURE_NAMES))), np.zeros((4, len(FEATURE_NAMES))))

    assert report.render().startswith(f"parity OK: 4 ticks x {len(FEATURE_NAMES)} features")
