"""Starter features on tiny hand-built tick frames: hand-checked values, warm-up, day reset, NaN inputs."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from feature_store.features import (
    FEATURE_NAMES,
    FEATURES,
    FeatureDef,
    FeatureSet,
    OnlineFeatures,
    compute_features,
    tick_features_v1,
)
from feature_store.instruments import get_instrument
from feature_store.schema import coerce_ticks, validate_ticks

AMZN = get_instrument("AMZN")  # tick 0.01, New York 09:30-16:00
DAY = dt.date(2025, 1, 6)  # a Monday (EST: the session opens 14:30 UTC)
OPEN = AMZN.session_bounds(DAY)[0]


def ticks_frame(
    n: int, *, day: dt.date = DAY, start_s: float = 60.0, step_s: float = 1.0, **columns
) -> pd.DataFrame:
    """`n` canonical AMZN ticks `step_s` seconds apart from `start_s` after the open of `day`.

    Defaults: price 100, quote-only (size 0, side 0), book 99.99/100.01 with 10 x 10; any column can
    be given as a scalar or a length-n sequence. volume is the running sum of size unless given.
    """
    open_ts = AMZN.session_bounds(day)[0]
    data = {
        "ts": [open_ts + pd.Timedelta(seconds=start_s + i * step_s) for i in range(n)],
        "symbol": AMZN.symbol,
        "seq": np.arange(n),
        "price": 100.0,
        "size": 0.0,
        "side": 0,
        "bid": 99.99,
        "ask": 100.01,
        "bid_size": 10.0,
        "ask_size": 10.0,
    }
    data.update(columns)
    frame = pd.DataFrame(data)
    if "volume" not in columns:
        frame["volume"] = frame["size"].cumsum()
    return validate_ticks(coerce_ticks(frame))


def busy_frame(n: int, *, day: dt.date = DAY, seed: int = 1) -> pd.DataFrame:
    """`n` ticks where every input varies: random-walk prices, mixed trades and quotes, a full book."""
    rng = np.random.default_rng(seed)
    price = 100.0 + np.cumsum(rng.choice([-0.01, 0.0, 0.01], n))
    traded = rng.random(n) < 0.6
    return ticks_frame(
        n,
        day=day,
        price=price,
        size=np.where(traded, rng.integers(1, 10, n), 0).astype(float),
        side=np.where(traded, rng.choice([-1, 1], n), 0),
        bid=price - 0.01,
        ask=price + 0.01,
        bid_size=rng.integers(1, 50, n).astype(float),
        ask_size=rng.integers(1, 50, n).astype(float),
        step_s=0.5,
    )


def last_row(ticks: pd.DataFrame) -> pd.Series:
    return compute_features(ticks, AMZN).iloc[-1]


def test_session_vwap_deviation_is_price_against_the_size_weighted_mean_of_trades():
    ticks = ticks_frame(3, price=[100.0, 102.0, 102.0], size=[1.0, 3.0, 0.0], side=[1, 1, 0])

    row = last_row(ticks)

    vwap = (100.0 * 1 + 102.0 * 3) / 4  # 101.5; the quote-only tick adds nothing
    assert row["session_vwap_dev_bps"] == pytest.approx((102.0 / vwap - 1) * 1e4, rel=1e-12)


def test_session_vwap_deviation_is_nan_before_the_first_trade():
    ticks = ticks_frame(3)

    row = last_row(ticks)

    assert math.isnan(row["session_vwap_dev_bps"])


def test_flow_imbalance_30_is_signed_size_over_size():
    # 10 buys of 3, 5 sells of 2, 15 quotes: (30 - 10) / 40
    size = [3.0] * 10 + [2.0] * 5 + [0.0] * 15
    side = [1] * 10 + [-1] * 5 + [0] * 15
    ticks = ticks_frame(30, size=size, side=side)

    row = last_row(ticks)

    assert row["flow_imbalance_30"] == pytest.approx(0.5, rel=1e-12)


def test_flow_imbalance_30_is_nan_when_nothing_traded_in_the_window():
    ticks = ticks_frame(30)

    row = last_row(ticks)

    assert math.isnan(row["flow_imbalance_30"])


def test_trade_intensity_30_counts_trades_per_second_since_the_tick_before_the_window():
    # 31 ticks one second apart; the last 30 hold 15 trades and span 30 seconds.
    size = [0.0] + [1.0, 0.0] * 15
    ticks = ticks_frame(31, size=size, side=[0] + [1, 0] * 15)

    row = last_row(ticks)

    assert row["trade_intensity_30"] == pytest.approx(0.5, rel=1e-12)


def test_trade_share_30_is_the_fraction_of_ticks_that_traded():
    ticks = ticks_frame(30, size=[1.0, 0.0, 0.0] * 10, side=[1, 0, 0] * 10)

    row = last_row(ticks)

    assert row["trade_share_30"] == pytest.approx(1 / 3, rel=1e-12)


def test_ret_30_is_the_log_return_against_the_tick_30_before():
    price = [100.0] + [100.5] * 29 + [101.0]
    ticks = ticks_frame(31, price=price)

    row = last_row(ticks)

    assert row["ret_30"] == pytest.approx(math.log(1.01) * 1e4, rel=1e-12)


def test_price_slope_180_of_a_linear_price_is_its_step_in_ticks():
    ticks = ticks_frame(180, price=100.0 + 0.03 * np.arange(180))

    row = last_row(ticks)

    assert row["price_slope_180"] == pytest.approx(3.0, rel=1e-9)


def test_l1_imbalance_spread_and_microprice_from_the_best_levels():
    ticks = ticks_frame(1, bid=99.98, ask=100.02, bid_size=30.0, ask_size=10.0)

    row = last_row(ticks)

    # microprice = (99.98 * 10 + 100.02 * 30) / 40 = 100.01, one tick above the 100.00 mid
    assert (row["l1_imbalance"], row["spread_ticks"], row["microprice_dev_ticks"]) == pytest.approx(
        (0.5, 4.0, 1.0), rel=1e-9
    )


def test_session_range_position_places_price_between_session_low_and_high():
    ticks = ticks_frame(3, price=[100.0, 104.0, 101.0])

    row = last_row(ticks)

    assert row["session_range_position"] == pytest.approx(0.25, rel=1e-12)


def test_minutes_since_open_and_session_fraction_from_the_utc_session_bounds():
    ticks = ticks_frame(1, start_s=39 * 60.0)  # 39 minutes into a 390-minute session

    row = last_row(ticks)

    assert (row["minutes_since_open"], row["session_frac_sin"], row["session_frac_cos"]) == pytest.approx(
        (39.0, math.sin(2 * math.pi * 0.1), math.cos(2 * math.pi * 0.1)), rel=1e-12
    )


def _pandas_reference(ticks: pd.DataFrame, name: str) -> pd.Series:
    """Straightforward pandas rolling versions of some window features (an independent oracle)."""
    price, size = ticks["price"], ticks["size"]
    ret = np.log(price).diff() * 1e4
    signed = ticks["side"].astype(float) * size
    if name == "ret_std_30":
        return ret.rolling(30).std()
    if name == "ret_std_180":
        return ret.rolling(180).std()
    if name == "flow_imbalance_180":
        return signed.rolling(180).sum() / size.rolling(180).sum()
    if name == "range_180_bps":
        return (price.rolling(180).max() - price.rolling(180).min()) / price * 1e4
    if name == "mean_trade_size_30":
        return size.rolling(30).sum() / (size > 0).astype(float).rolling(30).sum()
    if name == "l1_imbalance_mean_30":
        l1 = (ticks["bid_size"] - ticks["ask_size"]) / (ticks["bid_size"] + ticks["ask_size"])
        return l1.rolling(30).mean()
    raise KeyError(name)


@pytest.mark.parametrize(
    "name",
    [
        "ret_std_30",
        "ret_std_180",
        "flow_imbalance_180",
        "range_180_bps",
        "mean_trade_size_30",
        "l1_imbalance_mean_30",
    ],
)
def test_window_feature_matches_a_pandas_rolling_reference(name):
    ticks = busy_frame(400)

    got = compute_features(ticks, AMZN)[name]

    np.testing.assert_allclose(
        got.to_numpy(), _pandas_reference(ticks, name).to_numpy(), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize("feature", [f for f in FEATURES if f.warmup > 1], ids=lambda f: f.name)
def test_feature_is_nan_during_warmup_and_has_a_value_once_its_window_is_full(feature):
    ticks = busy_frame(200)

    values = compute_features(ticks, AMZN)[feature.name].to_numpy()

    assert np.isnan(values[: feature.warmup - 1]).all()
    assert np.isfinite(values[feature.warmup - 1 :]).all()


def test_every_feature_has_a_value_once_warm_on_a_full_book():
    ticks = busy_frame(200)

    row = compute_features(ticks, AMZN).iloc[-1]

    assert [name for name in FEATURE_NAMES if not np.isfinite(row[name])] == []


def test_a_new_trading_day_restarts_windows_and_session_features():
    day1 = busy_frame(200, day=DAY, seed=1)
    day2 = busy_frame(200, day=DAY + dt.timedelta(days=1), seed=2)
    both = pd.concat([day1, day2], ignore_index=True)

    features = compute_features(both, AMZN)

    alone = compute_features(day2, AMZN)
    np.testing.assert_array_equal(
        features[list(FEATURE_NAMES)].iloc[200:].to_numpy(), alone[list(FEATURE_NAMES)].to_numpy()
    )


def test_online_state_is_not_initialized_again_after_a_trading_day_rollover():
    ticks = busy_frame(200, day=DAY)
    online = OnlineFeatures(AMZN)
    online.update_many(ticks)
    next_open = AMZN.session_bounds(DAY + dt.timedelta(days=1))[0].value

    online.update(next_open + 1_000_000_000, 100.0, 1.0, 1.0, 1, 99.99, 100.01, 5.0, 5.0)

    assert (online.initialized, online.ticks_in_session) == (False, 1)


def test_online_initialized_turns_true_when_the_longest_window_is_full():
    ticks = busy_frame(182)
    online = OnlineFeatures(AMZN)
    online.update_many(ticks.iloc[:180])
    before = online.initialized

    online.update_many(ticks.iloc[180:181])

    assert (before, online.initialized) == (False, True)


def test_online_reset_forgets_the_session():
    online = OnlineFeatures(AMZN)
    online.update_many(busy_frame(200))

    online.reset()

    assert (online.initialized, online.ticks_in_session, online.trading_day) == (False, 0, None)


def test_missing_book_sizes_give_nan_size_features_but_keep_the_spread():
    ticks = ticks_frame(1, bid_size=np.nan, ask_size=np.nan)

    row = last_row(ticks)

    assert np.isnan([row["l1_imbalance"], row["microprice_dev_ticks"]]).all()
    assert row["spread_ticks"] == pytest.approx(2.0)


def test_missing_bid_and_ask_give_nan_book_features():
    ticks = ticks_frame(1, bid=np.nan, ask=np.nan)

    row = last_row(ticks)

    assert np.isnan([row["spread_ticks"], row["price_vs_mid_ticks"], row["microprice_dev_ticks"]]).all()


def test_online_update_takes_none_for_a_missing_book():
    online = OnlineFeatures(AMZN)

    vector = online.update(OPEN.value + 1, 100.0, 1.0, 1.0, 1, None, None, None, None)

    spread = FEATURE_NAMES.index("spread_ticks")
    assert vector.shape == (len(FEATURE_NAMES),) and math.isnan(vector[spread])


def test_online_update_rejects_a_tick_older_than_the_last():
    online = OnlineFeatures(AMZN)
    online.update(OPEN.value + 2_000, 100.0, 1.0, 1.0, 1, 99.99, 100.01, 5.0, 5.0)

    with pytest.raises(ValueError, match="time order"):
        online.update(OPEN.value + 1_000, 100.0, 1.0, 2.0, 1, 99.99, 100.01, 5.0, 5.0)


def test_compute_features_keeps_the_input_index_and_key_columns():
    ticks = busy_frame(50).set_index(pd.RangeIndex(1000, 1050))

    features = compute_features(ticks, AMZN)

    assert features.index.equals(ticks.index)
    assert list(features.columns) == ["symbol", "ts", "seq", *FEATURE_NAMES]
    assert (features[list(FEATURE_NAMES)].dtypes == np.float64).all()


def test_compute_features_rejects_ticks_of_two_symbols():
    ticks = busy_frame(10)
    ticks.loc[5:, "symbol"] = "NIFTY"

    with pytest.raises(ValueError, match="one symbol"):
        compute_features(ticks, AMZN)


def test_compute_features_rejects_unsorted_ticks():
    ticks = busy_frame(10).iloc[::-1]

    with pytest.raises(ValueError, match="sorted"):
        compute_features(ticks, AMZN)


def test_feature_set_round_trips_through_json():
    subset = FeatureSet("probe", 3, ("spread_ticks", "ret_30"))

    restored = FeatureSet.from_dict(json.loads(json.dumps(subset.to_dict())))

    assert restored == subset and restored.indices == (FEATURE_NAMES.index("spread_ticks"), 0)


def test_feature_set_rejects_a_feature_the_engines_do_not_compute():
    with pytest.raises(ValueError, match="unknown features"):
        FeatureSet("probe", 1, ("ret_30", "no_such_feature"))


def test_tick_features_v1_is_every_starter_feature_in_order():
    assert (tick_features_v1.key, tick_features_v1.features) == ("tick_features_v1", FEATURE_NAMES)


def test_online_update_many_rejects_another_symbols_ticks():
    ticks = busy_frame(10)
    ticks["symbol"] = "NIFTY"

    with pytest.raises(ValueError, match="AMZN ticks only"):
        OnlineFeatures(AMZN).update_many(ticks)


def test_feature_def_rejects_an_unknown_group():
    with pytest.raises(ValueError, match="group"):
        FeatureDef("odd_feature", "astrology", "Not a group of DESIGN.md.")


def test_features_of_a_tick_do_not_depend_on_later_ticks():
    ticks = busy_frame(400)

    prefix = compute_features(ticks.iloc[:250], AMZN)

    full = compute_features(ticks, AMZN).iloc[:250]
    names = list(FEATURE_NAMES)
    np.testing.assert_array_equal(prefix[names].to_numpy(), full[names].to_numpy())


def test_compute_features_of_no_ticks_is_an_empty_frame_with_every_column():
    features = compute_features(busy_frame(5).iloc[:0], AMZN)

    assert (len(features), list(features.columns)) == (0, ["symbol", "ts", "seq", *FEATURE_NAMES])
