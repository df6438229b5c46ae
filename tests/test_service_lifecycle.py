"""The scoring service as an operator runs it: registry faults, live champion swaps, refused model files,
a restart mid-session (warm start) and `kill -9` of `tickml serve`, all against real `bentoml serve`
processes and a real MLflow registry (a copy of the session's `champions` store)."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import lightgbm
import mlflow
import pandas as pd
import psutil
import pytest
import yaml
from mlflow import MlflowClient

from feature_store.instruments import get_instrument
from feature_store.schema import PREDICTION_COLUMNS
from feature_store.store import ParquetTickStore
from pipelines import model_files, registry
from pipelines.registry import CHAMPION, MODEL_15M, MODEL_30M
from pipelines.shards import Shard
from pipelines.simulate import simulate_session
from pipelines.streaming import ScoringClient, ScoringError, score_new_ticks, ticks_payload
from tickml import service

DAY = dt.date(2026, 6, 1)  # in the past: this service refuses ticks ahead of its clock (the default)
# NIFTY twins: A streams a session uninterrupted, B the same ticks with a restart; a lower confidence
# threshold than NIFTY's lets the small test champions trade, so the trade filter's state is compared too
TWIN_A, TWIN_B, TWIN_D = "NIFTY_A", "NIFTY_B", "NIFTY_D"  # D is in shard 1 of 2, A and B in shard 0
_TWIN = {"venue": "NSE", "price": 24000.0, "trading": {"min_confidence": 0.45}}
INSTRUMENTS = {
    "symbols": {TWIN_A: _TWIN, TWIN_B: _TWIN, TWIN_D: _TWIN},
    "universes": {"default": {"symbols": ["NIFTY", TWIN_A, TWIN_B, TWIN_D]}},
}
STARTUP_S = 180.0


def _registry_copy(champions: str, folder: Path) -> str:
    """A writable copy of the champions registry (artifacts stay where they are, read only)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(champions.removeprefix("sqlite:///"), folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


def _env(uri: str, home: Path, instruments: Path, **extra: str) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": uri,
        "BENTOML_HOME": str(home / "bentoml"),
        "TICKML_HOME": str(home / "store"),
        "TICKML_INSTRUMENTS": str(instruments),
        **extra,
    }


@pytest.fixture(scope="module")
def instruments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lifecycle") / "instruments.yaml"
    path.write_text(yaml.safe_dump(INSTRUMENTS))
    return path


@functools.cache
def _nifty_day() -> pd.DataFrame:
    return simulate_session(get_instrument("NIFTY"), DAY, seed=21, signal=1.5)


def _session(symbol: str, n: int | None = None) -> pd.DataFrame:
    """DAY's simulated NIFTY ticks (the first `n`) under the name `symbol`."""
    ticks = _nifty_day().assign(symbol=symbol)
    return ticks if n is None else ticks.iloc[:n].copy()


def _clone_version(client: MlflowClient, name: str, version: str, **tags: str) -> str:
    """A new version of `name` registered from `version`'s files, with its tags (and `tags` over them)."""
    mv = client.get_model_version(name, version)
    # the files' location, not mv.source ("models:/m-..."): MLflow resolves a logged-model id through the
    # process-wide tracking URI, which another test may have pointed elsewhere
    files = client.get_model_version_download_uri(name, version)
    new = client.create_model_version(name, source=files, run_id=mv.run_id).version
    for key, value in {**mv.tags, **tags}.items():
        client.set_model_version_tag(name, new, key, value)
    return str(new)


def _register_files(client: MlflowClient, name: str, folder: Path, tags: dict[str, str]) -> str:
    """A new version of `name` whose files are `folder`, logged under a run of its own."""
    run = client.create_run(client.get_experiment_by_name(registry.EXPERIMENT).experiment_id)
    client.log_artifacts(run.info.run_id, str(folder), "model")
    version = client.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    for key, value in tags.items():
        client.set_model_version_tag(name, version.version, key, value)
    return str(version.version)


