"""Training the direction models: LightGBM on a feature set, scored on held-out trading days."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss

from feature_store.features import FeatureSet
from feature_store.schema import LABELS_15M, LABELS_30M
from pipelines.dataset import class_balance, split_by_days, split_dataset


@dataclass(frozen=True)
class Horizon:
    """One prediction target: the registered model name, its label column and its classes in order."""

    key: str
    model_name: str
    label_column: str
    classes: tuple[str, ...]


HORIZON_15M = Horizon("15m", "direction-15m", "label_15m", LABELS_15M)
HORIZON_30M = Horizon("30m", "direction-30m", "label_30m", LABELS_30M)
HORIZONS = {h.key: h for h in (HORIZON_15M, HORIZON_30M)}

DEFAULT_PARAMS: dict = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_boost_round": 300,
    "early_stopping_rounds": 30,
    "num_threads": 2,
    "seed": 7,
}


@dataclass(frozen=True)
class TrainedModel:
    """A fitted booster with what it was trained on and how it scored on the held-out days."""

    horizon: Horizon
    booster: lgb.Booster
    feature_set: FeatureSet
    params: dict
    metrics: dict[str, float]
    holdout_days: list[dt.date]
    train_days: list[dt.date]
    confusion: np.ndarray
    train_balance: dict[str, int] = field(default_factory=dict)


def matrix(frame: pd.DataFrame, feature_set: FeatureSet) -> np.ndarray:
    """The model input: the feature-set columns of `frame`, in feature-set order, as float64."""
    return frame.loc[:, list(feature_set.features)].to_numpy(dtype=np.float64)


def evaluate(proba: np.ndarray, labels: pd.Series, classes: tuple[str, ...]) -> dict[str, float]:
    """Log loss, accuracy and macro F1 of class probabilities `proba` (columns in `classes` order)."""
    y = labels.map({c: i for i, c in enumerate(classes)}).to_numpy()
    pred = proba.argmax(axis=1)
    return {
        "log_loss": float(log_loss(y, proba, labels=list(range(len(classes))))),
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(
            f1_score(y, pred, average="macro", labels=list(range(len(classes))), zero_division=0)
        ),
        "rows": float(len(y)),
    }


def train_direction_model(
    dataset: pd.DataFrame,
    horizon: Horizon,
    feature_set: FeatureSet,
    *,
    params: dict | None = None,
) -> TrainedModel:
    """Fit a multiclass LightGBM for `horizon` on the dataset's training days; score its held-out days.

    Needs at least two training days: one or more to fit, the last one to stop early on.
    """
    params = {**DEFAULT_PARAMS, **(params or {})}
    train, held, held_days = split_dataset(dataset)
    # Early stopping watches the last training day, never the held-out days that promotion compares on.
    fit, stop_on, _ = split_by_days(train, 1)
    index = {c: i for i, c in enumerate(horizon.classes)}
    rounds, patience = int(params.pop("num_boost_round")), int(params.pop("early_stopping_rounds"))

    def data(frame: pd.DataFrame, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(
            matrix(frame, feature_set),
            label=frame[horizon.label_column].map(index).to_numpy(),
            feature_name=list(feature_set.features),
            reference=reference,
        )

    fit_data = data(fit)
    booster = lgb.train(
        {**params, "objective": "multiclass", "num_class": len(horizon.classes), "verbosity": -1},
        fit_data,
        num_boost_round=rounds,
        valid_sets=[data(stop_on, fit_data)],
        callbacks=[lgb.early_stopping(patience, verbose=False)],
    )
    proba = booster.predict(matrix(held, feature_set))
    y_true = held[horizon.label_column].map(index).to_numpy()
    return TrainedModel(
        horizon=horizon,
        booster=booster,
        feature_set=feature_set,
        params={
            **params,
            "num_boost_round": rounds,
            "early_stopping_rounds": patience,
            "best_iteration": booster.best_iteration,
        },
        metrics={
            **evaluate(proba, held[horizon.label_column], horizon.classes),
            # the same model on the held-out rows the consensus filter keeps: the reference design's
            # (optimistic) reading, logged beside the honest one so the gap stays visible
            **{
                f"consensus_{k}": v
                for k, v in evaluate(
                    proba[held["consensus"].to_numpy()],
                    held.loc[held["consensus"], horizon.label_column],
                    horizon.classes,
                ).items()
            },
        },
        holdout_days=held_days,
        train_days=sorted(train["day"].unique()),
        confusion=confusion_matrix(y_true, proba.argmax(axis=1), labels=list(range(len(horizon.classes)))),
        train_balance=class_balance(train[horizon.label_column]),
    )
