"""The backtest: recorded ticks replayed through the serving code path (online features, both champions,
the combined signal, the trade filter), filled at the touch with each venue's costs, beside rule
baselines on the same ticks, with metrics that account for how many strategies were compared."""
