"""Honesty figures: a random walk and the demo's planted signal through the same challenge and gate.

The oracle is the winning family trained on the simulator's latent order-flow state: the gain over the
training prior that is there to be found. Measured here and now, never asserted on time.
"""

from __future__ import annotations

import time

from feature_store.instruments import get_instrument
from pipelines.challenge import ChallengeSpec
from pipelines.honesty import honesty, table
from pipelines.simulate import DEMO_SIGNAL
from tickml.demo import TRAIN_START, demo_training


def run(*, days: int = 10) -> str:
    """The honesty table at signal 0 and at the demo's signal, with the demo's training config."""
    config = demo_training(days)
    spec = ChallengeSpec(trials=config["trials"], timeout_s=config["timeout_s"])
    rows, seconds = [], {}
    for signal in (0.0, DEMO_SIGNAL):
        started = time.monotonic()
        rows += honesty(
            get_instrument("NIFTY"),
            TRAIN_START,
            signal=signal,
            days=days,
            holdout_days=config["holdout_days"],
            folds=config["folds"],
            stride=config["stride"],
            spec=spec,
        )
        seconds[signal] = time.monotonic() - started
    timing = ", ".join(f"signal {s:g}: {t:.0f} s" for s, t in seconds.items())
    return "\n".join(
        [
            f"## Honesty ({days} simulated NIFTY days, {config['holdout_days']} held out; {timing})",
            "",
            table(rows),
        ]
    )
