"""Features on small hand-built tick frames: hand-checked values, the pandas reference, warm-up, resets, NaN inputs."""

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
from feature_store.features.reference import reference_features
from feature_store.instruments import get_instrument
from feature_store.schema import coerce_ticks, validate_ticks

# The walking skeleton's features in their column order: models in MLflow were trained on these.
STARTER_25 = (
    "ret_30",
    "ret_90",
    "ret_180",
    "price_slope_180",
    "ret_std_30",
    "ret_std_180",
    "range_180_bps",
    "vol_ratio_30_180",
    "flow_imbalance_30",
    "flow_imbalance_180",
    "trade_intensity_30",
    "trade_intensity_180",
    "mean_trade_size_30",
    "trade_share_30",
    "l1_imbalance",
    "l1_imbalance_mean_30",
    "spread_ticks",
    "microprice_dev_ticks",
    "price_vs_mid_ticks",
    "session_vwap_dev_bps",
    "session_range_position",
    "session_volume",
    "minutes_since_open",
    "session_frac_sin",
    "session_frac_cos",
)
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


def busy_frame(n: int, *, day: dt.date = DAY, seed: int = 1, trade_share: float = 0.6) -> pd.DataFrame:
    """`n` ticks where every input varies: random-walk prices, mixed trades and quotes, a full book."""
    rng = np.random.default_rng(seed)
    price = 100.0 + np.cumsum(rng.choice([-0.01, 0.0, 0.01], n))
    traded = rng.random(n) < trade_share
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
    ticks = busy_frame(200, trade_share=1.0)  # every tick trades, so trade-count thresholds fill first

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


def test_tick_features_v1_is_the_walking_skeletons_25_features_in_order():
    assert (tick_features_v1.key, tick_features_v1.features) == ("tick_features_v1", STARTER_25)


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


def feature_at(ticks: pd.DataFrame, name: str, row: int = -1) -> float:
    return float(compute_features(ticks, AMZN)[name].iloc[row])


def sized_trades(sizes: list[float], sides: list[int]) -> pd.DataFrame:
    """One trade per tick with the given sizes and aggressors, at a flat price."""
    return ticks_frame(len(sizes), size=sizes, side=sides)


# 179 trades of sizes 1..10 repeating (side unknown, so they add volume but no signed flow): their
# nearest-rank 90th percentile is 9 and their median 5; 980 in all.
LOOKBACK_SIZES = [float(k % 10 + 1) for k in range(179)]


def test_a_trade_above_the_lookbacks_90th_percentile_is_smart_money():
    ticks = sized_trades([*LOOKBACK_SIZES, 100.0], [0] * 179 + [1])

    smart, dumb = feature_at(ticks, "smart_flow_180"), feature_at(ticks, "dumb_flow_180")

    assert (smart, dumb) == pytest.approx((100 / 1080, 0.0), rel=1e-12)


def test_a_trade_at_or_below_the_lookbacks_median_is_dumb_money():
    ticks = sized_trades([*LOOKBACK_SIZES, 5.0], [0] * 179 + [-1])

    smart, dumb = feature_at(ticks, "smart_flow_180"), feature_at(ticks, "dumb_flow_180")

    assert (smart, dumb) == pytest.approx((0.0, -5 / 985), rel=1e-12)


def test_size_tail_ratio_is_the_lookbacks_90th_percentile_over_its_median():
    ticks = sized_trades([*range(1, 11), 1.0], [1] * 11)

    ratio = feature_at(ticks, "size_tail_ratio")

    assert ratio == pytest.approx(9 / 5, rel=1e-12)  # sizes 1..10: nearest-rank q90 = 9, median = 5


def test_trades_with_fewer_than_10_earlier_trades_are_not_classified():
    ticks = sized_trades([float(k) for k in range(1, 12)], [1] * 11)

    ratios = compute_features(ticks, AMZN)["size_tail_ratio"].to_numpy()

    assert np.isnan(ratios[9]) and np.isfinite(ratios[10])


def test_point_of_control_is_the_price_with_most_traded_size():
    ticks = ticks_frame(3, price=[100.0, 100.05, 100.10], size=[5.0, 9.0, 3.0], side=[1, 1, 1])

    dist = feature_at(ticks, "poc_dist_bps")

    assert dist == pytest.approx((100.10 - 100.05) / 100.10 * 1e4, rel=1e-9)


def test_value_area_grows_from_the_poc_by_the_heavier_neighbour_to_70_percent():
    # 20 traded: POC 100.00 holds 10; adding 100.01 (4, heavier than 99.99's 2) reaches 14 = 70%.
    ticks = ticks_frame(
        5, price=[100.0, 99.98, 99.99, 100.01, 100.02], size=[10.0, 1.0, 2.0, 4.0, 3.0], side=[1] * 5
    )

    width, position = feature_at(ticks, "va_width_bps"), feature_at(ticks, "va_position")

    assert (width, position) == pytest.approx((0.01 / 100.02 * 1e4, 2.0), rel=1e-9)


