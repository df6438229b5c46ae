"""The starter tick features, declared once: name, group, description and warm-up of each.

How each is computed lives in `kernel.py`; the order of `FEATURES` is the column order everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICE = "price"
VOLATILITY = "volatility"
ORDER_FLOW = "order_flow"
BOOK = "book"
SESSION = "session"
TIME = "time"
GROUPS: tuple[str, ...] = (PRICE, VOLATILITY, ORDER_FLOW, BOOK, SESSION, TIME)


@dataclass(frozen=True)
class FeatureDef:
    """One feature of a tick: what it means, and how many ticks of the session it needs.

    `warmup` is the number of ticks of the current trading day (this one included) that must have
    been seen before the feature has a value; until then it is NaN, never a silent zero.
    """

    name: str
    group: str
    description: str
    warmup: int = 1

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"feature name must be a lower-case identifier, got {self.name!r}")
        if self.group not in GROUPS:
            raise ValueError(f"feature {self.name}: group {self.group!r} is not one of {GROUPS}")
        if not self.description.strip():
            raise ValueError(f"feature {self.name}: description is empty")
        if self.warmup < 1:
            raise ValueError(f"feature {self.name}: warmup must be >= 1, got {self.warmup}")


# Price dynamics. Returns are log returns in basis points; N-tick features need N+1 ticks.
ret_30 = FeatureDef("ret_30", PRICE, "Log return of price over the last 30 ticks, in bps.", warmup=31)
ret_90 = FeatureDef("ret_90", PRICE, "Log return of price over the last 90 ticks, in bps.", warmup=91)
ret_180 = FeatureDef("ret_180", PRICE, "Log return of price over the last 180 ticks, in bps.", warmup=181)
price_slope_180 = FeatureDef(
    "price_slope_180",
    PRICE,
    "Least-squares slope of price over the last 180 ticks, in price ticks per tick.",
    warmup=180,
)

# Volatility.
ret_std_30 = FeatureDef(
    "ret_std_30",
    VOLATILITY,
    "Sample std of tick-to-tick log returns over the last 30 ticks, in bps.",
    warmup=31,
)
ret_std_180 = FeatureDef(
    "ret_std_180",
    VOLATILITY,
    "Sample std of tick-to-tick log returns over the last 180 ticks, in bps.",
    warmup=181,
)
range_180_bps = FeatureDef(
    "range_180_bps",
    VOLATILITY,
    "High minus low price over the last 180 ticks, relative to price, in bps.",
    warmup=180,
)
vol_ratio_30_180 = FeatureDef(
    "vol_ratio_30_180",
    VOLATILITY,
    "ret_std_30 / ret_std_180: short-term volatility against the longer window.",
    warmup=181,
)

# Order flow. NaN where the window holds no traded size (an imbalance of nothing is undefined).
flow_imbalance_30 = FeatureDef(
    "flow_imbalance_30", ORDER_FLOW, "sum(side*size)/sum(size) over the last 30 ticks, in [-1, 1].", warmup=30
)
flow_imbalance_180 = FeatureDef(
    "flow_imbalance_180",
    ORDER_FLOW,
    "sum(side*size)/sum(size) over the last 180 ticks, in [-1, 1].",
    warmup=180,
)
trade_intensity_30 = FeatureDef(
    "trade_intensity_30",
    ORDER_FLOW,
    "Trades per second over the last 30 ticks (time from the tick before them).",
    warmup=31,
)
trade_intensity_180 = FeatureDef(
    "trade_intensity_180",
    ORDER_FLOW,
    "Trades per second over the last 180 ticks (time from the tick before them).",
    warmup=181,
)
mean_trade_size_30 = FeatureDef(
    "mean_trade_size_30", ORDER_FLOW, "Mean size of the trades among the last 30 ticks.", warmup=30
)
trade_share_30 = FeatureDef(
    "trade_share_30", ORDER_FLOW, "Fraction of the last 30 ticks that are trades (size > 0).", warmup=30
)

# Order-book pressure, from the best bid/ask; NaN when the feed lacks the inputs.
l1_imbalance = FeatureDef(
    "l1_imbalance", BOOK, "(bid_size - ask_size) / (bid_size + ask_size) at the best levels, in [-1, 1]."
)
l1_imbalance_mean_30 = FeatureDef(
    "l1_imbalance_mean_30",
    BOOK,
    "Mean of l1_imbalance over the last 30 ticks (NaN if any is missing).",
    warmup=30,
)
spread_ticks = FeatureDef("spread_ticks", BOOK, "Best ask minus best bid, in price ticks.")
microprice_dev_ticks = FeatureDef(
    "microprice_dev_ticks", BOOK, "Size-weighted microprice minus the mid, in price ticks."
)
price_vs_mid_ticks = FeatureDef(
    "price_vs_mid_ticks", BOOK, "Last traded price minus the mid, in price ticks."
)

# Session: from the first tick of the trading day up to and including this one.
session_vwap_dev_bps = FeatureDef(
    "session_vwap_dev_bps", SESSION, "Price relative to the session VWAP of the trades so far, in bps."
)
session_range_position = FeatureDef(
    "session_range_position", SESSION, "Where price sits in the session's low-high range so far, in [0, 1]."
)
session_volume = FeatureDef(
    "session_volume", SESSION, "Cumulative traded quantity of the session as of this tick (the volume field)."
)

# Time of day, from the instrument's session open/close (UTC bounds of the exchange-local session).
minutes_since_open = FeatureDef(
    "minutes_since_open", TIME, "Minutes from the session open to the tick (negative before the open)."
)
session_frac_sin = FeatureDef(
    "session_frac_sin", TIME, "sin(2*pi*f), f = fraction of the session elapsed at the tick."
)
session_frac_cos = FeatureDef(
    "session_frac_cos", TIME, "cos(2*pi*f), f = fraction of the session elapsed at the tick."
)

FEATURES: tuple[FeatureDef, ...] = (
    ret_30,
    ret_90,
    ret_180,
    price_slope_180,
    ret_std_30,
    ret_std_180,
    range_180_bps,
    vol_ratio_30_180,
    flow_imbalance_30,
    flow_imbalance_180,
    trade_intensity_30,
    trade_intensity_180,
    mean_trade_size_30,
    trade_share_30,
    l1_imbalance,
    l1_imbalance_mean_30,
    spread_ticks,
    microprice_dev_ticks,
    price_vs_mid_ticks,
    session_vwap_dev_bps,
    session_range_position,
    session_volume,
    minutes_since_open,
    session_frac_sin,
    session_frac_cos,
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURES_BY_NAME: dict[str, FeatureDef] = {f.name: f for f in FEATURES}

if len(FEATURES_BY_NAME) != len(FEATURES):
    raise ValueError("FEATURES declares a feature name twice")
for _name, _feature in list(globals().items()):
    # A declaration left out of the registry would silently never be computed.
    if isinstance(_feature, FeatureDef) and (_feature.name != _name or _feature not in FEATURES):
        raise ValueError(f"feature {_name!r} must be named like its variable and listed in FEATURES")
del _name, _feature
