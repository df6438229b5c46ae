"""The feature catalogue, one module per group: each declares its features and computes them in numba.

`GROUP_MODULES` is the column order: a group's features are contiguous in every feature vector.
"""

from __future__ import annotations

from feature_store.features.groups import (
    blocks,
    book,
    clock,
    indicators,
    market_maker,
    order_flow,
    price,
    regime,
    session,
    smart_money,
    volatility,
)

GROUP_MODULES = (
    price,
    volatility,
    order_flow,
    book,
    session,
    clock,
    blocks,
    smart_money,
    market_maker,
    indicators,
    regime,
)