@pytest.fixture(scope="module")
def live(champions: str, instruments: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A service on a registry copy that the tests change: polling every second, an admin token set, the
    latest candidates scored in shadow. It starts before the registry exists; `before_registry` holds what
    it answered then (`readyz`, `score`, and whether the registry file `appeared`)."""
    home = tmp_path_factory.mktemp("live")
    missing = home / "mlruns" / "mlflow.db"
    token = secrets.token_urlsafe(24)
    port = service.free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(
        f"sqlite:///{missing}",
        home,
        instruments,
        TICKML_RELOAD_INTERVAL_S="1",
        TICKML_ADMIN_TOKEN=token,
        TICKML_SHADOW="1",
    )
    proc = service.start(port, log_path=home / "serve.log", env=env)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:  # up and answering, with nothing to serve
            try:
                readyz = httpx.get(f"{url}/readyz", timeout=5)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "service did not come up"
                time.sleep(0.5)
        score = httpx.post(f"{url}/score", json={"ticks": ticks_payload(_session("NIFTY", 1))}, timeout=10)
        before = {"readyz": readyz, "score": score, "appeared": missing.exists()}
        uri = _registry_copy(champions, missing.parent)  # the first champions arrive
        service.wait_ready(proc, url, timeout_s=60, log_path=home / "serve.log")
        yield {
            "url": url,
            "uri": uri,
            "token": token,
            "log": home / "serve.log",
            "home": home,
            "before": before,
        }
    finally:
        service.stop(proc)


def _reload(live: dict) -> dict:
    response = httpx.post(
        f"{live['url']}/admin/reload", headers={"Authorization": f"Bearer {live['token']}"}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_service_without_a_registry_starts_not_ready_says_why_and_serves_once_champions_appear(
    live: dict,
) -> None:
    before = live["before"]

    models = httpx.get(f"{live['url']}/models", timeout=5).json()

    assert before["readyz"].status_code == 503 and "no MLflow registry" in before["readyz"].text
    assert before["score"].status_code == 503 and "no MLflow registry" in before["score"].json()["error"]
    assert not before["appeared"]  # the service only reads the registry
    assert models["ready"] and {m["name"] for m in models["models"]} == {MODEL_15M, MODEL_30M}


def test_admin_reload_needs_the_token(live: dict) -> None:
    anonymous = httpx.post(f"{live['url']}/admin/reload", timeout=10)
    wrong = httpx.post(f"{live['url']}/admin/reload", headers={"Authorization": "Bearer nope"}, timeout=10)

    assert anonymous.status_code == wrong.status_code == 401
    assert live["token"] not in live["log"].read_text()


class _Payload:
    """Unpickling this runs code: what a crafted model file does inside whoever loads it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).touch()",))


def test_a_crafted_pickle_aliased_champion_is_refused_and_the_previous_champion_keeps_serving(
    live: dict, tmp_path: Path
) -> None:
    import cloudpickle

    client = MlflowClient(live["uri"], live["uri"])
    before = _reload(live)["served"]
    folder, marker = tmp_path / "evil", tmp_path / "executed"
    folder.mkdir()
    good = client.get_model_version_by_alias(MODEL_15M, CHAMPION)
    with model_files.downloaded(
        client.get_model_version_download_uri(MODEL_15M, good.version), uri=live["uri"]
    ) as g:
        mlmodel = yaml.safe_load((g / "MLmodel").read_text())
    mlmodel["flavors"] = {
        "lightgbm": {
            "code": None,
            "data": "model.pkl",
            "lgb_version": lightgbm.__version__,
            "model_class": "lightgbm.sklearn.LGBMClassifier",
            "serialization_format": "cloudpickle",
        },
        "python_function": {
            "data": "model.pkl",
            "loader_module": "mlflow.lightgbm",
            "python_version": "3.11",
        },
    }
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    (folder / "model.pkl").write_bytes(cloudpickle.dumps(_Payload(marker)))
    with contextlib.suppress(Exception):  # MLflow's own loader runs the payload (and may then fail)
        mlflow.lightgbm.load_model(str(folder))
    assert marker.exists(), "the crafted model is not malicious: the test would prove nothing"
    marker.unlink()
    evil = _register_files(client, MODEL_15M, folder, {**good.tags, "gate.decision": "passed"})
    client.set_registered_model_alias(MODEL_15M, CHAMPION, evil)

    after = _reload(live)
    scored = ScoringClient(live["url"]).score(_session("NIFTY", 1))

    assert not marker.exists()
    assert after["served"] == before and after["ready"]
    assert f"models:/{MODEL_15M}/{evil} is refused" in after["problem"] and "unpickle" in after["problem"]
    assert scored[0]["models"] == before
    assert "Traceback" not in live["log"].read_text()


def test_a_version_whose_files_changed_after_registration_is_refused(live: dict, tmp_path: Path) -> None:
    client = MlflowClient(live["uri"], live["uri"])
    before = _reload(live)["served"]
    client.set_registered_model_alias(MODEL_15M, CHAMPION, before[MODEL_15M])  # a test above moved it
    good = client.get_model_version(MODEL_30M, before[MODEL_30M])
    folder = tmp_path / "tampered"
    with model_files.downloaded(
        client.get_model_version_download_uri(MODEL_30M, good.version), uri=live["uri"]
    ) as g:
        shutil.copytree(g, folder)
    text = (folder / "model.lgb").read_text()
    (folder / "model.lgb").write_text(text.replace("leaf_value=", "leaf_value=1", 1))  # one leaf changed
    tampered = _register_files(client, MODEL_30M, folder, dict(good.tags))  # the original digest
    client.set_registered_model_alias(MODEL_30M, CHAMPION, tampered)

    after = _reload(live)

    assert after["served"] == before
    assert f"models:/{MODEL_30M}/{tampered} is refused" in after["problem"]
    assert "files changed since registration" in after["problem"]


