"""Trading-day partitions (weekdays; exchange holidays are not modelled yet)."""

import dagster as dg

TRADING_DAYS = dg.TimeWindowPartitionsDefinition(
    start="2026-01-01", fmt="%Y-%m-%d", cron_schedule="0 0 * * 1-5", timezone="UTC", end_offset=1
)