def test_direction_streak_counts_same_direction_changes_and_skips_unchanged_ticks():
    ticks = ticks_frame(6, price=[100.0, 100.01, 100.01, 100.02, 100.03, 100.02])

    streak = compute_features(ticks, AMZN)["direction_streak"].to_numpy()

    np.testing.assert_array_equal(streak, [np.nan, 1, 1, 2, 3, -1])


def test_regime_is_up_with_full_conviction_when_every_block_rises():
    ticks = ticks_frame(181, price=100.0 + 0.01 * np.arange(181))

    code, conviction = feature_at(ticks, "regime_code"), feature_at(ticks, "regime_conviction")

    assert (code, conviction) == (1.0, pytest.approx(1.0, rel=1e-12))


def test_regime_age_counts_the_ticks_since_the_regime_began():
    ticks = ticks_frame(183, price=100.0 + 0.01 * np.arange(183))

    age = feature_at(ticks, "regime_age")

    assert age == 3.0


def test_block_trap_is_plus_one_for_a_push_up_rejected_back_to_the_open():
    last_block = (
        [100.0 + 0.01 * k for k in range(1, 11)] + [100.1 - 0.01 * k for k in range(1, 11)] + [100.0] * 10
    )
    ticks = ticks_frame(181, price=[100.0] * 151 + last_block)

    trap = feature_at(ticks, "blk6_trap")

    assert trap == pytest.approx(1.0, rel=1e-12)


def test_block_6_momentum_is_the_30_tick_return():
    ticks = busy_frame(200)

    features = compute_features(ticks, AMZN)

    np.testing.assert_array_equal(features["blk6_mom"].iloc[181:], features["ret_30"].iloc[181:])


def test_rsi_is_100_when_price_only_rises():
    ticks = ticks_frame(20, price=100.0 + 0.01 * np.arange(20))

    rsi = feature_at(ticks, "rsi_14")

    assert rsi == pytest.approx(100.0, rel=1e-12)


def test_quote_flicker_counts_quote_only_ticks_that_move_the_best_bid_or_ask():
    # In the last block the bid steps down one tick every third tick: 10 of its 30 ticks move a quote.
    steps = [(k + 3) // 3 for k in range(30)]
    bid = [99.99] * 151 + [99.99 - 0.01 * s for s in steps]
    ticks = ticks_frame(181, bid=bid)

    flicker = feature_at(ticks, "blk6_quote_flicker")

    assert flicker == pytest.approx(10 / 30, rel=1e-12)


def test_exactly_the_features_documented_as_needing_book_sizes_change_without_them():
    ticks = busy_frame(220)
    no_sizes = ticks.assign(bid_size=np.nan, ask_size=np.nan)

    with_sizes, without = compute_features(ticks, AMZN), compute_features(no_sizes, AMZN)

    changed = {n for n in FEATURE_NAMES if not with_sizes[n].equals(without[n])}
    assert changed == {f.name for f in FEATURES if "needs book sizes" in f.description}


def rough_frame(seed: int = 5) -> pd.DataFrame:
    """Two short AMZN sessions with what real feeds do: unchanged prices, unknown aggressors, quote-only
    ticks, equal sizes, and ticks missing book sizes."""
    rng = np.random.default_rng(seed)
    frames = []
    for day in (DAY, DAY + dt.timedelta(days=1)):
        n = 260
        price = 100.0 + np.cumsum(rng.choice([-0.01, 0.0, 0.01], n, p=[0.25, 0.5, 0.25]))
        traded = rng.random(n) < 0.5
        no_sizes = rng.random(n) < 0.03
        frames.append(
            ticks_frame(
                n,
                day=day,
                price=price,
                size=np.where(traded, rng.choice([1.0, 1.0, 2.0, 5.0, 40.0], n), 0.0),
                side=np.where(traded, rng.choice([-1, 0, 1], n, p=[0.45, 0.1, 0.45]), 0),
                bid=price - 0.01 * rng.integers(0, 2, n),
                ask=price + 0.01 * rng.integers(1, 3, n),
                bid_size=np.where(no_sizes, np.nan, rng.integers(1, 50, n)),
                ask_size=np.where(no_sizes, np.nan, rng.integers(1, 50, n)),
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame["volume"] = frame.groupby(AMZN.trading_day(frame["ts"]).to_numpy())["size"].cumsum()
    return frame


@pytest.fixture(scope="module")
def kernel_and_reference() -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(kernel features, pandas reference features) on a full-book frame and a rough two-day frame."""
    pairs = []
    for ticks in (busy_frame(380), rough_frame()):
        kernel = compute_features(ticks, AMZN)[list(FEATURE_NAMES)].reset_index(drop=True)
        pairs.append((kernel, reference_features(ticks, AMZN)))
    return pairs


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_feature_matches_its_pandas_reference_definition(name, kernel_and_reference):
    for kernel, reference in kernel_and_reference:
        got, want = kernel[name].to_numpy(), reference[name].to_numpy()

        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7, equal_nan=True, err_msg=name)
