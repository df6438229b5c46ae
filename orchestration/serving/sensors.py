"""`scoring_sensor`: each tick reads ticks newer than its cursor, scores them over HTTP, stores predictions."""

import dagster as dg
import httpx

from orchestration.resources import ScoringServiceResource, TickStoreResource
from pipelines.streaming import ScoringError, dump_cursor, load_cursor, score_new_ticks


@dg.sensor(
    name="scoring_sensor",
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Streams new ticks from the tick store through the scoring service (start the service first)",
)
def scoring_sensor(
    context: dg.SensorEvaluationContext,
    tick_store: TickStoreResource,
    scoring_service: ScoringServiceResource,
) -> dg.SkipReason:
    """Score ticks newer than the cursor exactly once; the cursor moves only after predictions are stored."""
    store, client = tick_store.open(), scoring_service.client()
    try:
        step = score_new_ticks(store, client, load_cursor(context.cursor))
    except (httpx.HTTPError, ScoringError) as exc:
        return dg.SkipReason(f"scoring service unavailable at {scoring_service.url}: {exc}")
    finally:
        client.close()
        store.close()
    context.update_cursor(dump_cursor(step.cursor))
    refused = "".join(f"; {symbol} refused: {reason}" for symbol, reason in step.refused.items())
    return dg.SkipReason(
        f"scored {step.ticks_scored} ticks, stored {step.predictions_stored} predictions{refused}"
    )
