"""The feature catalogue, gathered from the group modules: name, group, description and warm-up of each.

How each is computed lives next to its declaration in `groups/<group>.py`; the order of `FEATURES`
(groups in `GROUP_MODULES` order) is the column order everywhere.
"""

from __future__ import annotations

from feature_store.features.groups import GROUP_MODULES
from feature_store.features.spec import (
    BLOCK,
    BOOK,
    GROUPS,
    INDICATOR,
    MARKET_MAKER,
    ORDER_FLOW,
    PRICE,
    REGIME,
    SESSION,
    SMART_MONEY,
    TIME,
    VOLATILITY,
    FeatureDef,
)

FEATURES: tuple[FeatureDef, ...] = tuple(f for module in GROUP_MODULES for f in module.FEATURES)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURES_BY_NAME: dict[str, FeatureDef] = {f.name: f for f in FEATURES}

# The walking skeleton's 25 features in their original column order: `tick_features_v1` and the
# models trained on it depend on these names and values, so they never change.
STARTER_NAMES: tuple[str, ...] = (
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


def catalogue() -> list[dict[str, str]]:
    """Every feature as {name, group, description}, in column order (what `tickml features list` prints)."""
    return [{"name": f.name, "group": f.group, "description": f.description} for f in FEATURES]


if len(FEATURES_BY_NAME) != len(FEATURES):
    raise ValueError("two groups declare the same feature name")
for _module in GROUP_MODULES:
    # A group module is where its features are computed, so it must hold only its own group.
    _groups = {f.group for f in _module.FEATURES}
    if len(_groups) != 1:
        raise ValueError(f"{_module.__name__} declares features of several groups: {sorted(_groups)}")
_missing = [name for name in STARTER_NAMES if name not in FEATURES_BY_NAME]
if _missing:
    raise ValueError(f"starter features missing from the catalogue: {_missing}")
del _module, _groups, _missing

__all__ = [
    "BLOCK",
    "BOOK",
    "FEATURES",
    "FEATURES_BY_NAME",
    "FEATURE_NAMES",
    "GROUPS",
    "INDICATOR",
    "MARKET_MAKER",
    "ORDER_FLOW",
    "PRICE",
    "REGIME",
    "SESSION",
    "SMART_MONEY",
    "STARTER_NAMES",
    "TIME",
    "VOLATILITY",
    "FeatureDef",
    "catalogue",
]
