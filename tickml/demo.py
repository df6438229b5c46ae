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

TRAIN_START = dt.date(2026, 10, 19)  # fixed training dates keep the demo reproducible
PROBE_TICKS = 300
STREAM_CURSOR = "demo"


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
            f"  training dataset        {self.dataset_rows:,} rows, every 5th tick: consensus rows of the "
            f"training days, every labelled tick of the {self.held_out_days} held-out days",
        ]
        for name, m in self.models.items():
            lines.append(
                f"  {name:<22}  v{m['version']} on {m['feature_set']}, champion v{m['champion']}: "
                f"held-out log loss {m['log_loss']:.4f}, accuracy {m['accuracy']:.3f}, "
                f"macro F1 {m['macro_f1']:.3f} on every labelled tick; accuracy {m['consensus_accuracy']:.3f} on "
                f"the consensus rows only ({m['reason']})"
            )
        requests = max(len(self.latencies_ms), 1)
        lines += [
            f"  live session            {self.live_day}: {self.live_ticks:,} ticks streamed "
            f"+ {len(self.single_tick_ms)} single-tick probes",
            f"  predictions stored      {self.predictions_stored:,} ({self.predictions_new:,} new this run)",
            f"  trade filter actions    {self.trades}",
            f"  scoring latency (HTTP)  streamed: {pct(self.latencies_ms)} per request "
            f"({self.live_ticks / requests:.1f} ticks/request); single tick: {pct(self.single_tick_ms)}",
            "  stage seconds           " + ", ".join(f"{k} {v:.0f}" for k, v in self.seconds.items()),
        ]
        return "\n".join(lines)


def run_demo(
    *, days: int = 10, live_minutes: int = 35, speed: float = 60.0, seed: int = 7, signal: float = 1.0
) -> DemoSummary:
    """Simulate `days` NIFTY sessions, materialise the asset graph, serve the champions, stream live ticks."""
    env = apply_defaults()
    from feature_store.instruments import DEFAULT_UNIVERSE, get_instrument
    from feature_store.offline import OfflineStore
    from feature_store.store import open_store
    from orchestration.local import materialise_simulated_days, run_training
    from pipelines import registry
    from pipelines.simulate import simulate_session

    summary, clock = DemoSummary(), time.monotonic()
    nifty = get_instrument("NIFTY")
    train_days = summary.days = nifty.trading_days(TRAIN_START, days)
    with tqdm(total=len(train_days), desc="ticks → labels → features, one run", unit="day") as bar:
        materialise_simulated_days("NIFTY", train_days, seed=seed, signal=signal)
        bar.update(len(train_days))
    summary.seconds["data"] = time.monotonic() - clock

    clock = time.monotonic()
    with tqdm(total=1, desc="dataset → SHAP → models → champions", unit="job") as bar:
        outcomes, result = run_training(DEFAULT_UNIVERSE)
        bar.update()
    summary.seconds["training"] = time.monotonic() - clock
    client = registry.configure()
    for name, outcome in outcomes.items():
        mv = client.get_model_version(name, outcome["version"])
        summary.models[name] = {
            **outcome,
            "feature_set": f"{mv.tags['feature_set']}@v{mv.tags['feature_set_version']}",
            **{k.removeprefix("holdout_"): v for k, v in client.get_run(mv.run_id).data.metrics.items()},
        }

    offline, store = OfflineStore(env["TICKML_HOME"]), open_store()
    summary.ticks = sum(len(store.read_ticks("NIFTY", *nifty.session_bounds(d))) for d in train_days)
    summary.labelled = int(offline.read("labels", "NIFTY", train_days)["label_15m"].notna().sum())
    dataset = result.output_for_node("training_dataset")
    summary.dataset_rows, summary.held_out_days = (
        len(dataset),
        dataset.loc[dataset["holdout"], "day"].nunique(),
    )

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
    """Feed `minutes` of `session` at `speed`x while the `tickml stream` driver scores what arrives, then
    probe single-tick latency with the next ticks of the session, one request each (a 1x feed's shape)."""
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
    with ScoringClient(url) as client:
        bar = tqdm(total=len(live), desc=f"live {minutes} market minutes at {speed:g}x", unit="tick")
        for step in run_stream(store, client, poll_interval=0.05, stop=stop, cursor_name=STREAM_CURSOR):
            if step.error or step.refused:
                raise RuntimeError(f"streaming failed: {step.error or step.refused}")
            scored += step.ticks_scored
            summary.latencies_ms += step.latencies_ms
            summary.predictions_new += step.predictions_stored
            bar.update(step.ticks_scored)
            # done when every fed tick is scored; a second of empty passes after the feed ends is a failure
            idle_after_feed = idle_after_feed + 1 if not feeder.is_alive() and not step.ticks_scored else 0
            if scored >= len(live) or idle_after_feed > 20:
                stop.set()
        bar.close()
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
