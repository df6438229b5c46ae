"""The backtest after each champion decision: the universe's models on its held-out days, replayed
through the serving code beside the rule baselines, after costs."""

import datetime as dt

import dagster as dg
import pandas as pd

from feature_store.instruments import get_instrument, get_universe
from orchestration.features.assets import DATASET
from orchestration.plots import figure_md
from orchestration.resources import MlflowResource, TickStoreResource
from orchestration.ticks.partitions import UNIVERSES
from pipelines.backtest import report
from pipelines.backtest.engine import run_backtest, session_ticks
from pipelines.scoring import load_pair


@dg.asset(
    partitions_def=UNIVERSES,
    group_name="training",
    ins={
        "training_dataset": dg.AssetIn(DATASET),
        "candidate_15m": dg.AssetIn("direction_15m_model"),
        "candidate_30m": dg.AssetIn("direction_30m_model"),
        "champion_15m": dg.AssetIn("direction_15m_champion"),
        "champion_30m": dg.AssetIn("direction_30m_champion"),
    },
)
def backtest_report(
    context: dg.AssetExecutionContext,
    training_dataset: pd.DataFrame,
    candidate_15m: dict,
    candidate_30m: dict,
    champion_15m: dict,
    champion_30m: dict,
    tick_store: TickStoreResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """The universe's new candidates (its champions when both were promoted) backtested on each symbol's
    held-out days beside the rule baselines, after costs; the report is on the model versions too."""
    universe = get_universe(context.partition_key)
    # the candidates, never an older champion: they trained before the held-out days, so the days are
    # out of sample for them (a champion kept by a refusal may have trained on them)
    candidates = (candidate_15m, candidate_30m)
    refs = [f"{c['name']}/{c['version']}" for c in candidates]
    promoted = [
        c["version"] == d["champion"] for c, d in zip(candidates, (champion_15m, champion_30m), strict=True)
    ]
    if all(promoted):
        which = label = "champions"
    else:
        which, label = "candidates (the gate did not promote both)", "candidates"
    pair = load_pair(refs, uri=mlflow.tracking_uri)
    held = training_dataset[training_dataset["holdout"]]
    metadata: dict[str, object] = {"models": f"{which}: {', '.join(refs)}"}
    store = tick_store.open()
    try:
        for symbol in universe.symbols:
            days = sorted({dt.date.fromisoformat(str(d)) for d in held.loc[held["symbol"] == symbol, "day"]})
            if not days:
                continue
            instrument = get_instrument(symbol)
            result = run_backtest(instrument, session_ticks(store, instrument, days), pair, label=label)
            text, summary = report.markdown(result), report.summary(result)
            champ = result.table().loc[label]
            tags = {
                f"backtest.{symbol}.net_pnl": f"{champ['pnl_net']:.2f}",
                f"backtest.{symbol}.trades": str(int(champ["trades"])),
                f"backtest.{symbol}.sharpe": f"{champ['sharpe']:.3f}",
                f"backtest.{symbol}.days": ",".join(map(str, result.days)),
            }
            figures = {
                f"{symbol}_equity.png": report.equity_figure(result),
                f"{symbol}_daily_pnl.png": report.daily_figure(result),
            }
            for model in (pair.model_15m, pair.model_30m):
                mlflow.log_backtest(model.name, model.version, symbol, text, summary, figures, tags)
            metadata[f"{symbol}_report"] = dg.MetadataValue.md(text)
            metadata[f"{symbol}_summary"] = dg.MetadataValue.md(summary)
            metadata[f"{symbol}_equity"] = figure_md(figures[f"{symbol}_equity.png"])
            metadata[f"{symbol}_daily_pnl"] = figure_md(figures[f"{symbol}_daily_pnl.png"])
            metadata[f"{symbol}_net_pnl"] = float(champ["pnl_net"])
            metadata[f"{symbol}_trades"] = int(champ["trades"])
            metadata[f"{symbol}_ticks_per_second"] = float(result.ticks_per_second)
            context.log.info(
                f"{symbol}: {result.ticks:,} held-out ticks backtested; " + " ".join(report.verdict(result))
            )
    finally:
        store.close()
    return dg.MaterializeResult(metadata=metadata)
