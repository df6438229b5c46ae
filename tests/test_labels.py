"""Labels from the future only: every class on hand-built paths, the horizons, the consensus rule."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from feature_store.instruments import get_instrument
from feature_store.schema import coerce_ticks
from pipelines.labels import LABEL_COLUMNS, consensus_mask, label_ticks
from pipelines.simulate import DEMO_SIGNAL, simulate_session

NIFTY = get_instrument("NIFTY")  # T = 25, S = 25 (S/2 = 12.5), trap at 0.6 * 25 = 15, T30 = 50, flat range 50
MONDAY = dt.date(2025, 3, 3)
OPEN, CLOSE = NIFTY.session_bounds(MONDAY)
P0 = 24000.0
STEP = pd.Timedelta(seconds=10)  # so the 15m horizon ends at tick 90 and the 30m horizon at tick 180


def path_ticks(
    waypoints: list[tuple[int, float]], n: int = 400, start: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Canonical ticks every 10 s from `start` (UTC), priced P0 + offset interpolated between waypoints."""
    start = OPEN + pd.Timedelta(minutes=1) if start is None else start
    at, offset = zip(*waypoints, strict=True)
    price = np.round((P0 + np.interp(np.arange(n), at, offset)) / NIFTY.tick_size) * NIFTY.tick_size
    return coerce_ticks(
        pd.DataFrame(
            {
                "ts": start + STEP * np.arange(n),
                "symbol": "NIFTY",
                "seq": np.arange(n),
                "price": price,
                "size": 1.0,
                "volume": np.arange(1, n + 1, dtype=float),
                "side": 1,
            }
        )
    )


def first_label(waypoints: list[tuple[int, float]], column: str) -> str:
    return label_ticks(path_ticks(waypoints), NIFTY)[column].iloc[0]


@pytest.mark.parametrize(
    ("waypoints", "expected"),
    [
        pytest.param([(0, 0), (10, -5), (30, 26)], "UP", id="up-with-shallow-dip"),
        pytest.param([(0, 0), (10, 5), (30, -26)], "DOWN", id="down-with-shallow-bounce"),
        pytest.param([(0, 0), (10, -12.45), (30, 26)], "UP", id="up-dip-just-under-half-stop"),
        pytest.param([(0, 0), (10, -12.5), (30, 26)], "FLAT", id="up-reached-but-dip-half-stop-is-not-up"),
        pytest.param(
            [(0, 0), (10, 13), (30, -26)], "FLAT", id="down-reached-but-bounce-too-high-is-not-down"
        ),
        pytest.param([(0, 0), (10, 16), (30, -26)], "TRAP_UP", id="breakout-up-reverses-through-stop"),
        pytest.param([(0, 0), (10, -16), (30, 26)], "TRAP_DOWN", id="breakdown-reverses-through-stop"),
        pytest.param([(0, 0), (10, 16), (30, -24)], "FLAT", id="reversal-short-of-stop-is-no-trap"),
        pytest.param([(0, 0), (10, 14), (30, -26)], "FLAT", id="rise-short-of-breakout-is-no-trap"),
        pytest.param(
            [(0, 0), (10, 16), (30, -26), (60, 26)], "TRAP_UP", id="both-traps-earlier-breakout-wins"
        ),
        pytest.param(
            [(0, 0), (10, -16), (30, 26), (60, -26)], "TRAP_DOWN", id="both-traps-earlier-breakdown-wins"
        ),
        pytest.param([(0, 0), (20, 8), (40, -8), (60, 5)], "FLAT", id="wiggle-inside-the-band"),
        pytest.param([(0, 0), (89, 0), (90, 30)], "UP", id="target-on-the-last-tick-of-the-horizon"),
        pytest.param([(0, 0), (90, 0), (91, 30)], "FLAT", id="target-just-after-the-horizon"),
    ],
)
def test_fifteen_minute_label(waypoints: list[tuple[int, float]], expected: str) -> None:
    assert first_label(waypoints, "label_15m") == expected


@pytest.mark.parametrize(
    ("waypoints", "expected"),
    [
        pytest.param([(0, 0), (100, 55)], "UP", id="up"),
        pytest.param([(0, 0), (100, -55)], "DOWN", id="down"),
        pytest.param([(0, 0), (50, 45), (120, -45)], "FLAT", id="neither-target"),
        pytest.param([(0, 0), (60, 51), (120, -51)], "UP", id="up-first-then-down"),
        pytest.param([(0, 0), (60, -51), (120, 51)], "DOWN", id="down-first-then-up"),
        pytest.param([(0, 0), (180, 0), (181, 60)], "FLAT", id="target-just-after-the-horizon"),
    ],
)
def test_thirty_minute_label(waypoints: list[tuple[int, float]], expected: str) -> None:
    assert first_label(waypoints, "label_30m") == expected


