"""The challenge: per horizon, each model family tuned by Optuna inside the purged walk-forward folds.

The objective of a trial is its mean log loss over the folds' test days, on every labelled tick. When an
MLflow run is active (the challenge run), every trial is logged as a nested run under it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import mlflow
import numpy as np
import optuna
import pandas as pd

from feature_store.features import FeatureSet
from pipelines.families import get_family
from pipelines.training import Horizon, Rows, class_prior, matrix, prior_losses, row_losses, training_rows
from pipelines.validation import Fold, WalkForward, split_rows


@dataclass(frozen=True)
class ChallengeSpec:
    """What the challenge tries: families, the trial and time budget of each study, the training rows."""

    families: tuple[str, ...] = ("lightgbm", "catboost")
    trials: int = 4  # per family and horizon, the family's defaults being the first
    timeout_s: float = 60.0  # per family and horizon; a started trial finishes
    rows: Rows = "all"
    seed: int = 7

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        for family in self.families:
            get_family(family)


@dataclass
class TrialRecord:
    family: str
    number: int
    params: dict
    fold_log_loss: list[float]
    state: str  # COMPLETE or PRUNED
    seconds: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_log_loss)) if self.fold_log_loss else float("nan")


@dataclass
class FamilyResult:
    family: str
    best_params: dict
    best_fold_log_loss: list[float]
    trials: list[TrialRecord] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def best_mean(self) -> float:
        return float(np.mean(self.best_fold_log_loss))


@dataclass
class ChallengeResult:
    horizon: Horizon
    folds: list[Fold]
    families: dict[str, FamilyResult]
    rows: Rows
    prior_fold_log_loss: list[float]  # the training-prior baseline on each fold's test rows

    @property
    def winner(self) -> FamilyResult:
        """The family with the lowest mean walk-forward log loss (ties go to the first family)."""
        return min(self.families.values(), key=lambda f: f.best_mean)

    def summary(self) -> dict:
        """What the registered version records about the challenge that chose it (JSON-ready)."""
        return {
            "winner": self.winner.family,
            "rows": self.rows,
            "folds": [f.to_dict() for f in self.folds],
            "prior_fold_log_loss": self.prior_fold_log_loss,
            "prior_mean_log_loss": float(np.mean(self.prior_fold_log_loss)),
            "families": {
                name: {
                    "best_params": f.best_params,
                    "fold_log_loss": f.best_fold_log_loss,
                    "mean_log_loss": f.best_mean,
                    "trials": len(f.trials),
                    "pruned": sum(t.state == "PRUNED" for t in f.trials),
                    "seconds": round(f.seconds, 2),
                    "seconds_per_trial": round(f.seconds / max(len(f.trials), 1), 2),
                }
                for name, f in self.families.items()
            },
        }


@dataclass(frozen=True)
class _FoldData:
    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray
    prior_log_loss: float  # a constant at the fold's training class mix, on its test rows


def _fold_data(
    dataset: pd.DataFrame,
    folds: list[Fold],
    horizon: Horizon,
    feature_set: FeatureSet,
    spec: WalkForward,
    rows,
) -> list[_FoldData]:
    out = []
    for fold in folds:
        split = split_rows(dataset, fold, embargo=spec.embargo)
        train, weight = training_rows(dataset.iloc[split.train], rows)
        test = dataset.iloc[split.test]
        y_test = horizon.codes(test[horizon.label_column])
        prior = class_prior(train[horizon.label_column], horizon)
        out.append(
            _FoldData(
                matrix(train, feature_set),
                horizon.codes(train[horizon.label_column]),
                weight,
                matrix(test, feature_set),
                y_test,
                float(prior_losses(prior, y_test).mean()),
            )
        )
    return out


def run_challenge(
    dataset: pd.DataFrame,
    horizon: Horizon,
    feature_set: FeatureSet,
    folds: list[Fold],
    spec: ChallengeSpec,
    *,
    walk_forward: WalkForward | None = None,
    progress=None,
) -> ChallengeResult:
    """Tune each family of `spec` by Optuna over `folds` of `dataset`; the best trial of each wins its
    family. `progress(family, trial)` is called after each trial when given."""
    data = _fold_data(dataset, folds, horizon, feature_set, walk_forward or WalkForward(), spec.rows)
    classes = len(horizon.classes)
    results = {}
    optuna.logging.set_verbosity(logging.WARNING)
    for name in spec.families:
        family = get_family(name)
        records: list[TrialRecord] = []
        study = optuna.create_study(
            study_name=f"{horizon.key}-{name}",
            direction="minimize",
            sampler=optuna.samplers.TPESampler(seed=spec.seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        )
        study.enqueue_trial(family.defaults())

        def objective(trial: optuna.Trial, family=family, name=name, records=records) -> float:
            params = family.suggest(trial)
            started, losses, state = time.monotonic(), [], "COMPLETE"
            try:
                for step, fd in enumerate(data):
                    model = family.fit(fd.X, fd.y, classes, params, fd.weight)
                    losses.append(float(row_losses(family.predict_proba(model, fd.X_test), fd.y_test).mean()))
                    trial.report(losses[-1], step)
                    if step < len(data) - 1 and trial.should_prune():
                        state = "PRUNED"
                        raise optuna.TrialPruned()
                return float(np.mean(losses))
            finally:
                record = TrialRecord(name, trial.number, params, losses, state, time.monotonic() - started)
                records.append(record)
                _log_trial(horizon, record)
                if progress:
                    progress(name, record)

        started = time.monotonic()
        study.optimize(objective, n_trials=spec.trials, timeout=spec.timeout_s)
        best = study.best_trial
        best_record = next(r for r in records if r.number == best.number)
        results[name] = FamilyResult(
            name, best_record.params, best_record.fold_log_loss, records, time.monotonic() - started
        )
    return ChallengeResult(horizon, list(folds), results, spec.rows, [fd.prior_log_loss for fd in data])


def _log_trial(horizon: Horizon, record: TrialRecord) -> None:
    """A nested MLflow run for the trial under the active challenge run (nothing when none is active)."""
    if mlflow.active_run() is None:
        return
    with mlflow.start_run(run_name=f"{horizon.key}-{record.family}-trial-{record.number}", nested=True):
        mlflow.set_tags(
            {"kind": "trial", "family": record.family, "horizon": horizon.key, "state": record.state}
        )
        mlflow.log_params(record.params)
        for step, loss in enumerate(record.fold_log_loss):
            mlflow.log_metric("fold_log_loss", loss, step=step)
        metrics = {"seconds": record.seconds}
        if record.state == "COMPLETE":
            metrics["mean_log_loss"] = record.mean
        mlflow.log_metrics(metrics)
