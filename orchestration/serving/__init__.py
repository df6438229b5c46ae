"""The streaming sensor's Dagster driver: new ticks from the store scored by the BentoML service."""