@pytest.mark.parametrize(
    ("waypoints", "expected"),
    [
        pytest.param([(0, 0), (100, 20)], 20.0, id="p0-is-the-low"),
        pytest.param([(0, 0), (50, 45), (120, -45)], 90.0, id="swing-both-ways"),
        pytest.param([(0, 0), (180, 10), (181, 60)], 10.0, id="after-the-horizon-is-ignored"),
    ],
)
def test_range_30m_spans_the_horizon_including_the_entry(
    waypoints: list[tuple[int, float]], expected: float
) -> None:
    assert first_label(waypoints, "range_30m") == pytest.approx(expected)


@pytest.mark.parametrize(
    ("before_close", "has_15m", "has_30m"),
    [
        pytest.param(pd.Timedelta(minutes=40), True, True, id="40min"),
        pytest.param(pd.Timedelta(minutes=30), True, True, id="30min-horizon-ends-at-close"),
        pytest.param(pd.Timedelta(minutes=20), True, False, id="20min"),
        pytest.param(pd.Timedelta(minutes=15), True, False, id="15min-horizon-ends-at-close"),
        pytest.param(pd.Timedelta(minutes=10), False, False, id="10min"),
    ],
)
def test_horizon_past_the_session_close_is_unlabeled(
    before_close: pd.Timedelta, has_15m: bool, has_30m: bool
) -> None:
    # Ticks every 10 s over the last 45 minutes, flat price: the answer would be FLAT if it were guessed.
    ticks = path_ticks([(0, 0)], n=270, start=CLOSE - pd.Timedelta(minutes=45))

    labels = label_ticks(ticks, NIFTY).set_index("ts")
    row = labels.loc[CLOSE - before_close]

    assert (pd.notna(row["label_15m"]), pd.notna(row["label_30m"]), pd.notna(row["range_30m"])) == (
        has_15m,
        has_30m,
        has_30m,
    )


# An UP path for tick 100: it needs ticks 100..280 (the 30m horizon); tick 0..99 are its past.
LEAKAGE_PATH = [(0, 0), (100, 0), (110, -5), (130, 26), (160, 60), (400, 60)]


@pytest.mark.parametrize(
    "changed",
    [pytest.param(slice(0, 100), id="before-ts0"), pytest.param(slice(281, 400), id="after-the-30m-horizon")],
)
def test_prices_outside_the_horizon_do_not_change_the_label(changed: slice) -> None:
    ticks = path_ticks(LEAKAGE_PATH)
    altered = ticks.copy()
    altered.loc[altered.index[changed], "price"] = P0 - 200.0

    original, after = label_ticks(ticks, NIFTY).iloc[100], label_ticks(altered, NIFTY).iloc[100]

    assert (original["label_15m"], original["label_30m"]) == ("UP", "UP")
    columns = ["label_15m", "label_30m", "range_30m"]
    assert after[columns].equals(original[columns])


def test_a_price_inside_the_horizon_does_change_the_label() -> None:
    # The counterpart of the leakage test: the same path, altered at the last tick of the 15m horizon.
    ticks = path_ticks([(0, 0), (100, 0), (190, 0), (191, 60)])
    altered = ticks.copy()
    altered.loc[altered.index[190], "price"] = P0 + 30.0

    original, after = label_ticks(ticks, NIFTY).iloc[100], label_ticks(altered, NIFTY).iloc[100]

    assert (original["label_15m"], after["label_15m"]) == ("FLAT", "UP")


def test_each_trading_day_is_labelled_on_its_own() -> None:
    monday = path_ticks([(0, 0)], n=270, start=CLOSE - pd.Timedelta(minutes=45))
    tuesday_open = NIFTY.session_bounds(MONDAY + dt.timedelta(days=1))[0]
    tuesday = path_ticks([(0, 100)], n=270, start=tuesday_open)  # a 100-point gap up the next morning

    both = label_ticks(pd.concat([monday, tuesday], ignore_index=True), NIFTY)

    separately = pd.concat([label_ticks(monday, NIFTY), label_ticks(tuesday, NIFTY)], ignore_index=True)
    pd.testing.assert_frame_equal(both, separately)


def test_labels_are_row_aligned_with_unsorted_input() -> None:
    ticks = path_ticks([(0, 0), (10, 16), (30, -26), (60, 26), (120, -60)])
    shuffled = ticks.sample(frac=1.0, random_state=0)

    labels = label_ticks(shuffled, NIFTY)

    assert labels.index.equals(shuffled.index) and list(labels.columns) == list(LABEL_COLUMNS)
    pd.testing.assert_frame_equal(labels.sort_index(), label_ticks(ticks, NIFTY))


def test_no_ticks_give_an_empty_label_frame() -> None:
    labels = label_ticks(path_ticks([(0, 0)], n=0), NIFTY)

    assert labels.empty and list(labels.columns) == list(LABEL_COLUMNS)


def test_several_symbols_are_refused() -> None:
    ticks = pd.concat([path_ticks([(0, 0)], n=5), path_ticks([(0, 0)], n=5).assign(symbol="OTHER")])

    with pytest.raises(ValueError, match="one symbol"):
        label_ticks(ticks, NIFTY)


