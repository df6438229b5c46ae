"""`tickml demo`: the whole path on embedded defaults, from simulated ticks to live scored predictions."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tickml import service
from tickml.env import apply_defaults
from tickml.train import training_config

TRAIN_START = dt.date(2026, 10, 19)  # fixed training dates keep the demo reproducible
PROBE_TICKS = 300
LIVE_DRIVER = (
    "`tickml stream`'s loop (pipelines.streaming.run_stream) in this process, its progress on Dagster's "
    "live_predictions; the scoring_sensor is the other driver (start it in the UI with the service up)"
)
STREAM_CURSOR = "demo"
# Small on purpose: the demo stays under 5 minutes on 2 cores (`make bench` shows what more tuning buys)
DEMO_TRAINING = {"stride": 20, "k": 71, "trials": 4, "timeout_s": 12.0, "families": ["lightgbm", "catboost"]}


def demo_training(days: int) -> dict:
    """The demo's training config for `days` simulated days: 3 held out from 8 days on (fewer below), and
    up to 3 walk-forward folds over the rest, each with 2 training days or more."""
    holdout = 3 if days >= 8 else 2 if days >= 6 else 1
    return {**DEMO_TRAINING, "holdout_days": holdout, "folds": max(1, min(3, days - holdout - 2))}


@dataclass
class DemoSummary:
    ticks: int = 0
    labelled: int = 0
    dataset_rows: int = 0
    held_out_days: int = 0
    models: dict[str, dict] = field(default_factory=dict)
    live_ticks: int = 0
    predictions_new: int = 0
    predictions_stored: int = 0
    days: list[dt.date] = field(default_factory=list)
    live_day: dt.date | None = None
    skipped_live: str = ""
    backtest: str = ""  # the backtest_report's table and verdict for the held-out days
    backtest_models: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    single_tick_ms: list[float] = field(default_factory=list)
    trades: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def render(self) -> str:
        def pct(values: list[float]) -> str:
            v = np.asarray(values or [np.nan])
            return f"p50 {np.percentile(v, 50):.2f} ms, p99 {np.percentile(v, 99):.2f} ms"

        lines = [
            "tickml demo summary",
            f"  ticks stored            {self.ticks:,} over {len(self.days)} training days "
            f"({self.days[0]} .. {self.days[-1]})",
            f"  labelled ticks          {self.labelled:,} (the rest: horizon past the session close)",
            f"  training dataset        {self.dataset_rows:,} rows, every {DEMO_TRAINING['stride']}th labelled "
            f"tick; the last {self.held_out_days} days held out for the gate",
        ]
        for name, m in self.models.items():
            champion = f"v{m['champion']}" if m["champion"] else "none"
            lines += [
                f"  {name:<22}  candidate v{m['version']} ({m['flavor']}, {m['feature_set']}), walk-forward "
                f"log loss {m['walk_forward']}",
                f"  {'':<22}  held-out log loss {m['candidate_log_loss']:.4f} vs training prior "
                f"{m['prior_log_loss']:.4f} (Brier {m['brier']:.4f}, balanced accuracy "
                f"{m['balanced_accuracy']:.3f}); gate {'PASSED' if m['promoted'] else 'REFUSED'}, 95% lower "
                f"bound of the gain {m['lower_bound']:+.4f}; champion {champion}",
            ]
        if self.backtest:
            lines.append(f"  backtest, held out      {self.backtest_models}; after costs, beside the rules:")
            lines += [f"    {line}" for line in self.backtest.splitlines() if line]
        if self.skipped_live:
            lines.append(f"  live session            skipped: {self.skipped_live}")
            lines.append(
                "  stage seconds           " + ", ".join(f"{k} {v:.0f}" for k, v in self.seconds.items())
            )
            return "\n".join(lines)
        requests = max(len(self.latencies_ms), 1)
        lines += [
            f"  live session            {self.live_day}: {self.live_ticks:,} ticks streamed "
            f"+ {len(self.single_tick_ms)} single-tick probes",
            f"  streaming driver        {LIVE_DRIVER}",
            f"  predictions stored      {self.predictions_stored:,} ({self.predictions_new:,} new this run)",
            f"  trade filter actions    {self.trades}",
            f"  scoring latency (HTTP)  streamed: {pct(self.latencies_ms)} per request "
            f"({self.live_ticks / requests:.1f} ticks/request); single tick: {pct(self.single_tick_ms)}",
            "  stage seconds           " + ", ".join(f"{k} {v:.0f}" for k, v in self.seconds.items()),
        ]
        return "\n".join(lines)


def run_demo(
    *,
    days: int = 10,
    live_minutes: int = 35,
    speed: float = 60.0,
    seed: int = 7,
    signal: float | None = None,
) -> DemoSummary:
    """Simulate `days` NIFTY sessions, materialise the asset graph, serve the champions, stream live ticks.

    When the gate refuses a candidate and no champion exists, nothing is served: the live part is
    skipped and the summary says why.
    `signal` defaults to the simulator's DEMO_SIGNAL.
    """
    env = apply_defaults()
    from feature_store.instruments import DEFAULT_UNIVERSE, get_instrument
    from feature_store.offline import OfflineStore
    from feature_store.store import open_store
    from orchestration.local import materialise_simulated_days, run_training
    from pipelines import registry
    from pipelines.simulate import DEMO_SIGNAL, simulate_session

    signal = DEMO_SIGNAL if signal is None else signal

    summary, clock = DemoSummary(), time.monotonic()
    nifty = get_instrument("NIFTY")
    train_days = summary.days = nifty.trading_days(TRAIN_START, days)
    with tqdm(total=len(train_days), desc="ticks → labels → features, one run", unit="day") as bar:
        materialise_simulated_days("NIFTY", train_days, seed=seed, signal=signal)
        bar.update(len(train_days))
    summary.seconds["data"] = time.monotonic() - clock

    clock = time.monotonic()
    with tqdm(total=1, desc="dataset → SHAP → models → champions", unit="job") as bar:
        outcomes, result = run_training(DEFAULT_UNIVERSE, training_config(**demo_training(days)))
        bar.update()
    summary.seconds["training"] = time.monotonic() - clock
    client = registry.configure()
    for name, outcome in outcomes.items():
        mv = client.get_model_version(name, outcome["version"])
        metrics = client.get_run(mv.run_id).data.metrics
        summary.models[name] = {
            **outcome,
            "feature_set": f"{mv.tags['feature_set']}@v{mv.tags['feature_set_version']}",
            "walk_forward": ", ".join(f"{k} {v:.4f}" for k, v in outcome["walk_forward"].items()),
            "brier": metrics["holdout_brier"],
            "balanced_accuracy": metrics["holdout_balanced_accuracy"],
        }

    offline, store = OfflineStore(env["TICKML_HOME"]), open_store()
    summary.ticks = sum(len(store.read_ticks("NIFTY", *nifty.session_bounds(d))) for d in train_days)
    summary.labelled = int(offline.read("labels", "NIFTY", train_days)["label_15m"].notna().sum())
    dataset = result.output_for_node("training_dataset")
    summary.dataset_rows, summary.held_out_days = (
        len(dataset),
        dataset.loc[dataset["holdout"], "day"].nunique(),
    )
    backtest = result.asset_materializations_for_node("backtest_report")[0].metadata
    summary.backtest_models = backtest["models"].value
    summary.backtest = backtest["NIFTY_summary"].value
    missing = [name for name, o in outcomes.items() if not o["champion"]]
    if missing:
        summary.skipped_live = (
            f"no champion for {', '.join(missing)}: the gate refused the candidates against the training "
            "prior, so there is nothing vetted to serve"
        )
        store.close()
        return summary

    clock = time.monotonic()
    port = service.free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(env["TICKML_HOME"]) / "service.log"
    proc = service.start(port, log_path=log)
    try:
        with tqdm(total=1, desc=f"starting scoring service on :{port}", unit="svc") as bar:
            service.wait_ready(proc, url, log_path=log)
            bar.update()
        summary.seconds["service start"] = time.monotonic() - clock
        clock = time.monotonic()
        live_day = nifty.trading_days(max(store.days("NIFTY")) + dt.timedelta(days=1), 1)[0]
        summary.live_day = live_day
        session = simulate_session(nifty, live_day, seed=seed, signal=signal)
        _stream_live(summary, store, url, session, live_minutes, speed)
        summary.seconds["live"] = time.monotonic() - clock
    finally:
        service.stop(proc)
        store.close()
    return summary


def _stream_live(summary: DemoSummary, store, url: str, session, minutes: int, speed: float) -> None:
    """Feed `minutes` of `session` at `speed`x while the `tickml stream` driver scores what arrives (its
    progress reported on `live_predictions` in Dagster), then probe single-tick latency with the next ticks
    of the session, one request each (a 1x feed's shape)."""
    from orchestration.local import local_instance
    from orchestration.serving.live import ProgressReporter
    from pipelines.feed import play
    from pipelines.streaming import (
        ScoringClient,
        TickKey,
        dump_cursor,
        load_cursor,
        run_stream,
        score_new_ticks,
    )

    cutoff = session["ts"].iloc[0] + np.timedelta64(minutes, "m")
    live, probe = session[session["ts"] < cutoff], session[session["ts"] >= cutoff].iloc[:PROBE_TICKS]
    summary.live_ticks = len(live)
    # The stream starts just before the session's first tick: earlier days are history, not this stream.
    start = TickKey(int(session["ts"].array.asi8[0]) - 1, np.iinfo(np.int64).max)
    store.set_cursor(STREAM_CURSOR, dump_cursor({"NIFTY": start}))
    feeder = threading.Thread(target=play, args=(live, store), kwargs={"speed": speed}, daemon=True)
    feeder.start()
    stop, scored, idle_after_feed = threading.Event(), 0, 0
    reporter = ProgressReporter(local_instance(), store)  # the live session's progress, on live_predictions
    with ScoringClient(url) as client:
        bar = tqdm(total=len(live), desc=f"live {minutes} market minutes at {speed:g}x", unit="tick")
        for step in run_stream(store, client, poll_interval=0.05, stop=stop, cursor_name=STREAM_CURSOR):
            if step.error or step.refused:
                raise RuntimeError(f"streaming failed: {step.error or step.refused}")
            scored += step.ticks_scored
            reporter.add(step)
            summary.latencies_ms += step.latencies_ms
            summary.predictions_new += step.predictions_stored
            bar.update(step.ticks_scored)
            # done when every fed tick is scored; a second of empty passes after the feed ends is a failure
            idle_after_feed = idle_after_feed + 1 if not feeder.is_alive() and not step.ticks_scored else 0
            if scored >= len(live) or idle_after_feed > 20:
                stop.set()
        bar.close()
        reporter.flush()
        feeder.join()
        if scored != len(live):
            raise RuntimeError(f"streamed {scored} of {len(live)} live ticks")
        store.write_ticks(probe)
        step = score_new_ticks(store, client, load_cursor(store.get_cursor(STREAM_CURSOR)), batch_size=1)
        summary.single_tick_ms = step.latencies_ms
        summary.predictions_new += step.predictions_stored
    stored = store.read_predictions("NIFTY", session["ts"].iloc[0], session["ts"].iloc[-1])
    summary.predictions_stored = len(stored)
    summary.trades = {str(k): int(v) for k, v in stored["action"].value_counts().items()}
