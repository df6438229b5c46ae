"""Figures shared by MLflow runs and Dagster metadata (matplotlib, headless)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen before pyplot loads
import numpy as np  # noqa: E402


def confusion_figure(confusion: np.ndarray, classes: tuple[str, ...], title: str) -> plt.Figure:
    """Counts of true (rows) vs. predicted (columns) classes, annotated."""
    fig, ax = plt.subplots(figsize=(1.1 * len(classes) + 2, 1.1 * len(classes) + 1.5))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), n in np.ndenumerate(confusion):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def reliability_figure(
    proba: np.ndarray, y: np.ndarray, classes: tuple[str, ...], title: str, bins: int = 10
):
    """Per class, one-vs-rest: mean predicted probability against the observed frequency, by decile
    of the prediction (points sized by rows); the diagonal is perfect calibration."""
    from sklearn.calibration import calibration_curve

    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    for c, name in enumerate(classes):
        hit = (y == c).astype(int)
        if hit.min() == hit.max():
            continue
        observed, predicted = calibration_curve(hit, proba[:, c], n_bins=bins, strategy="quantile")
        ax.plot(predicted, observed, marker="o", ms=3, lw=1, label=name)
    top = float(max(proba.max(), 0.05))
    ax.set_xlim(0, min(1, top * 1.05))
    ax.set_ylim(0, min(1, top * 1.05))
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def block_differences_figure(differences: dict[str, np.ndarray], lower_bounds: dict[str, float], title: str):
    """Per held-out block, baseline minus candidate log loss (above zero: the candidate is better)."""
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    for name, diff in differences.items():
        ax.plot(
            np.arange(len(diff)),
            diff,
            marker=".",
            lw=0.8,
            label=f"vs {name} (lower bound {lower_bounds[name]:+.4f})",
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("held-out block (time order)")
    ax.set_ylabel("log loss gain")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