def test_moving_the_alias_under_load_swaps_both_models_at_one_point_with_no_error(live: dict) -> None:
    client = MlflowClient(live["uri"], live["uri"])
    # back to vetted versions first: the two tests above left refused versions aliased
    for name in (MODEL_15M, MODEL_30M):
        client.set_registered_model_alias(name, CHAMPION, "1")
    before = _reload(live)["served"]
    ticks = ticks_payload(_session("NIFTY"))
    seen: list[dict[str, str]] = []
    errors: list[str] = []
    mixed: list[bool] = []  # whether one response's predictions name two different pairs
    moved = threading.Event()
    target: dict[str, str] = {}

    def stream() -> None:
        with ScoringClient(live["url"], timeout=30) as scorer:
            for start in range(0, len(ticks), 20):
                try:
                    answer = [p["models"] for p in scorer.score(ticks[start : start + 20])]
                except Exception as exc:  # noqa: BLE001 - counted, asserted zero
                    errors.append(repr(exc))
                    continue
                mixed.append(any(m != answer[0] for m in answer))
                seen.extend(answer)
                if moved.is_set() and seen and seen[-1] == target:
                    return

    worker = threading.Thread(target=stream)
    worker.start()
    time.sleep(1.0)
    new = {name: _clone_version(client, name, before[name]) for name in (MODEL_15M, MODEL_30M)}
    for name, version in new.items():
        client.set_registered_model_alias(name, CHAMPION, version)
    target.update(new)
    moved.set()  # the service's poller (every second) picks the move up; no reload is asked for
    # (the two aliases move one after the other: a poll between them serves the new 15m with the old 30m,
    # both vetted, for a moment; what may never happen is one response mixing pairs)
    worker.join(timeout=120)

    assert not worker.is_alive() and errors == [] and not any(mixed)
    assert seen[0] == before and seen[-1] == new
    for name in (MODEL_15M, MODEL_30M):  # each model's version changes at one point of the stream
        versions = [m[name] for m in seen]
        assert sum(a != b for a, b in zip(versions, versions[1:], strict=False)) == 1
    assert httpx.get(f"{live['url']}/models", timeout=5).json()["problem"] is None


def _tickml_serve(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    tickml = Path(sys.executable).with_name("tickml")
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(tickml), "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "BENTOML_DO_NOT_TRACK": "True", **env},
            start_new_session=True,
        )


