"""The BentoML scoring service: the two champion models, online state per symbol, POST /score, GET /models.

Run it with `bentoml serve serving.service:TickScorer --port 3001` (or `tickml serve`); the MLflow
registry is the one named by $MLFLOW_TRACKING_URI, the universe whose champions it serves $TICKML_UNIVERSE
(default: the default universe). BentoML's own /livez, /readyz and /metrics stay.
"""

from __future__ import annotations

import os
from http import HTTPStatus

import bentoml
from bentoml.exceptions import BentoMLException
from fastapi import FastAPI

from feature_store.instruments import DEFAULT_UNIVERSE, UNIVERSE_ENV, get_universe
from pipelines.registry import CHAMPION, MODEL_15M, MODEL_30M, LoadedModel, load_champion
from serving.schemas import FeatureSetInfo, ModelsResponse, ScoreResponse, ServedModel, Ticks
from serving.state import ScoringState, StaleTickError

# GET routes live on a FastAPI app mounted at the root; its docs are off so BentoML's stay the only ones.
routes = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


class OutsideUniverse(BentoMLException):
    """A tick of a symbol the served models were not trained on."""

    error_code = HTTPStatus.BAD_REQUEST


class StaleTick(BentoMLException):
    """A tick behind its symbol's stream that the replay cache no longer holds."""

    error_code = HTTPStatus.CONFLICT


def _served(model: LoadedModel) -> ServedModel:
    return ServedModel(
        name=model.name,
        version=model.version,
        alias=CHAMPION,
        flavor=model.flavor,
        classes=list(model.classes),
        feature_set=FeatureSetInfo(
            name=model.feature_set.name,
            version=model.feature_set.version,
            features=len(model.feature_set.features),
        ),
        run_id=model.run_id,
        loaded_at=model.loaded_at,
    )


# One worker on purpose: features and the replay cache are in-process state, so a second worker would
# see half of each symbol's ticks. Scale out by sharding symbols across replicas instead.
@bentoml.service(name="tick_scorer", workers=1, traffic={"timeout": 30})
@bentoml.asgi_app(routes, path="/")
class TickScorer:
    """Scores ticks with the `champion` versions of a universe's `direction-15m` and `direction-30m` models."""

    def __init__(self) -> None:
        self.universe = universe = get_universe(os.environ.get(UNIVERSE_ENV) or DEFAULT_UNIVERSE)
        self.model_15m = load_champion(universe.model_name(MODEL_15M))
        self.model_30m = load_champion(universe.model_name(MODEL_30M))
        self.state = ScoringState(self.model_15m, self.model_30m)

    @bentoml.api(route="/score")
    def score(self, ticks: Ticks) -> ScoreResponse:
        """One prediction per tick, in order: both models' probabilities, signal, confidence, decision."""
        for i, tick in enumerate(ticks):
            if tick.symbol not in self.universe.symbols:
                raise OutsideUniverse(
                    f"ticks[{i}].symbol: {tick.symbol!r} is not in universe {self.universe.name!r} "
                    f"({', '.join(self.universe.symbols)}), whose models are served here; serve its own "
                    "universe with `tickml serve --universe NAME`"
                )
        try:
            return ScoreResponse(predictions=self.state.score(ticks))
        except StaleTickError as exc:
            raise StaleTick(str(exc)) from None

    @routes.get("/models")
    def models(self) -> ModelsResponse:
        """The champion versions being served, with their feature sets and load times (UTC)."""
        return ModelsResponse(models=[_served(self.model_15m), _served(self.model_30m)])
