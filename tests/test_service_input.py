"""Hostile input to the real scoring service: refused in a bounded 4xx naming the field, logged as one line,
and never advancing a symbol's state."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from feature_store.instruments import get_instrument
from pipelines.simulate import simulate_session
from pipelines.sources.session import local_day_and_time, outside_session
from pipelines.streaming import ScoringClient, ScoringError, ticks_payload
from serving.config import ServingConfig
from serving.schemas import in_session

JSON = {"content-type": "application/json"}


def _ticks(day: dt.date, n: int) -> list[dict[str, Any]]:
    return ticks_payload(simulate_session(get_instrument("NIFTY"), day, seed=4, signal=1.0).iloc[:n])


@pytest.mark.parametrize(
    "change, field",
    [
        pytest.param({"side": True}, "ticks[0].side", id="side-a-boolean"),
        pytest.param({"side": 1.0}, "ticks[0].side", id="side-a-float"),
        pytest.param({"seq": 2**63}, "ticks[0].seq", id="seq-above-int64"),
        pytest.param({"price": 1e308}, "ticks[0].price", id="price-1e308"),
        pytest.param({"bid": 1e308, "ask": 1e308}, "ticks[0].bid", id="bid-1e308"),
        pytest.param({"volume": 1e300}, "ticks[0].volume", id="volume-1e300"),
        pytest.param({"ts": "2026-06-01T01:00:00Z"}, "ticks[0].ts", id="before-the-session-opens"),
        pytest.param({"ts": "2026-06-06T05:00:00Z"}, "ticks[0].ts", id="on-a-saturday"),
    ],
)
def test_implausible_tick_is_refused_naming_its_field(
    scoring_service: str, fresh_day: Callable[[str], dt.date], change: dict[str, Any], field: str
) -> None:
    tick = {**_ticks(fresh_day("NIFTY"), 1)[0], **change}

    response = httpx.post(f"{scoring_service}/score", content=json.dumps({"ticks": [tick]}), headers=JSON)

    assert response.status_code == 400
    assert field in response.text


def test_unknown_top_level_key_is_refused(scoring_service: str, fresh_day: Callable[[str], dt.date]) -> None:
    body = {"ticks": _ticks(fresh_day("NIFTY"), 1), "tick": []}

    response = httpx.post(f"{scoring_service}/score", json=body)

    assert response.status_code == 400 and "tick" in response.json()["detail"][0]["loc"]


@pytest.mark.parametrize(
    "headers, content",
    [
        pytest.param({"content-type": "text/plain"}, "{}", id="text-plain"),
        pytest.param(
            {"content-type": "multipart/form-data; boundary=x"}, "--x\r\nbroken", id="bad-multipart"
        ),
        pytest.param({"content-type": "application/x-www-form-urlencoded"}, "ticks=1", id="form"),
        pytest.param({}, None, id="no-content-type"),
    ],
)
def test_only_json_bodies_are_read(
    scoring_service: str, headers: dict[str, str], content: str | None
) -> None:
    response = httpx.post(f"{scoring_service}/score", content=content, headers=headers)

    assert response.status_code == 415 and "application/json" in response.json()["error"]


def test_a_body_over_the_limit_is_a_413(scoring_service: str) -> None:
    limit = ServingConfig.from_env({"MLFLOW_TRACKING_URI": "sqlite:///x"}).max_body_bytes
    body = b'{"ticks": [' + b" " * limit + b"]}"

    response = httpx.post(f"{scoring_service}/score", content=body, headers=JSON)

    assert response.status_code == 413


def test_many_bad_fields_get_a_bounded_answer_and_one_log_line(
    scoring_service: str, scoring_service_dir: Path, fresh_day: Callable[[str], dt.date]
) -> None:
    tick = {**_ticks(fresh_day("NIFTY"), 1)[0], **{f"junk_{i}": i for i in range(100_000)}}
    log = scoring_service_dir / "serve.log"
    lines_before = log.read_text().count("\n")

    response = httpx.post(f"{scoring_service}/score", json={"ticks": [tick]}, timeout=30)

    assert response.status_code == 400
    assert len(response.content) < 20_000 and response.json()["errors"] == 100_000
    # the collector's own warning may come too: 100,000 errors are a lot of objects
    logged = [
        line for line in log.read_text().splitlines()[lines_before:] if "garbage collection" not in line
    ]
    assert sum("refused (400)" in line for line in logged) == 1
    assert not any("Traceback" in line for line in logged) and len(logged) <= 3


def test_a_replayed_key_with_other_content_is_a_conflict_and_the_first_prediction_stands(
    scoring_client: ScoringClient, fresh_day: Callable[[str], dt.date]
) -> None:
    ticks = _ticks(fresh_day("NIFTY"), 3)
    first = scoring_client.score(ticks)

    with pytest.raises(ScoringError) as conflict:
        scoring_client.score([{**ticks[1], "price": ticks[1]["price"] + 5.0}])

    assert conflict.value.status == 409 and "ticks[0]" in conflict.value.message
    assert "price" in conflict.value.message
    assert scoring_client.score(ticks) == first


def test_a_refused_tick_does_not_advance_the_symbol(
    scoring_client: ScoringClient, fresh_day: Callable[[str], dt.date]
) -> None:
    ticks = _ticks(fresh_day("NIFTY"), 3)
    with pytest.raises(ScoringError):
        scoring_client.score([{**ticks[0], "ts": "2099-01-05T05:00:00Z", "price": 1e308}])

    assert len(scoring_client.score(ticks)) == 3  # had the tick advanced the state, these would be 409s


@pytest.mark.parametrize("symbol", ["NIFTY", "AMZN", "PETR4", "BTCUSDT"])
def test_the_services_session_check_is_the_ingests_rule(symbol: str) -> None:
    instrument = get_instrument(symbol)
    rng = np.random.default_rng(3)
    # two years of random instants, DST changes included, and every session edge of a few days exactly
    ts = rng.integers(1_735_689_600 * 10**9, 1_798_761_600 * 10**9, 20_000)
    edges = [
        int(b.value) + d
        for day in instrument.trading_days(dt.date(2026, 3, 6), 5)
        for b in instrument.session_bounds(day)
        for d in (-1, 0, 1)
    ]
    ts = np.concatenate([ts, np.asarray(edges, dtype=np.int64)])

    fast = np.array([in_session(instrument, int(t)) for t in ts])

    day, tod = local_day_and_time(instrument, ts)
    assert (fast == ~outside_session(instrument, day, tod)).all()
