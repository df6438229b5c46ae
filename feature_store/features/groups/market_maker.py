"""Market-maker behaviour per block and over the window: spread manipulation, quote flicker, inventory.

- spread manipulation: how often the spread is widened (wider than on the previous tick);
- quote flicker: quote-only ticks that move the best bid or ask price (quotes pulled and re-posted);
- inventory pressure: market makers take the other side of aggressive flow, so their inventory moves by
  -sum(side*size); scaled by the mean L1 depth they show, it reads as "books of inventory absorbed".
"""

from __future__ import annotations

from numba import njit

from feature_store.features.spec import MARKET_MAKER, FeatureDef, check_declarations, per_block
from feature_store.features.state import (
    B_DEPTH,
    B_FLICKER,
    B_SIGNED,
    B_WIDEN,
    BLOCK,
    LONG,
    N_BLOCKS,
)
from feature_store.features.window import block_sum

blk_spread_widen = per_block(
    "spread_widen",
    MARKET_MAKER,
    "Share of the ticks of {block} whose spread is wider than on the tick before (spread manipulation).",
    first_block_warmup=181,
)
blk_quote_flicker = per_block(
    "quote_flicker",
    MARKET_MAKER,
    "Share of the ticks of {block} that are quote-only and move the best bid or ask price (quote flicker).",
    first_block_warmup=181,
)
blk_mm_inventory = per_block(
    "mm_inventory",
    MARKET_MAKER,
    "Market-maker inventory pressure of {block}: -sum(side*size) / its mean bid_size + ask_size (needs book sizes).",
)
spread_widen_share_180 = FeatureDef(
    "spread_widen_share_180",
    MARKET_MAKER,
    "Share of the last 180 ticks whose spread is wider than on the tick before.",
    warmup=181,
)
quote_flicker_180 = FeatureDef(
    "quote_flicker_180",
    MARKET_MAKER,
    "Share of the last 180 ticks that are quote-only and move the best bid or ask price.",
    warmup=181,
)
mm_inventory_180 = FeatureDef(
    "mm_inventory_180",
    MARKET_MAKER,
    "-sum(side*size) over the last 180 ticks / their mean bid_size + ask_size (needs book sizes).",
    warmup=180,
)

FEATURES = (
    blk_spread_widen
    + blk_quote_flicker
    + blk_mm_inventory
    + (
        spread_widen_share_180,
        quote_flicker_180,
        mm_inventory_180,
    )
)
check_declarations(globals(), FEATURES)

_SLOT = {f.name: i for i, f in enumerate(FEATURES)}
SPREAD_WIDEN = _SLOT["blk1_spread_widen"]
QUOTE_FLICKER = _SLOT["blk1_quote_flicker"]
MM_INVENTORY = _SLOT["blk1_mm_inventory"]
SPREAD_WIDEN_SHARE_180 = _SLOT["spread_widen_share_180"]
QUOTE_FLICKER_180 = _SLOT["quote_flicker_180"]
MM_INVENTORY_180 = _SLOT["mm_inventory_180"]

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def compute(n, bs, out):
    """Write the market-maker features (n >= 180 ticks seen, else nothing) into `out`."""
    if n < LONG:
        return
    for b in range(N_BLOCKS):
        out[SPREAD_WIDEN + b] = bs[b, B_WIDEN] / BLOCK
        out[QUOTE_FLICKER + b] = bs[b, B_FLICKER] / BLOCK
        depth = bs[b, B_DEPTH]
        if depth > 0:
            out[MM_INVENTORY + b] = -bs[b, B_SIGNED] / (depth / BLOCK)
    out[SPREAD_WIDEN_SHARE_180] = block_sum(bs, B_WIDEN, 0, N_BLOCKS - 1) / LONG
    out[QUOTE_FLICKER_180] = block_sum(bs, B_FLICKER, 0, N_BLOCKS - 1) / LONG
    depth = block_sum(bs, B_DEPTH, 0, N_BLOCKS - 1)
    if depth > 0:
        out[MM_INVENTORY_180] = -block_sum(bs, B_SIGNED, 0, N_BLOCKS - 1) / (depth / LONG)
