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

TRAIN_START = dt.date(2026, 10, 19)  # fixed dates keep the demo reproducible


@dataclass
class DemoSummary:
    ticks: int = 0
    labelled: int = 0
    dataset_rows: int = 0
    models: dict[str, dict] = field(default_factory=dict)
    live_ticks: int = 0
    predictions_new: int = 0
    predictions_stored: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ticks_per_request: list[int] = field(default_factory=list)
    trades: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def render(self) -> str:
        lat = np.asarray(self.latencies_ms or [np.nan])
        lines = [
            "tickml demo summary",
            f"  ticks stored            {self.ticks:,} over the training days",
            f"  labelled ticks          {self.labelled:,} (the rest: horizon past the session close)",
            f"  training dataset rows   {self.dataset_rows:,} (consensus-filtered, every 5th tick)",
        ]
        for name, m in self.models.items():
            lines.append(
                f"  {name:<22}  v{m['version']} (champion v{m['champion']}): held-out log loss "
                f"{m['log_loss']:.4f}, accuracy {m['accuracy']:.3f}, macro F1 {m['macro_f1']:.3f} — {m['reason']}"
            )
        lines += [
            f"  live ticks streamed     {self.live_ticks:,}",
            f"  predictions stored      {self.predictions_stored:,} ({self.predictions_new:,} new this run)",
            f"  trade filter            {self.trades}",
            f"  scoring latency (HTTP)  p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms "
            f"per request ({np.mean(self.ticks_per_request or [0]):.1f} ticks/request on average)",
            "  stage seconds           " + ", ".join(f"{k} {v:.0f}" for k, v in self.seconds.items()),
        ]
        return "\n".join(lines)


def run_demo(*, days: int = 10, live_minutes: int = 35, speed: float = 60.0, seed: int = 7,
             signal: float = 1.0) -> DemoSummary:
    """Simulate `days` NIFTY sessions, materialise the asset graph, serve the champions, stream live ticks."""
    env = apply_defaults()
    from dagster import DagsterInstance

    from feature_store.instruments import get_instrument
    from feature_store.offline import OfflineStore
    from feature_store.store import open_store
    from orchestration.definitions import defs
    from pipelines import registry
    from pipelines.feed import play
    from pipelines.simulate import simulate_session
    from pipelines.streaming import ScoringClient, TickKey, score_new_ticks

    summary, clock = DemoSummary(), time.monotonic()
    nifty = get_instrument("NIFTY")
    train_days = nifty.trading_days(TRAIN_START, days + 1)
    live_day, train_days = train_days[-1], train_days[:-1]
    instance = DagsterInstance.get()
    run_config = {"ops": {"raw_ticks": {"config": {"seed": seed, "signal": signal}}}}
    ticks_job = defs.resolve_job_def("ticks_job")
    for day in tqdm(train_days, desc="ticks → labels → features", unit="day"):
        ticks_job.execute_in_process(partition_key=day.isoformat(), instance=instance, run_config=run_config)
    summary.seconds["data"] = time.monotonic() - clock

    clock = time.monotonic()
    with tqdm(total=1, desc="dataset → models → champions", unit="job") as bar:
        training = defs.resolve_job_def("training_job").execute_in_process(instance=instance)
        bar.update()
    summary.seconds["training"] = time.monotonic() - clock
    for horizon in ("direction_15m", "direction_30m"):
        candidate = training.output_for_node(f"{horizon}_model")
        decision = training.output_for_node(f"{horizon}_champion")
        mv = registry.configure().get_model_version(horizon.replace("_", "-"), candidate["version"])
        run = registry.configure().get_run(mv.run_id)
        summary.models[horizon.replace("_", "-")] = {
            "version": candidate["version"], "champion": decision["champion"], "reason": decision["reason"],
            **{k.removeprefix("holdout_"): v for k, v in run.data.metrics.items()},
        }

    offline, store = OfflineStore(env["TICKML_HOME"]), open_store()
    summary.ticks = sum(len(store.read_ticks("NIFTY", *nifty.session_bounds(d))) for d in train_days)
    summary.labelled = int(offline.read("labels", "NIFTY", train_days)["label_15m"].notna().sum())
    summary.dataset_rows = len(offline.read_dataset("training_dataset"))

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
        _stream_live(summary, store, ScoringClient(url), play, score_new_ticks, TickKey,
                     simulate_session(nifty, live_day, seed=seed, signal=signal), nifty, live_minutes, speed)
        summary.seconds["live"] = time.monotonic() - clock
    finally:
        service.stop(proc)
        store.close()
    return summary


def _stream_live(summary, store, client, play, score_new_ticks, TickKey, session, instrument, minutes, speed):
    """Feed `minutes` of the live session at `speed`× while the streaming sensor scores what arrives."""
    open_utc, _ = instrument.session_bounds(instrument.trading_day(session["ts"].iloc[:1]).iloc[0])
    live = session[session["ts"] < open_utc + np.timedelta64(minutes, "m")]
    summary.live_ticks = len(live)
    cursor = {"NIFTY": TickKey(int(open_utc.value) - 1, 0)}
    before = len(store.read_predictions("NIFTY", live["ts"].iloc[0], live["ts"].iloc[-1] + np.timedelta64(1, "ns")))
    feeder = threading.Thread(target=play, args=(live, store), kwargs={"speed": speed}, daemon=True)
    feeder.start()
    scored = 0
    with tqdm(total=len(live), desc=f"live {minutes} market minutes at {speed:g}x", unit="tick") as bar:
        while scored < len(live):
            step = score_new_ticks(store, client, cursor)
            cursor = step.cursor
            summary.latencies_ms += step.latencies_ms
            summary.ticks_per_request += step.batch_sizes
            scored += step.ticks_scored
            bar.update(step.ticks_scored)
            if not step.ticks_scored:
                if not feeder.is_alive() and scored < len(live):
                    raise RuntimeError(f"feed finished but only {scored} of {len(live)} live ticks were scored")
                time.sleep(0.05)
    feeder.join()
    stored = store.read_predictions("NIFTY", live["ts"].iloc[0], live["ts"].iloc[-1] + np.timedelta64(1, "ns"))
    summary.predictions_stored = len(stored)
    summary.predictions_new = len(stored) - before
    summary.trades = {str(k): int(v) for k, v in stored["action"].value_counts().items()}
