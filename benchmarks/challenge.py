"""The challenge on the demo's data: wall time per trial and family, and what a 10x trial budget buys.

Both budgets run here, one after the other, on the same dataset, folds and SHAP feature sets; the
walk-forward score is the mean log loss over the folds (every labelled tick of each test day).
"""

from __future__ import annotations

import time

from feature_store.features import feature_set
from feature_store.instruments import get_instrument
from pipelines.challenge import ChallengeSpec, run_challenge
from pipelines.dataset import simulated_dataset, split_dataset
from pipelines.selection import pruned_feature_set, shap_select
from pipelines.simulate import DEMO_SIGNAL
from pipelines.training import HORIZONS
from pipelines.validation import WalkForward, walk_forward
from tickml.demo import TRAIN_START, demo_training


def run(*, days: int = 10, scale: int = 10) -> str:
    """Run the demo's challenge budget and one `scale` times larger; returns a markdown table."""
    config = demo_training(days)
    started = time.monotonic()
    dataset = simulated_dataset(
        get_instrument("NIFTY"),
        TRAIN_START,
        days,
        seed=7,
        signal=DEMO_SIGNAL,
        stride=config["stride"],
        holdout_days=config["holdout_days"],
    )
    build_s = time.monotonic() - started
    train, _, _ = split_dataset(dataset)
    folds = walk_forward(list(train["day"].unique()), WalkForward(folds=config["folds"]))
    candidates = feature_set("direction_candidates_v1")
    budgets = {
        "demo": ChallengeSpec(trials=config["trials"], timeout_s=config["timeout_s"]),
        f"{scale}x": ChallengeSpec(trials=config["trials"] * scale, timeout_s=config["timeout_s"] * scale),
    }
    lines = [
        f"## The challenge on the demo's data ({days} days at signal {DEMO_SIGNAL}, {len(dataset):,} rows, "
        f"{len(folds)} folds; dataset built in {build_s:.0f} s)",
        "",
        "| horizon | budget | family | trials (pruned) | wall s | s per trial | walk-forward log loss |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for horizon in HORIZONS.values():
        features = pruned_feature_set(shap_select(dataset, horizon, candidates, config["k"]), 1)
        for budget, spec in budgets.items():
            result = run_challenge(dataset, horizon, features, folds, spec)
            for name, family in result.families.items():
                pruned = sum(t.state == "PRUNED" for t in family.trials)
                winner = " (winner)" if name == result.winner.family else ""
                lines.append(
                    f"| {horizon.key} | {budget} ({spec.trials} trials, {spec.timeout_s:g} s) | {name}{winner} | "
                    f"{len(family.trials)} ({pruned}) | {family.seconds:.1f} | "
                    f"{family.seconds / len(family.trials):.2f} | {family.best_mean:.4f} |"
                )
    return "\n".join(lines)
