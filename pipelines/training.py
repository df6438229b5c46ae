"""Training the direction models: a family's model on a feature set, scored on every held-out tick."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, log_loss

from feature_store.features import FeatureSet
from feature_store.schema import LABELS_15M, LABELS_30M
from pipelines.dataset import class_balance, split_dataset
from pipelines.families import get_family
from pipelines.validation import Fold, split_rows

Rows = Literal["all", "consensus", "consensus_weight"]
ROWS: tuple[str, ...] = ("all", "consensus", "consensus_weight")
CONSENSUS_WEIGHT = 3.0  # with rows="consensus_weight", a consensus row counts this many times


@dataclass(frozen=True)
class Horizon:
    """One prediction target: the registered model name, its label column and its classes in order."""

    key: str
    model_name: str
    label_column: str
    classes: tuple[str, ...]
    length: pd.Timedelta  # how far the label looks ahead

    @property
    def block(self) -> pd.Timedelta:
        """The promotion gate's block of held-out time: one label horizon, so blocks barely share labels."""
        return self.length

    def codes(self, labels: pd.Series) -> np.ndarray:
        """Class indices (into `classes`) of `labels`."""
        return labels.map({c: i for i, c in enumerate(self.classes)}).to_numpy(dtype=np.int64)


HORIZON_15M = Horizon("15m", "direction-15m", "label_15m", LABELS_15M, pd.Timedelta(minutes=15))
HORIZON_30M = Horizon("30m", "direction-30m", "label_30m", LABELS_30M, pd.Timedelta(minutes=30))
HORIZONS = {h.key: h for h in (HORIZON_15M, HORIZON_30M)}


@dataclass(frozen=True)
class TrainedModel:
    """A fitted model with what it was trained on and how it scored on the held-out days."""

    horizon: Horizon
    flavor: str  # the model family: "lightgbm" or "catboost"
    model: Any
    feature_set: FeatureSet
    params: dict
    metrics: dict[str, float]
    holdout_days: list[dt.date]
    train_days: list[dt.date]
    confusion: np.ndarray
    train_balance: dict[str, int] = field(default_factory=dict)
    prior: np.ndarray | None = None  # the training rows' class mix, in `horizon.classes` order
    challenge: dict | None = None  # the challenge that chose this configuration, when one did

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return get_family(self.flavor).predict_proba(self.model, X)


def matrix(frame: pd.DataFrame, feature_set: FeatureSet) -> np.ndarray:
    """The model input: the feature-set columns of `frame`, in feature-set order, as float64."""
    return frame.loc[:, list(feature_set.features)].to_numpy(dtype=np.float64)


def row_losses(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row log loss of class probabilities `proba` (n, k) at the true class codes `y`."""
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return -np.log(p)


def prior_losses(prior: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row log loss of a constant forecast at the class mix `prior` (k,): the baseline every score faces."""
    return row_losses(np.tile(prior, (len(y), 1)), y)


def brier(proba: np.ndarray, y: np.ndarray) -> float:
    """Multiclass Brier score: mean over rows of the squared distance to the one-hot truth."""
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y)), y] = 1.0
    return float(((proba - onehot) ** 2).sum(axis=1).mean())


def evaluate(proba: np.ndarray, labels: pd.Series, classes: tuple[str, ...]) -> dict[str, float]:
    """Log loss, Brier, accuracy, balanced accuracy and macro F1 of `proba` (columns in `classes` order)."""
    y = labels.map({c: i for i, c in enumerate(classes)}).to_numpy()
    pred = proba.argmax(axis=1)
    every = list(range(len(classes)))
    return {
        "log_loss": float(log_loss(y, proba, labels=every)),
        "brier": brier(proba, y),
        "accuracy": float(accuracy_score(y, pred)),
        # chance is 1 / classes whatever the class mix: the leakage tripwire
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if len(set(y)) > 1 else float("nan"),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=every, zero_division=0)),
        "rows": float(len(y)),
    }


def class_prior(labels: pd.Series, horizon: Horizon) -> np.ndarray:
    """The class mix of `labels` with one pseudo-count per class, in `horizon.classes` order."""
    counts = np.bincount(horizon.codes(labels), minlength=len(horizon.classes)).astype(np.float64) + 1.0
    return counts / counts.sum()


def training_rows(frame: pd.DataFrame, rows: Rows) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The rows a model fits on and their weights: every labelled tick ("all", the live population),
    the consensus rows only ("consensus", the reference design), or all with consensus rows weighted
    up ("consensus_weight")."""
    if rows == "all":
        return frame, None
    if rows == "consensus":
        return frame[frame["consensus"]], None
    if rows == "consensus_weight":
        return frame, np.where(frame["consensus"].to_numpy(), CONSENSUS_WEIGHT, 1.0)
    raise ValueError(f"rows must be one of {ROWS}, got {rows!r}")


def fit_family(
    frame: pd.DataFrame, horizon: Horizon, feature_set: FeatureSet, family: str, params: dict, rows: Rows
) -> Any:
    """Fit `family` with `params` on `frame`'s training rows (per `rows`) for `horizon`."""
    fit_on, weight = training_rows(frame, rows)
    if fit_on.empty:
        raise ValueError(f"no training rows left for {horizon.model_name} with rows={rows!r}")
    return get_family(family).fit(
        matrix(fit_on, feature_set),
        horizon.codes(fit_on[horizon.label_column]),
        len(horizon.classes),
        params,
        weight,
    )


def train_direction_model(
    dataset: pd.DataFrame,
    horizon: Horizon,
    feature_set: FeatureSet,
    *,
    family: str = "lightgbm",
    params: dict | None = None,
    rows: Rows = "all",
    challenge: dict | None = None,
) -> TrainedModel:
    """Fit `family` for `horizon` on the dataset's training days and score it on every held-out tick.

    Training rows whose label interval reaches the held-out span are purged first (a day-session
    market loses none: labels end at the close). `params` override the family's defaults.
    """
    params = {**get_family(family).defaults(), **(params or {})}
    train, held, held_days = split_dataset(dataset)
    train_days = sorted(train["day"].unique())
    split = split_rows(dataset, Fold(-1, tuple(train_days), tuple(held_days)))
    train = dataset.iloc[split.train]
    model = fit_family(train, horizon, feature_set, family, params, rows)
    proba = get_family(family).predict_proba(model, matrix(held, feature_set))
    y_true = horizon.codes(held[horizon.label_column])
    consensus = held["consensus"].to_numpy()
    return TrainedModel(
        horizon=horizon,
        flavor=family,
        model=model,
        feature_set=feature_set,
        params={**params, "rows": rows},
        metrics={
            **evaluate(proba, held[horizon.label_column], horizon.classes),
            # the same model on the held-out rows the consensus filter keeps: the reference design's
            # (optimistic) reading, logged beside the honest one so the gap stays visible
            **(
                {
                    f"consensus_{k}": v
                    for k, v in evaluate(
                        proba[consensus], held.loc[consensus, horizon.label_column], horizon.classes
                    ).items()
                }
                if consensus.any()
                else {}
            ),
            "purged_rows": float(split.purged + split.embargoed),
        },
        holdout_days=list(held_days),
        train_days=list(train_days),
        confusion=confusion_matrix(y_true, proba.argmax(axis=1), labels=list(range(len(horizon.classes)))),
        train_balance=class_balance(train[horizon.label_column]),
        prior=class_prior(train[horizon.label_column], horizon),
        challenge=challenge,
    )
