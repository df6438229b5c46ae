"""A fast pass over `TickSchema`'s own checks, so a clean bulk write does not pay pandera's frame copies.

The checks are read from the pandera schema, never restated: column checks of the kinds below are
evaluated with numpy, dataframe checks are run by pandera itself, except `unique_key` ("(symbol, ts,
seq) identifies a tick"), whose answer the caller already has from one pass over the sorted keys.
Anything else (an unknown check kind, an unexpected dtype or column order) answers "don't know", and
the caller validates with pandera, which stays the one judge of a bad frame and the one source of its
error messages.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pandera.pandas as pa

from feature_store.schema import TICK_DTYPES, TickSchema

_COMPARE = {
    "greater_than": np.greater,
    "greater_than_or_equal_to": np.greater_equal,
    "less_than": np.less,
    "less_than_or_equal_to": np.less_equal,
}


@cache
def _schema() -> pa.DataFrameSchema:
    return TickSchema.to_schema()


def passes_tick_schema(frame: pd.DataFrame, *, unique_key: bool) -> bool:
    """True only when `frame` (canonical columns and dtypes) certainly passes `TickSchema`.

    `unique_key`: whether the caller found no (symbol, ts, seq) twice; False answers False.
    """
    schema = _schema()
    if list(frame.columns) != list(schema.columns) or list(schema.columns) != list(TICK_DTYPES):
        return False
    for name, column in schema.columns.items():
        series = frame[name]
        if series.dtype != pd.api.types.pandas_dtype(TICK_DTYPES[name]) or column.unique:
            return False
        missing = series.isna().to_numpy()
        if missing.any() and not column.nullable:
            return False
        for check in column.checks:
            if not _column_check_passes(check, series, missing):
                return False
    # other dataframe-wide checks (a crossed book) are functions only pandera knows how to call
    return all(
        unique_key if check.name == "unique_key" else bool(check(frame).check_passed)
        for check in schema.checks
    )


def _column_check_passes(check: pa.Check, series: pd.Series, missing: np.ndarray) -> bool:
    if check.element_wise or not check.ignore_na:
        return False
    stats = check.statistics or {}
    present = series[~missing] if missing.any() else series
    if check.name in _COMPARE:
        bound = stats["min_value"] if check.name.startswith("greater") else stats["max_value"]
        return bool(_COMPARE[check.name](present.to_numpy(), bound).all())
    if check.name == "isin":
        return bool(np.isin(present.to_numpy(), list(stats["allowed_values"])).all())
    if check.name == "str_length":
        lengths = present.str.len().to_numpy()
        low, high, exact = stats.get("min_value"), stats.get("max_value"), stats.get("exact_value")
        return bool(
            (low is None or (lengths >= low).all())
            and (high is None or (lengths <= high).all())
            and (exact is None or (lengths == exact).all())
        )
    return False
