"""`walk_forward_folds`: a universe's purged walk-forward folds, proven leak-free by a blocking check."""

import dagster as dg
import pandas as pd
from pydantic import Field

from orchestration.features.assets import DATASET
from orchestration.ticks.partitions import UNIVERSES
from pipelines.dataset import split_dataset
from pipelines.validation import (
    LABEL_HORIZON,
    Fold,
    WalkForward,
    overlapping_labels,
    split_rows,
    walk_forward,
)

FOLDS = "walk_forward_folds"


class FoldsConfig(dg.Config):
    folds: int = Field(default=3, description="Walk-forward test blocks, the last of the training days")
    test_days: int = Field(default=1, description="Trading days per test block")
    mode: str = Field(default="expanding", description="'expanding' (every earlier day) or 'rolling'")
    train_days: int | None = Field(default=None, description="Training days per fold when rolling")
    embargo_minutes: int = Field(
        default=30, description="Embargo after each test block (at least the 30-minute label horizon)"
    )

    def spec(self) -> WalkForward:
        return WalkForward(
            folds=self.folds,
            test_days=self.test_days,
            mode=self.mode,
            train_days=self.train_days,
            embargo=pd.Timedelta(minutes=self.embargo_minutes),
        )


def _splits(dataset: pd.DataFrame, folds: list[Fold], spec: WalkForward):
    """Each fold's split and the final one (every training day against the held-out days)."""
    train, _, held_days = split_dataset(dataset)
    final = Fold(len(folds), tuple(sorted(train["day"].unique())), tuple(held_days))
    return [(f, split_rows(dataset, f, embargo=spec.embargo)) for f in [*folds, final]]


@dg.asset(
    name=FOLDS,
    partitions_def=UNIVERSES,
    group_name="training",
    ins={"dataset": dg.AssetIn(DATASET)},
    check_specs=[
        dg.AssetCheckSpec(
            "folds_purged",
            asset=FOLDS,
            blocking=True,
            description="No training row's label interval [ts, ts + 30 min] overlaps a test row's, on "
            "every split (the walk-forward folds and the final one against the held-out days)",
        )
    ],
)
def walk_forward_folds(context: dg.AssetExecutionContext, config: FoldsConfig, dataset: pd.DataFrame):
    """The universe's walk-forward folds over its training days (a list), each purged and embargoed."""
    spec = config.spec()
    train, _, _ = split_dataset(dataset)
    try:
        folds = walk_forward(list(train["day"].unique()), spec)
    except ValueError as exc:
        raise dg.Failure(f"universe {context.partition_key}: {exc}") from exc
    rows, overlaps = [], {}
    for fold, split in _splits(dataset, folds, spec):
        name = f"fold {fold.number}" if fold.number < len(folds) else "final (held-out days)"
        overlaps[name] = overlapping_labels(
            dataset["ts"].iloc[split.train], dataset["ts"].iloc[split.test], LABEL_HORIZON
        )
        rows.append(
            f"| {name} | {fold.train_days[0]}..{fold.train_days[-1]} ({len(fold.train_days)}) | "
            f"{', '.join(str(d) for d in fold.test_days)} | {len(split.train):,} | {split.purged:,} | "
            f"{split.embargoed:,} | {len(split.test):,} | {overlaps[name]} |"
        )
    table = [
        "| split | training days | test days | training rows | purged | embargoed | test rows | overlaps |",
        "|---|---|---|---:|---:|---:|---:|---:|",
        *rows,
    ]
    yield dg.Output(
        [f.to_dict() for f in folds],
        metadata={
            "folds": len(folds),
            "mode": spec.mode,
            "embargo": str(spec.embargo),
            "splits": dg.MetadataValue.md("\n".join(table)),
        },
    )
    leaking = {k: v for k, v in overlaps.items() if v}
    yield dg.AssetCheckResult(
        check_name="folds_purged",
        passed=not leaking,
        metadata={"overlapping_training_rows": leaking or "none"},
    )
