"""Plots as Dagster metadata: a matplotlib figure rendered into a markdown image."""

from __future__ import annotations

import base64
import io

import dagster as dg
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen before pyplot loads


def figure_md(fig: plt.Figure) -> dg.MetadataValue:
    """Render `fig` as PNG into markdown metadata (the Dagster UI shows it inline) and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return dg.MetadataValue.md(f"![plot](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})")


def png_md(png: bytes) -> dg.MetadataValue:
    """A PNG image as markdown metadata."""
    return dg.MetadataValue.md(f"![plot](data:image/png;base64,{base64.b64encode(png).decode()})")
