"""The feature catalogue: what it declares, the named sets, the generated page and the kernel cache guard."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import feature_store
from feature_store.features import (
    FEATURE_NAMES,
    FEATURES,
    OnlineFeatures,
    catalogue,
    direction_starter_v1,
    kernel,
    tick_features_v2,
)
from feature_store.features.docs import DOC_PATH, REGENERATE, render_catalogue
from feature_store.features.groups import GROUP_MODULES
from feature_store.features.spec import FeatureDef, check_declarations, per_block
from feature_store.instruments import get_instrument

# The issue's list, topic by topic, and the features that answer it.
ISSUE_TOPICS = {
    "block price slope": [f"blk{b}_slope" for b in range(1, 7)],
    "block volatility": [f"blk{b}_vol" for b in range(1, 7)],
    "block momentum": [f"blk{b}_mom" for b in range(1, 7)],
    "block volume z-score": [f"blk{b}_volume_z" for b in range(1, 7)],
    "block buy/sell bias": [f"blk{b}_bias" for b in range(1, 7)],
    "block trade intensity": [f"blk{b}_intensity" for b in range(1, 7)],
    "block depth trend": [f"blk{b}_depth_trend" for b in range(1, 7)],
    "block spread dynamics": [f"blk{b}_spread" for b in range(1, 7)]
    + [f"blk{b}_spread_widen" for b in range(1, 7)],
    "block trap signals": [f"blk{b}_trap" for b in range(1, 7)],
    "window rate of change": ["ret_5", "ret_10", "ret_60"],
    "window momentum score": ["momentum_score"],
    "window direction streak": ["direction_streak"],
    "window slope": ["price_slope_180", "price_slope_r2_180"],
    "window std and range": ["ret_std_180", "range_180_bps", "price_std_180_bps"],
    "window std compression": ["std_compression_180"],
    "window ATR %": ["atr_pct_180"],
    "window trade-size spike": ["trade_size_spike_30"],
    "window volume z-score": ["volume_z_session"],
    "window aggressor ratio": ["aggressor_ratio_30", "aggressor_ratio_180"],
    "window 30-tick size bias": ["size_bias_30"],
    "window depth imbalance": ["depth_imbalance_180"],
    "window spread": ["spread_mean_180", "spread_ratio_180"],
    "window bid accumulation / ask vanishing": ["bid_accumulation_180", "ask_vanishing_180"],
    "smart vs dumb money per block": [f"blk{b}_smart_flow" for b in range(1, 7)]
    + [f"blk{b}_dumb_flow" for b in range(1, 7)],
    "market maker per block": [
        f"blk{b}_{k}" for b in range(1, 7) for k in ("spread_widen", "quote_flicker", "mm_inventory")
    ],
    "session context": [
        "minutes_since_open",
        "session_frac_sin",
        "session_frac_cos",
        "session_vwap_dev_bps",
        "session_range_position",
        "poc_dist_bps",
        "va_width_bps",
    ],
    "SMA/EMA ratios": [
        "price_sma_5_ratio",
        "price_sma_10_ratio",
        "price_sma_20_ratio",
        "price_ema_12_ratio",
        "price_ema_26_ratio",
    ],
    "RSI, MACD": ["rsi_14", "macd_bps", "macd_signal_bps", "macd_hist_bps"],
    "Bollinger": ["bb_upper_bps", "bb_lower_bps", "bb_position", "bb_width_bps"],
    "stochastic, Williams %R, ATR, ADX": ["stoch_k_14", "stoch_d_3", "williams_r_14", "atr_14_bps", "adx_14"],
    "momentum 10, volatility 20, lags": [
        "momentum_10_ticks",
        "volatility_20_bps",
        "ret_lag_1",
        "ret_lag_2",
        "ret_lag_5",
    ],
    "block regime": ["regime_code", "regime_conviction"],
}


def test_catalogue_holds_at_least_200_features():
    assert len(FEATURES) >= 200


@pytest.mark.parametrize("topic", ISSUE_TOPICS)
def test_catalogue_covers_the_issue_topic(topic):
    missing = [name for name in ISSUE_TOPICS[topic] if name not in FEATURE_NAMES]

    assert missing == []


def test_each_group_module_declares_features_of_one_group_contiguously():
    groups_in_column_order = [f.group for f in FEATURES]

    expected = [module.FEATURES[0].group for module in GROUP_MODULES for _ in module.FEATURES]
    assert groups_in_column_order == expected
    assert len({m.FEATURES[0].group for m in GROUP_MODULES}) == len(GROUP_MODULES)


def test_per_block_families_name_blocks_1_to_6_oldest_first():
    family = per_block("probe", "block", "Probe reading of {block}.")

    assert [f.name for f in family] == [f"blk{b}_probe" for b in range(1, 7)]
    assert family[0].description == "Probe reading of block 1 (ticks t-179..t-150)."
    assert family[5].description == "Probe reading of block 6 (ticks t-29..t)."


def test_catalogue_rows_are_name_group_description_in_column_order():
    rows = catalogue()

    assert [r["name"] for r in rows] == list(FEATURE_NAMES)
    assert all(set(r) == {"name", "group", "description"} and r["description"] for r in rows)


def test_no_feature_needs_more_than_181_ticks_so_serving_warms_up_as_before():
    assert max(f.warmup for f in FEATURES) == 181


def test_tick_features_v2_is_the_whole_catalogue_in_column_order():
    assert (tick_features_v2.key, tick_features_v2.features) == ("tick_features_v2", FEATURE_NAMES)


def test_direction_starter_v1_keeps_its_19_features_in_order():
    assert direction_starter_v1.features == (
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
    )


def test_docs_features_md_is_generated_from_the_current_definitions():
    on_disk = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""

    up_to_date = on_disk == render_catalogue()
    assert up_to_date, f"docs/features.md is stale: run `{REGENERATE}`"


def test_rendered_catalogue_has_a_row_with_warmup_for_every_feature():
    page = render_catalogue()

    missing = [f.name for f in FEATURES if f"| `{f.name}` | " not in page or f"| {f.warmup} |" not in page]
    assert missing == []


def test_rendered_catalogue_names_the_command_that_regenerates_it():
    assert REGENERATE in render_catalogue().splitlines()[2]


def test_feature_def_rejects_a_description_of_several_lines():
    with pytest.raises(ValueError, match="one non-empty line"):
        FeatureDef("odd_feature", "price", "First line.\nSecond line.")


def test_check_declarations_rejects_a_declared_feature_left_out_of_features():
    declared = FeatureDef("forgotten", "price", "Declared but never listed.")

    with pytest.raises(ValueError, match="forgotten"):
        check_declarations({"forgotten": declared}, ())


def test_check_declarations_rejects_a_variable_named_unlike_its_feature():
    feature = FeatureDef("ret_7", "price", "Misnamed.")

    with pytest.raises(ValueError, match="same name"):
        check_declarations({"ret_8": feature}, (feature,))


def test_kernel_fingerprint_covers_every_module_compiled_into_step():
    groups_dir = Path(kernel.__file__).parent / "groups"

    hashed = {Path(p).name for p in kernel.kernel_source_files()}
    expected = {p.name for p in groups_dir.glob("*.py") if p.name != "__init__.py"}
    assert expected | {"kernel.py", "state.py", "window.py"} <= hashed


def test_an_edited_group_module_is_recompiled_not_served_from_numbas_stale_cache(tmp_path):
    # numba re-checks only the file defining a function: without the guard, `step` would keep the old
    # clock code inlined from its cache after clock.py changes.
    amzn = get_instrument("AMZN")
    open_ns = amzn.session_bounds(dt.date(2025, 1, 6))[0].value
    OnlineFeatures(amzn).update(open_ns, 100.0, 1.0, 1.0, 1)  # compiled and cached in the source tree
    copy = tmp_path / "feature_store"
    shutil.copytree(Path(feature_store.__file__).parent, copy)  # copy2 keeps mtimes: the cache stays valid
    clock = copy / "features" / "groups" / "clock.py"
    clock.write_text(clock.read_text().replace("NS_PER_MIN = 6e10", "NS_PER_MIN = 3e10"))
    script = (
        "from feature_store.features import OnlineFeatures, FEATURE_NAMES\n"
        "from feature_store.instruments import get_instrument\n"
        "import datetime as dt\n"
        "amzn = get_instrument('AMZN')\n"
        "open_ns = amzn.session_bounds(dt.date(2025, 1, 6))[0].value\n"
        "vector = OnlineFeatures(amzn).update(open_ns + 39 * 60 * 10**9, 100.0, 1.0, 1.0, 1)\n"
        "print(vector[FEATURE_NAMES.index('minutes_since_open')])\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,  # not the project root, whose feature_store would shadow the copy
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert float(result.stdout) == pytest.approx(78.0)  # 39 minutes, measured in the edited 30 s "minutes"
