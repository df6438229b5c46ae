"""The model families a challenge tunes: how each fits, predicts, and what Optuna may try for it.

A family's model predicts class probabilities with columns in the horizon's class order, whatever
classes the training rows happened to hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import catboost
import lightgbm as lgb
import numpy as np
import optuna

THREADS = 2
# Fewer rows than this are predicted on one thread: for a single live tick, waking the library's thread pool
# costs more than the prediction, and its threads spin on the core the service's client needs
# (single-tick POST /score p50 2.02 -> 1.56 ms on this machine, `benchmarks/scoring.py`).
SMALL_BATCH = 256


def _threads(rows: int) -> int:
    return 1 if rows < SMALL_BATCH else THREADS


class Family(Protocol):
    name: str

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]: ...

    def fit(self, X: np.ndarray, y: np.ndarray, classes: int, params: dict, weight=None) -> Any: ...

    def predict_proba(self, model: Any, X: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class LightGBMFamily:
    name: str = "lightgbm"
    seed: int = 7

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "num_boost_round": trial.suggest_int("num_boost_round", 30, 200, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 48, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 50, 1000, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-2, 100.0, log=True),
        }

    def defaults(self) -> dict[str, Any]:
        return {
            "learning_rate": 0.05,
            "num_boost_round": 80,
            "num_leaves": 15,
            "min_data_in_leaf": 200,
            "feature_fraction": 0.6,
            "lambda_l2": 10.0,
        }

    def fit(self, X: np.ndarray, y: np.ndarray, classes: int, params: dict, weight=None) -> lgb.Booster:
        params = dict(params)
        rounds = int(params.pop("num_boost_round"))
        return lgb.train(
            {
                "bagging_fraction": 0.8,
                "bagging_freq": 1,
                "max_bin": 63,
                "num_threads": THREADS,
                "seed": self.seed,
                **params,
                "objective": "multiclass",
                "num_class": classes,
                "verbosity": -1,
            },
            lgb.Dataset(X, label=y, weight=weight),
            num_boost_round=rounds,
        )

    def predict_proba(self, model: lgb.Booster, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        proba = model.predict(X, num_threads=_threads(len(X)))
        return np.asarray(proba, dtype=np.float64).reshape(len(X), -1)


@dataclass(frozen=True)
class CatBoostFamily:
    name: str = "catboost"
    seed: int = 7

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.3, log=True),
            "iterations": trial.suggest_int("iterations", 30, 200, log=True),
            "depth": trial.suggest_int("depth", 3, 6),
            "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 30.0, log=True),
            "rsm": trial.suggest_float("rsm", 0.3, 1.0),
        }

    def defaults(self) -> dict[str, Any]:
        return {"learning_rate": 0.1, "iterations": 80, "depth": 4, "l2_leaf_reg": 5.0, "rsm": 0.6}

    def fit(
        self, X: np.ndarray, y: np.ndarray, classes: int, params: dict, weight=None
    ) -> catboost.CatBoostClassifier:
        model = catboost.CatBoostClassifier(
            **params,
            loss_function="MultiClass",
            class_names=list(range(classes)),  # every class gets a column, seen in training or not
            border_count=63,
            thread_count=THREADS,
            random_seed=self.seed,
            verbose=False,
            allow_writing_files=False,
        )
        return model.fit(X, y, sample_weight=weight)

    def predict_proba(self, model: catboost.CatBoostClassifier, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return np.asarray(model.predict_proba(X, thread_count=_threads(len(X))), dtype=np.float64)


FAMILIES: dict[str, Family] = {f.name: f for f in (LightGBMFamily(), CatBoostFamily())}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}") from None
