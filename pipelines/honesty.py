"""Honesty figures on simulated markets: does the pipeline find what was planted, and only that?

The simulator can return the latent order-flow imbalance it planted. An *oracle* — the same model
family trained on that latent state instead of the ticks' features — bounds the log-loss gain over the
training prior that anything can achieve; the pipeline's model, which sees only ticks, is measured as a
share of that gain. On a random walk the gain must be nil and the gate must refuse. The latent state is
used here, for evaluation, and never becomes a feature column.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from feature_store.features import compute_features, feature_set
from feature_store.instruments import Instrument
from pipelines import gate
from pipelines.challenge import ChallengeSpec, run_challenge
from pipelines.dataset import KEY, build_dataset, split_dataset
from pipelines.families import get_family
from pipelines.labels import label_ticks
from pipelines.simulate import simulate_session_latent
from pipelines.training import (
    HORIZONS,
    class_prior,
    evaluate,
    matrix,
    prior_losses,
    row_losses,
    train_direction_model,
)
from pipelines.validation import WalkForward, walk_forward

LATENT_COLUMNS = ["imbalance"]  # what the oracle sees: the planted state, never a catalogue feature


def latent_dataset(
    instrument: Instrument,
    first_day: dt.date,
    days: int,
    *,
    seed: int,
    signal: float,
    stride: int,
    holdout_days: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(dataset, latent): a training dataset over `days` simulated sessions and, row-aligned with it, the
    latent `imbalance` the simulator planted at each row's tick (for evaluation only)."""
    features, labels, latents = [], [], []
    for day in instrument.trading_days(first_day, days):
        ticks, latent = simulate_session_latent(instrument, day, seed=seed, signal=signal)
        features.append(compute_features(ticks, instrument))
        labels.append(label_ticks(ticks, instrument))
        latents.append(latent)
    dataset = build_dataset(
        pd.concat(features, ignore_index=True),
        pd.concat(labels, ignore_index=True),
        instrument,
        stride=stride,
        holdout_days=holdout_days,
    )
    latent = dataset[list(KEY)].merge(pd.concat(latents), on=list(KEY), how="left", validate="one_to_one")
    return dataset, latent[["imbalance"]]


@dataclass(frozen=True)
class HonestyRow:
    signal: float
    horizon: str
    family: str
    model_log_loss: float
    prior_log_loss: float
    oracle_log_loss: float
    balanced_accuracy: float
    chance: float
    lower_bound: float
    gate_passed: bool

    @property
    def recovery(self) -> float:
        """The model's share of the oracle's gain over the prior (nan when the oracle gains nothing)."""
        oracle_gain = self.prior_log_loss - self.oracle_log_loss
        if oracle_gain <= 1e-4:
            return float("nan")
        return (self.prior_log_loss - self.model_log_loss) / oracle_gain


def honesty(
    instrument: Instrument,
    first_day: dt.date,
    *,
    signal: float,
    days: int = 10,
    holdout_days: int = 3,
    folds: int = 3,
    stride: int = 20,
    seed: int = 7,
    spec: ChallengeSpec | None = None,
    candidates: str = "direction_candidates_v1",
) -> list[HonestyRow]:
    """Per horizon: the challenge's refit winner, the training prior and the latent oracle on the same
    held-out ticks, with the gate's verdict against the prior."""
    spec = spec or ChallengeSpec()
    dataset, latent = latent_dataset(
        instrument, first_day, days, seed=seed, signal=signal, stride=stride, holdout_days=holdout_days
    )
    features = feature_set(candidates)
    train, held, _ = split_dataset(dataset)
    split = walk_forward(list(train["day"].unique()), WalkForward(folds=folds))
    rows = []
    for horizon in HORIZONS.values():
        result = run_challenge(dataset, horizon, features, split, spec)
        winner = result.winner
        trained = train_direction_model(
            dataset, horizon, features, family=winner.family, params=winner.best_params
        )
        y = horizon.codes(held[horizon.label_column])
        proba = trained.predict_proba(matrix(held, features))
        prior = class_prior(train[horizon.label_column], horizon)
        model_losses = row_losses(proba, y)
        baseline_losses = prior_losses(prior, y)
        family = get_family(winner.family)
        oracle = family.fit(
            latent.loc[train.index, LATENT_COLUMNS].to_numpy(),
            horizon.codes(train[horizon.label_column]),
            len(horizon.classes),
            family.defaults(),
        )
        oracle_losses = row_losses(
            family.predict_proba(oracle, latent.loc[held.index, LATENT_COLUMNS].to_numpy()), y
        )
        comparison = gate.compare(
            model_losses, baseline_losses, gate.time_blocks(held["ts"], horizon.block), baseline="prior"
        )
        rows.append(
            HonestyRow(
                signal=signal,
                horizon=horizon.key,
                family=winner.family,
                model_log_loss=float(model_losses.mean()),
                prior_log_loss=float(baseline_losses.mean()),
                oracle_log_loss=float(oracle_losses.mean()),
                balanced_accuracy=evaluate(proba, held[horizon.label_column], horizon.classes)[
                    "balanced_accuracy"
                ],
                chance=1.0 / len(horizon.classes),
                lower_bound=comparison.lower_bound,
                gate_passed=comparison.passed,
            )
        )
    return rows


def table(rows: list[HonestyRow]) -> str:
    """The honesty figures as a Markdown table."""
    lines = [
        "| signal | horizon | winner | model log loss | prior | oracle | share of oracle gain | balanced acc. "
        "(chance) | gate lower bound | gate |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        recovery = "n/a (nothing to gain)" if np.isnan(r.recovery) else f"{r.recovery:.0%}"
        lines.append(
            f"| {r.signal:g} | {r.horizon} | {r.family} | {r.model_log_loss:.4f} | {r.prior_log_loss:.4f} | "
            f"{r.oracle_log_loss:.4f} | {recovery} | {r.balanced_accuracy:.3f} ({r.chance:.3f}) | "
            f"{r.lower_bound:+.4f} | {'passed' if r.gate_passed else 'refused'} |"
        )
    return "\n".join(lines)
