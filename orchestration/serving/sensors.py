"""`scoring_sensor`: each tick reads ticks newer than its cursor, scores them over HTTP, stores predictions,
and records what it scored as materialisations of `live_predictions`."""

import dagster as dg
import httpx

from orchestration.resources import ScoringServiceResource, TickStoreResource
from orchestration.serving.live import outcome, progress_events
from pipelines.streaming import (
    MAX_TICKS_PER_PASS,
    ScoringError,
    StreamInterrupted,
    describe,
    dump_cursor,
    live_edge,
    load_cursor,
    score_new_ticks,
)


@dg.sensor(
    name="scoring_sensor",
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Streams new ticks from the tick store through the scoring service (start the service "
    "first); its cursor is each symbol's last scored tick, what it scored is on live_predictions",
)
def scoring_sensor(
    context: dg.SensorEvaluationContext,
    tick_store: TickStoreResource,
    scoring_service: ScoringServiceResource,
) -> dg.SensorResult:
    """Score up to MAX_TICKS_PER_PASS ticks newer than the cursor, exactly once.

    The first evaluation starts at the live edge (today's session, else after each symbol's last stored
    tick) unless the resource says `backfill`. The cursor moves to whatever predictions were stored, also
    when the service or the store fails part way, so a backlog drains over several evaluations and nothing
    is scored twice. The tick's text says what was scored and up to when, or why nothing was; a symbol whose
    next tick is refused (or cannot be sent) is named there, and the others stream on.
    """
    cursor = load_cursor(context.cursor)
    store, client = tick_store.open(), scoring_service.client()
    started = ""
    try:
        if context.cursor is None and not scoring_service.backfill:
            cursor = live_edge(store)
            started = "".join(f"; {s} from the live edge after {describe(k, s)}" for s, k in cursor.items())
        step, failure = score_new_ticks(store, client, cursor, max_ticks=MAX_TICKS_PER_PASS), None
    except StreamInterrupted as exc:
        step, failure = exc.step, exc.__cause__
    try:
        events = progress_events(step.progress, "scoring_sensor", store if failure is None else None)
    finally:
        client.close()
        store.close()
    summary = outcome(step) + started
    if failure is not None and isinstance(failure, httpx.HTTPError | ScoringError):
        summary = f"scoring service unavailable at {scoring_service.url}: {failure}; {summary}"
    elif failure is not None:
        # Not the service: say so loudly, but still return, or Dagster would drop the cursor of what was stored
        context.log.error(f"streaming pass interrupted: {step.error}", exc_info=failure)
        summary = f"streaming pass interrupted: {step.error}; {summary}"
    if step.cursor != load_cursor(context.cursor):
        context.update_cursor(dump_cursor(step.cursor))
    return dg.SensorResult(skip_reason=summary, asset_events=events)