def test_restart_mid_session_changes_no_prediction_and_kill_9_leaves_nothing_behind(
    champions: str, instruments: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKML_INSTRUMENTS", str(instruments))  # the twins, here as in the service
    env = _env(_registry_copy(champions, tmp_path / "mlruns"), tmp_path, instruments)
    store = ParquetTickStore(tmp_path / "store")
    session = 30_000  # ticks of the day streamed; the restart at the tick leaves 6,656 after it
    store.write_ticks(pd.concat([_session(TWIN_A, session), _session(TWIN_B, session)], ignore_index=True))
    cut = 23_344  # where the restart happened
    port = service.free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"

    first = _tickml_serve(port, env, log)
    service.wait_ready(first, url, timeout_s=STARTUP_S, log_path=log)
    with ScoringClient(url, timeout=60) as client:
        uninterrupted = score_new_ticks(
            store, client, {}, batch_size=500, max_ticks=None, owns={TWIN_A}.__contains__
        )
        before = score_new_ticks(store, client, {}, batch_size=500, max_ticks=cut, owns={TWIN_B}.__contains__)
    workers = psutil.Process(first.pid).children(recursive=True)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    gone, alive = psutil.wait_procs(workers, timeout=10)

    second = _tickml_serve(port, env, log)  # the same port: nothing may still hold it
    try:
        service.wait_ready(second, url, timeout_s=STARTUP_S, log_path=log)
        with ScoringClient(url, timeout=60) as client:
            score_new_ticks(
                store, client, before.cursor, batch_size=500, max_ticks=None, owns={TWIN_B}.__contains__
            )
    finally:
        service.stop(second)

    assert alive == [] and len(workers) >= 1
    assert uninterrupted.ticks_scored == session and before.ticks_scored == cut
    columns = [c for c in PREDICTION_COLUMNS if c not in ("symbol", "scored_at")]
    reference = store.read_predictions(TWIN_A)[columns].reset_index(drop=True)
    restarted = store.read_predictions(TWIN_B)[columns].reset_index(drop=True)
    assert len(restarted) == len(reference)
    later = slice(cut, None)
    differing = (reference.iloc[later] != restarted.iloc[later]).any(axis=1)
    assert int(differing.sum()) == 0
    assert (restarted["action"] != "NONE").sum() >= 1  # the trade filter's state came back too


def test_a_tick_ahead_of_the_clock_is_refused_and_the_symbol_streams_on(live: dict) -> None:
    nifty = get_instrument("NIFTY")
    tomorrow = nifty.trading_days(dt.date.today() + dt.timedelta(days=1), 1)[0]
    future = _session("NIFTY", 1).assign(ts=nifty.session_bounds(tomorrow)[0] + pd.Timedelta(minutes=5))
    tick = _session("NIFTY").iloc[[-1]]  # the session's last: new, or a replay of what a test above sent

    with ScoringClient(live["url"]) as client:
        with pytest.raises(ScoringError) as refused:
            client.score(future)
        scored = client.score(tick)

    assert refused.value.status == 400 and "ticks[0].ts" in refused.value.message
    assert "ahead of the service's clock" in refused.value.message
    assert scored[0]["seq"] == int(tick["seq"].iloc[0])


def test_two_replicas_each_score_their_own_shard_of_the_symbols(
    champions: str, instruments: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKML_INSTRUMENTS", str(instruments))
    uri = _registry_copy(champions, tmp_path / "mlruns")
    store = ParquetTickStore(tmp_path / "store")
    store.write_ticks(pd.concat([_session(TWIN_A, 3_000), _session(TWIN_D, 3_000)], ignore_index=True))
    shards = [Shard(0, 2), Shard(1, 2)]
    assert [s.owns(TWIN_A) for s in shards] == [True, False] and [s.owns(TWIN_D) for s in shards] == [
        False,
        True,
    ]
    procs, urls = [], []
    try:
        for shard in shards:
            port = service.free_port()
            env = _env(uri, tmp_path / f"replica{shard.index}", instruments, TICKML_SHARD=str(shard))
            env["TICKML_HOME"] = str(tmp_path / "store")  # one tick store, as in production
            procs.append(service.start(port, log_path=tmp_path / f"serve{shard.index}.log", env=env))
            urls.append(f"http://127.0.0.1:{port}")
        for proc, url, shard in zip(procs, urls, shards, strict=True):
            service.wait_ready(proc, url, timeout_s=STARTUP_S, log_path=tmp_path / f"serve{shard.index}.log")
        steps = []
        for url, shard in zip(urls, shards, strict=True):
            with ScoringClient(url, timeout=60) as client:
                steps.append(score_new_ticks(store, client, {}, max_ticks=None, owns=shard.owns))
        with ScoringClient(urls[0]) as client, pytest.raises(ScoringError) as misrouted:
            client.score(_session(TWIN_D, 1))
    finally:
        for proc in procs:
            service.stop(proc)

    assert [step.ticks_scored for step in steps] == [3_000, 3_000] and all(not s.refused for s in steps)
    stored = store.read_predictions()
    assert stored.groupby("symbol").size().to_dict() == {TWIN_A: 3_000, TWIN_D: 3_000}
    assert misrouted.value.status == 421 and "ticks[0].symbol" in misrouted.value.message


def test_the_latest_candidate_is_scored_in_shadow_and_stored_beside_the_champion(
    live: dict, monkeypatch: pytest.MonkeyPatch, instruments: Path
) -> None:
    monkeypatch.setenv("TICKML_INSTRUMENTS", str(instruments))
    client = MlflowClient(live["uri"], live["uri"])
    served = _reload(live)["served"]
    candidate = _clone_version(client, MODEL_30M, served[MODEL_30M], **{"gate.decision": "refused"})
    status = _reload(live)
    store = ParquetTickStore(live["home"] / "store")  # the service's own tick store
    store.write_ticks(_session(TWIN_D, 1_000))

    with ScoringClient(live["url"], timeout=60) as scorer:
        step = score_new_ticks(store, scorer, {}, max_ticks=None, owns={TWIN_D}.__contains__)

    assert status["served"] == served  # a refused candidate is never the champion
    assert status["shadow"] == {MODEL_15M: served[MODEL_15M], MODEL_30M: candidate}
    champion, shadow = store.read_predictions(TWIN_D), store.read_predictions(TWIN_D, shadow=True)
    assert step.ticks_scored == len(champion) == len(shadow) == 1_000
    assert set(champion["model_30m_version"]) == {served[MODEL_30M]} and set(shadow["model_30m_version"]) == {
        candidate
    }
    assert set(shadow["reason"]) == {"shadow"}
    # the same files under another version: the shadow's probabilities are the champion's, tick by tick
    assert (shadow["p30_up"].to_numpy() == champion["p30_up"].to_numpy()).all()
