"""The backtest report: its promotion-report section per symbol, and a verdict that says plainly what happened."""

from __future__ import annotations

from pipelines.registry import _replace_section


def test_a_symbols_section_is_added_once_and_replaced_on_a_rerun() -> None:
    report = "# Promotion report\n\n## Against the baselines\n\n| a |\n"

    once = _replace_section(report, "## Backtest: NIFTY", "## Backtest: NIFTY\n\nfirst")
    twice = _replace_section(once, "## Backtest: NIFTY", "## Backtest: NIFTY\n\nsecond")
    other = _replace_section(twice, "## Backtest: AMZN", "## Backtest: AMZN\n\namzn")

    assert twice.count("## Backtest: NIFTY") == 1 and "second" in twice and "first" not in twice
    assert "## Against the baselines" in twice
    assert "second" in other and "amzn" in other
