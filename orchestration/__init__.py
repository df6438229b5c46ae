"""Dagster wiring only: assets, checks, partitions, resources, sensors and jobs over the domain code."""
