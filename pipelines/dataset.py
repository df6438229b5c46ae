"""Training datasets: features joined with labels, every labelled tick (strided), split by time."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from feature_store.features import FEATURE_NAMES, compute_features
from feature_store.instruments import Instrument
from feature_store.schema import LABELS_15M, LABELS_30M
from pipelines.labels import consensus_mask, label_ticks
from pipelines.simulate import simulate_session

KEY = ("symbol", "ts", "seq")


def build_dataset(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    instrument: Instrument,
    *,
    holdout_days: int,
    stride: int = 1,
) -> pd.DataFrame:
    """Features with `day`, both labels, `consensus` and `holdout`, for training and honest evaluation.

    Every labelled tick is kept, on training and held-out days alike: live scoring sees every tick, so
    models train on that population and are scored on it. `consensus` marks the rows the reference
    design's filter keeps (it picks rows by their future): a training option, never the scoring
    population. `stride` keeps every k-th tick of a day: neighbours share almost their whole label
    horizon, so more adds little evidence.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    label_cols = ["label_15m", "label_30m", "range_30m"]
    joined = features.merge(labels[[*KEY, *label_cols]], on=list(KEY), how="inner", validate="one_to_one")
    if len(joined) != len(features):
        raise ValueError(f"labels cover {len(joined)} of {len(features)} feature rows; recompute labels")
    joined.insert(3, "day", instrument.trading_day(joined["ts"]).to_numpy())
    position = joined.groupby("day").cumcount().to_numpy()
    labelled = (joined["label_15m"].notna() & joined["label_30m"].notna()).to_numpy()
    joined = joined[labelled & (position % stride == 0)]
    joined = mark_holdout(
        joined.assign(consensus=consensus_mask(joined, instrument).to_numpy()), holdout_days
    )
    return joined.reset_index(drop=True)


def split_by_days(
    dataset: pd.DataFrame, holdout_days: int
) -> tuple[pd.DataFrame, pd.DataFrame, list[dt.date]]:
    """Train on all but the last `holdout_days` trading days; hold those out.

    Training then purges rows whose label reaches the held-out span (`pipelines.validation`): in a
    day-session market none does, labels end at the close; in a 24-hour market the last half hour does.
    """
    days = sorted(dataset["day"].unique())
    if holdout_days < 1 or holdout_days >= len(days):
        raise ValueError(f"need 1 <= holdout_days < number of days ({len(days)}), got {holdout_days}")
    held = days[-holdout_days:]
    is_held = dataset["day"].isin(held)
    return dataset[~is_held], dataset[is_held], list(held)


def mark_holdout(dataset: pd.DataFrame, holdout_days: int) -> pd.DataFrame:
    """`dataset` with a boolean `holdout` column: True on its last `holdout_days` trading days.

    The dataset carries its own split so that feature selection, training and promotion all hold out
    exactly the same days (see `split_by_days` for why a day boundary is a purged split).
    """
    _, _, held = split_by_days(dataset, holdout_days)
    return dataset.assign(holdout=dataset["day"].isin(held).to_numpy())


def split_dataset(dataset: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[dt.date]]:
    """(every row of the training days; every row of the held-out days; the held-out days), by the
    dataset's `holdout` column. Training is purged against the held-out span separately."""
    missing = {"holdout", "consensus"} - set(dataset.columns)
    if missing:
        raise KeyError(f"dataset lacks columns {sorted(missing)}; build it with build_dataset")
    held = dataset[dataset["holdout"]]
    return dataset[~dataset["holdout"]], held, sorted(held["day"].unique())


def class_balance(labels: pd.Series) -> dict[str, int]:
    """Count of each class in `labels`, most frequent first."""
    return {str(k): int(v) for k, v in labels.value_counts().items()}


def dataset_schema() -> pa.DataFrameSchema:
    """The training dataset contract: keys, day, every catalogue feature as float64, labels in their classes."""
    return pa.DataFrameSchema(
        {
            "symbol": pa.Column(str),
            "ts": pa.Column("datetime64[ns, UTC]"),
            "seq": pa.Column("int64"),
            "day": pa.Column(object),
            **{name: pa.Column("float64", nullable=True) for name in FEATURE_NAMES},
            "label_15m": pa.Column(str, pa.Check.isin(LABELS_15M)),
            "label_30m": pa.Column(str, pa.Check.isin(LABELS_30M)),
            "holdout": pa.Column(bool),
            "consensus": pa.Column(bool),
        },
        unique=list(KEY),
        strict=False,
    )


def dataset_failures(dataset: pd.DataFrame) -> list[str]:
    """Human-readable schema failures of `dataset` (empty when it satisfies `dataset_schema`)."""
    try:
        dataset_schema().validate(dataset, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        return [
            f"{r['column']}: {r['check']} ({r['failure_case']})" for r in cases.head(20).to_dict("records")
        ]
    return []


def simulated_dataset(
    instrument: Instrument,
    first_day: dt.date,
    days: int,
    *,
    seed: int,
    signal: float = 1.0,
    stride: int = 10,
    holdout_days: int = 1,
) -> pd.DataFrame:
    """A dataset over `days` simulated sessions, the last `holdout_days` held out."""
    features, labels = [], []
    for day in instrument.trading_days(first_day, days):
        ticks = simulate_session(instrument, day, seed=seed, signal=signal)
        features.append(compute_features(ticks, instrument))
        labels.append(label_ticks(ticks, instrument))
    return build_dataset(
        pd.concat(features, ignore_index=True),
        pd.concat(labels, ignore_index=True),
        instrument,
        stride=stride,
        holdout_days=holdout_days,
    )
