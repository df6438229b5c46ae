"""`scoring_sensor`: each tick reads ticks newer than its cursor, scores them over HTTP, stores predictions."""

import dagster as dg
import httpx

from orchestration.resources import ScoringServiceResource, TickStoreResource
from pipelines.streaming import (
    MAX_TICKS_PER_PASS,
    ScoringError,
    StreamInterrupted,
    dump_cursor,
    load_cursor,
    score_new_ticks,
)


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
    """Score up to MAX_TICKS_PER_PASS ticks newer than the cursor, exactly once.

    The cursor moves to whatever predictions were stored, also when the service or the store fails part
    way, so a backlog drains over several evaluations and nothing is scored twice. A symbol whose next
    tick is refused (or cannot be sent) is named in the skip reason; the others stream on.
    """
    cursor = load_cursor(context.cursor)
    store, client = tick_store.open(), scoring_service.client()
    try:
        step, failure = score_new_ticks(store, client, cursor, max_ticks=MAX_TICKS_PER_PASS), None
    except StreamInterrupted as exc:
        step, failure = exc.step, exc.__cause__
    finally:
        client.close()
        store.close()
    if step.cursor != cursor:
        context.update_cursor(dump_cursor(step.cursor))
    summary = f"scored {step.ticks_scored} ticks, stored {step.predictions_stored} predictions"
    summary += "".join(f"; {symbol} refused: {reason}" for symbol, reason in step.refused.items())
    if failure is None:
        return dg.SkipReason(summary)
    if isinstance(failure, httpx.HTTPError | ScoringError):
        return dg.SkipReason(f"scoring service unavailable at {scoring_service.url}: {failure}; {summary}")
    # Not the service: say so loudly, but still return, or Dagster would drop the cursor of what was stored
    context.log.error(f"streaming pass interrupted: {step.error}", exc_info=failure)
    return dg.SkipReason(f"streaming pass interrupted: {step.error}; {summary}")
