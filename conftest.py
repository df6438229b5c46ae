"""Fixture modules shared by the whole suite (pytest only honours pytest_plugins in the root conftest)."""

pytest_plugins = ["tests.fixtures_models", "tests.fixtures_serving"]
