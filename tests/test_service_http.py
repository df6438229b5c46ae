"""The scoring service over real HTTP: a `bentoml serve` subprocess, champions from a real MLflow store.

The last tests drive its `ScoringState` directly with the same champions: an internal failure mid-request
is what they exercise, and over HTTP validation now refuses every input known to cause one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pytest

from feature_store.features import direction_starter_v1
from feature_store.features.online import WARMUP_TICKS
from feature_store.instruments import get_instrument
from feature_store.schema import LABELS_15M, LABELS_30M
from pipelines.registry import MODEL_15M, MODEL_30M, LoadedModel, load_champion
from pipelines.scoring import ChampionPair
from pipelines.simulate import simulate_session
from pipelines.streaming import ScoringClient, ScoringError, ticks_payload
from serving.schemas import Tick
from serving.state import ScoringState

NIFTY = get_instrument("NIFTY")
JSON = {"content-type": "application/json"}


def session_ticks(day: dt.date, n: int) -> pd.DataFrame:
    """The first `n` ticks of a simulated NIFTY session."""
    return simulate_session(NIFTY, day, seed=5, signal=1.0).iloc[:n].reset_index(drop=True)


def test_batch_gets_one_prediction_per_tick_in_order(
    scoring_client: ScoringClient, fresh_day: Callable[[str], dt.date]
) -> None:
    ticks = session_ticks(fresh_day("NIFTY"), 300)

    predictions = scoring_client.score(ticks)

    assert [p["symbol"] for p in predictions] == ticks["symbol"].tolist()
    assert [p["seq"] for p in predictions] == ticks["seq"].tolist()
    assert [pd.Timestamp(p["ts"]) for p in predictions] == list(ticks["ts"])


def test_class_probabilities_cover_each_models_classes_and_sum_to_one(
    scoring_client: ScoringClient, fresh_day: Callable[[str], dt.date]
) -> None:
    ticks = session_ticks(fresh_day("NIFTY"), 250)

    predictions = scoring_client.score(ticks)

    for p in predictions:
        assert tuple(p["p15"]) == LABELS_15M and math.isclose(sum(p["p15"].values()), 1.0, abs_tol=1e-9)
        assert tuple(p["p30"]) == LABELS_30M and math.isclose(sum(p["p30"].values()), 1.0, abs_tol=1e-9)
        assert p["signal"] in ("UP", "DOWN", "FLAT") and 0.0 <= p["confidence"] <= 1.0
        assert p["action"] in ("BUY", "SELL", "EXIT", "NONE") and p["reason"]


def test_predictions_name_the_served_model_versions(
    scoring_client: ScoringClient, fresh_day: Callable[[str], dt.date]
) -> None:
    served = {m["name"]: m["version"] for m in scoring_client.models()["models"]}

    predictions = scoring_client.score(session_ticks(fresh_day("NIFTY"), 3))

    assert all(p["models"] == served for p in predictions)
    assert set(served) == {MODEL_15M, MODEL_30M}


def test_features_turn_warm_once_the_window_is_full(
    scoring_client: ScoringClient, fresh_day: Callable[[str], dt.date]
) -> None:
    ticks = session_ticks(fresh_day("NIFTY"), WARMUP_TICKS + 20)

    predictions = scoring_client.score(ticks)

    warm = [p["warm"] for p in predictions]
    assert warm == [False] * (WARMUP_TICKS - 1) + [True] * 21
    assert all(p["action"] == "NONE" and p["reason"] == "warming up" for p in predictions[: WARMUP_TICKS - 1])


def test_models_endpoint_describes_both_champions(scoring_client: ScoringClient) -> None:
    models = scoring_client.models()["models"]

    assert [m["name"] for m in models] == [MODEL_15M, MODEL_30M]
    for m in models:
        assert m["version"] and m["alias"] == "champion" and m["flavor"] == "lightgbm"
        assert m["feature_set"]["name"] == direction_starter_v1.name and m["feature_set"]["version"] >= 1
        assert pd.Timestamp(m["loaded_at"]).tzinfo is not None


def test_replayed_batch_returns_the_identical_cached_predictions(
    scoring_client: ScoringClient, fresh_day: Callable[[str], dt.date]
) -> None:
    ticks = session_ticks(fresh_day("NIFTY"), 200)
    first = scoring_client.score(ticks)

    replay = scoring_client.score(ticks)

    assert replay == first


def test_overlapping_batch_replays_the_old_ticks_and_scores_the_new(
    scoring_client: ScoringClient, fresh_day: Callable[[str], dt.date]
) -> None:
    ticks = session_ticks(fresh_day("NIFTY"), 60)
    first = scoring_client.score(ticks.iloc[:40])

    overlap = scoring_client.score(ticks.iloc[30:])

    assert overlap[:10] == first[30:]
    assert [p["seq"] for p in overlap[10:]] == ticks["seq"].iloc[40:].tolist()


def test_iso_and_epoch_ns_timestamps_name_the_same_tick(
    scoring_client: ScoringClient, fresh_day: Callable[[str], dt.date]
) -> None:
    tick = ticks_payload(session_ticks(fresh_day("NIFTY"), 1))[0]
    by_iso = scoring_client.score([{**tick, "ts": pd.Timestamp(tick["ts"], tz="UTC").isoformat()}])

    by_ns = scoring_client.score([tick])

    assert by_ns == by_iso  # the second is a replay of the first


def test_tick_behind_the_stream_and_not_cached_is_a_conflict_naming_it(
    scoring_client: ScoringClient, fresh_day: Callable[[str], dt.date]
) -> None:
    ticks = ticks_payload(session_ticks(fresh_day("NIFTY"), 20))
    scoring_client.score(ticks[10:])

    with pytest.raises(ScoringError) as refused:
        scoring_client.score([ticks[5]])

    assert refused.value.status == 409
    assert "ticks[0]" in refused.value.message and "NIFTY" in refused.value.message


def _set(index: int, **fields: Any) -> Callable[[list[dict]], list[dict]]:
    def mutate(ticks: list[dict]) -> list[dict]:
        ticks[index] = {**ticks[index], **fields}
        return ticks

    return mutate


def _drop(index: int, field: str) -> Callable[[list[dict]], list[dict]]:
    def mutate(ticks: list[dict]) -> list[dict]:
        ticks[index] = {k: v for k, v in ticks[index].items() if k != field}
        return ticks

    return mutate


def _move_back(ticks: list[dict]) -> list[dict]:
    ticks[3] = {**ticks[1]}
    return ticks


@pytest.mark.parametrize(
    "mutate, field",
    [
        pytest.param(_drop(3, "price"), "ticks[3].price", id="missing-price"),
        pytest.param(_drop(3, "ts"), "ticks[3].ts", id="missing-ts"),
        pytest.param(_set(3, price="24000.5"), "ticks[3].price", id="price-as-string"),
        pytest.param(_set(3, price=float("nan")), "ticks[3].price", id="nan-price"),
        pytest.param(_set(3, price=0.0), "ticks[3].price", id="zero-price"),
        pytest.param(_set(3, price=-5.0), "ticks[3].price", id="negative-price"),
        pytest.param(_set(3, size=-1.0), "ticks[3].size", id="negative-size"),
        pytest.param(_set(3, seq=1.5), "ticks[3].seq", id="fractional-seq"),
        pytest.param(_set(3, side=2), "ticks[3].side", id="side-out-of-range"),
        pytest.param(_set(3, symbol="NOPE"), "ticks[3].symbol", id="unknown-symbol"),
        pytest.param(_set(3, bid=24010.0, ask=24000.0), "ticks[3].ask", id="crossed-book"),
        pytest.param(_set(3, ts="yesterday"), "ticks[3].ts", id="unparseable-ts"),
        pytest.param(_set(3, ts="2031-01-06T10:00:00"), "ticks[3].ts", id="ts-without-offset"),
        pytest.param(_set(3, ts=1_790_000_000), "ticks[3].ts", id="ts-in-seconds"),
        pytest.param(_set(3, ts=2**63), "ticks[3].ts", id="ts-above-int64"),
        pytest.param(_set(3, ts=2**70), "ticks[3].ts", id="ts-far-above-int64"),
        pytest.param(_set(3, ts="2262-04-11T00:00:00Z"), "ticks[3].ts", id="iso-ts-past-2261"),
        pytest.param(_set(3, ts="3000-01-01T00:00:00Z"), "ticks[3].ts", id="iso-ts-past-int64"),
        pytest.param(_set(3, prce=1.0), "ticks[3].prce", id="unknown-field"),
        pytest.param(_move_back, "ticks[3].ts", id="out-of-order"),
        pytest.param(lambda ticks: [], "ticks", id="empty-list"),
    ],
)
def test_malformed_tick_is_refused_naming_the_field_and_service_keeps_serving(
    scoring_service: str,
    scoring_client: ScoringClient,
    fresh_day: Callable[[str], dt.date],
    mutate: Callable[[list[dict]], list[dict]],
    field: str,
) -> None:
    ticks = ticks_payload(session_ticks(fresh_day("NIFTY"), 5))
    body = json.dumps({"ticks": mutate([dict(t) for t in ticks])})  # json, not httpx: NaN must get through

    refused = httpx.post(f"{scoring_service}/score", content=body, headers=JSON)

    assert 400 <= refused.status_code < 500
    assert field in refused.text
    assert len(scoring_client.score(ticks)) == 5


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"tick": []}', b'{"ticks": {"ts": 1}}'],
    ids=["not-json", "no-ticks-key", "ticks-not-a-list"],
)
def test_malformed_body_is_a_400(scoring_service: str, body: bytes) -> None:
    response = httpx.post(f"{scoring_service}/score", content=body, headers=JSON)

    assert response.status_code == 400


def test_a_symbol_outside_the_served_universe_is_a_400_naming_it(
    scoring_service: str, fresh_day: Callable[[str], dt.date]
) -> None:
    petr4 = simulate_session(get_instrument("PETR4"), fresh_day("PETR4"), seed=2, signal=1.0).iloc[:1]

    response = httpx.post(f"{scoring_service}/score", json={"ticks": ticks_payload(petr4)}, headers=JSON)

    assert response.status_code == 400
    assert "ticks[0].symbol" in response.text and "not in universe 'default'" in response.text


@pytest.mark.parametrize(
    "bad", [{"price": -1.0}, {"ts": 2**63 + 1}], ids=["negative-price", "ts-above-int64"]
)
def test_refused_request_applies_none_of_its_ticks(
    scoring_client: ScoringClient, fresh_day: Callable[[str], dt.date], bad: dict[str, Any]
) -> None:
    ticks = ticks_payload(session_ticks(fresh_day("NIFTY"), 5))
    with pytest.raises(ScoringError):
        scoring_client.score(ticks[:3] + [{**ticks[3], **bad}])
    scoring_client.score([ticks[2]])

    # Had ticks[0] been applied, it would now be a cached replay; unapplied, it lies behind ticks[2].
    with pytest.raises(ScoringError) as behind:
        scoring_client.score([ticks[0]])

    assert behind.value.status == 409


def test_metrics_endpoint_answers_with_request_counts(scoring_service: str) -> None:
    response = httpx.get(f"{scoring_service}/metrics")

    assert response.status_code == 200
    assert 'endpoint="/score"' in response.text


@pytest.fixture(scope="module")
def champion_models(champions: str) -> tuple[LoadedModel, LoadedModel]:
    """The champions the service serves, loaded in-process."""
    return load_champion(MODEL_15M), load_champion(MODEL_30M)


def _symbol_state(state: ScoringState, symbol: str) -> tuple:
    s = state.symbol(symbol)
    trade = s.trade_filter
    return (s.last_key, len(s.cache), s.features.ticks_in_session, trade.position, trade.trades_today)


@pytest.mark.parametrize("failing", ["NIFTY", "AMZN"], ids=["same-symbol", "other-symbol"])
def test_request_failing_on_a_later_tick_leaves_the_state_as_it_was(
    champion_models: tuple[LoadedModel, LoadedModel], failing: str
) -> None:
    nifty = [Tick.model_validate(t) for t in ticks_payload(session_ticks(dt.date(2031, 1, 6), 230))]
    amzn = simulate_session(get_instrument("AMZN"), dt.date(2031, 1, 6), seed=5, signal=1.0).iloc[:1]
    victim = nifty[215] if failing == "NIFTY" else Tick.model_validate(ticks_payload(amzn)[0])
    # Unvalidated, as the service took it before ts was bounded: the features engine overflows on it.
    poison = Tick.model_construct(**{**victim.model_dump(), "ts": 2**63 + 1})
    seen, unseen = ScoringState(ChampionPair(*champion_models)), ScoringState(ChampionPair(*champion_models))
    seen.score(nifty[:200])
    unseen.score(nifty[:200])

    with pytest.raises(OverflowError):
        seen.score([*nifty[200:210], poison])

    assert _symbol_state(seen, "NIFTY") == _symbol_state(unseen, "NIFTY")
    assert seen.score(nifty[220:230]) == unseen.score(nifty[220:230])