def reference_labels(
    ts: np.ndarray, price: np.ndarray, close: int
) -> list[tuple[str | None, str | None, float]]:
    """The definitions of pipelines.labels read literally: a plain Python scan per tick (slow, for tests)."""
    cfg = NIFTY.labels
    h15, h30 = cfg.horizon_15m.value, cfg.horizon_30m.value
    T, S, f, T30 = cfg.target_15m, cfg.stop_15m, cfg.trap_fraction, cfg.target_30m
    out = []
    for i, p0 in enumerate(price):
        future = [(t, p) for t, p in zip(ts[i + 1 :], price[i + 1 :], strict=True) if t <= ts[i] + h30]
        path15 = [p for t, p in future if t <= ts[i] + h15]
        label15 = label30 = None
        if ts[i] + h15 <= close:
            t_up = next((k for k, p in enumerate(path15) if p >= p0 + T), None)
            t_dn = next((k for k, p in enumerate(path15) if p <= p0 - T), None)
            b_up = next((k for k, p in enumerate(path15) if p >= p0 + f * T), None)
            b_dn = next((k for k, p in enumerate(path15) if p <= p0 - f * T), None)
            trap_up = b_up is not None and any(p <= p0 - S for p in path15[b_up + 1 :])
            trap_dn = b_dn is not None and any(p >= p0 + S for p in path15[b_dn + 1 :])
            up_first = t_up is not None and (t_dn is None or t_up < t_dn)
            down_first = t_dn is not None and (t_up is None or t_dn < t_up)
            if up_first and p0 - min([p0, *path15[: t_up + 1]]) < S / 2:
                label15 = "UP"
            elif down_first and max([p0, *path15[: t_dn + 1]]) - p0 < S / 2:
                label15 = "DOWN"
            elif trap_up and (not trap_dn or b_up < b_dn):
                label15 = "TRAP_UP"
            elif trap_dn:
                label15 = "TRAP_DOWN"
            else:
                label15 = "FLAT"
        span = np.nan
        if ts[i] + h30 <= close:
            path30 = [p for _, p in future]
            hit = next((p for p in path30 if abs(p - p0) >= T30), None)
            label30 = "FLAT" if hit is None else ("UP" if hit > p0 else "DOWN")
            span = max([p0, *path30]) - min([p0, *path30])
        out.append((label15, label30, span))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_kernel_matches_a_literal_reading_of_the_definitions(seed: int) -> None:
    # Every 25th simulated tick (~one per 10 s) keeps the plain-Python reference fast enough.
    ticks = simulate_session(NIFTY, MONDAY, seed=seed, signal=DEMO_SIGNAL).iloc[::25].reset_index(drop=True)
    ts = ticks["ts"].to_numpy("datetime64[ns]").view(np.int64)
    expected = reference_labels(ts, ticks["price"].to_numpy(), CLOSE.value)

    labels = label_ticks(ticks, NIFTY)

    assert labels["label_15m"].fillna("-").tolist() == [e[0] or "-" for e in expected]
    assert labels["label_30m"].fillna("-").tolist() == [e[1] or "-" for e in expected]
    np.testing.assert_allclose(labels["range_30m"].to_numpy(), [e[2] for e in expected])


def labels_frame(label_15m: str | None, label_30m: str | None, range_30m: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"label_15m": pd.Series([label_15m], dtype="str"), "label_30m": pd.Series([label_30m], dtype="str"),
         "range_30m": [range_30m]}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("label_15m", "label_30m", "range_30m", "kept"),
    [
        ("UP", "UP", 80.0, True),
        ("DOWN", "DOWN", 80.0, True),
        ("FLAT", "FLAT", 0.8 * NIFTY.labels.flat_range, True),
        ("TRAP_UP", "DOWN", 80.0, True),
        ("TRAP_DOWN", "UP", 80.0, True),
        ("FLAT", "FLAT", NIFTY.labels.flat_range, False),  # the range must stay under the flat range
        ("FLAT", "FLAT", 1.6 * NIFTY.labels.flat_range, False),
        ("UP", "FLAT", 40.0, False),
        ("UP", "DOWN", 80.0, False),
        ("DOWN", "FLAT", 40.0, False),
        ("DOWN", "UP", 80.0, False),
        ("FLAT", "UP", 60.0, False),
        ("FLAT", "DOWN", 60.0, False),
        ("TRAP_UP", "UP", 80.0, False),
        ("TRAP_UP", "FLAT", 40.0, False),
        ("TRAP_DOWN", "DOWN", 80.0, False),
        ("TRAP_DOWN", "FLAT", 40.0, False),
        ("UP", None, np.nan, False),
        (None, "UP", 80.0, False),
        (None, None, np.nan, False),
    ],
)
def test_consensus_mask(label_15m: str | None, label_30m: str | None, range_30m: float, kept: bool) -> None:
    mask = consensus_mask(labels_frame(label_15m, label_30m, range_30m), NIFTY)

    assert mask.dtype == bool and mask.tolist() == [kept]
