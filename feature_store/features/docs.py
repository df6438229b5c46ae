"""The generated catalogue page (docs/features.md), rendered from the definitions themselves.

Regenerate the page with `python -m feature_store.features.docs` (a test fails while it is stale).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from feature_store.features.definitions import FEATURES
from feature_store.features.groups import GROUP_MODULES

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "features.md"
REGENERATE = "python -m feature_store.features.docs"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_catalogue() -> str:
    """The markdown of docs/features.md: groups with counts, then every feature with its warm-up."""
    lines = [
        "# Feature catalogue",
        "",
        f"<!-- Generated from feature_store/features/groups/*.py by `{REGENERATE}`; do not edit. -->",
        "",
        f"{len(FEATURES)} features in {len(GROUP_MODULES)} groups, in column order. One numba kernel computes",
        "them for both the batch engine (`compute_features`) and the online engine (`OnlineFeatures`), so the",
        "two agree on every tick. A tick's features read only that tick and earlier ticks of its trading day",
        "(the session: state resets at the instrument's local midnight).",
        "",
        "*Warm-up* is the number of ticks of the session, this one included, before a feature can have a",
        "value; until then it is NaN, never a silent zero. A feature is also NaN where its definition is",
        "undefined (no trades in the window, no book sizes on the feed — e.g. B3 — or a flat price); the",
        "models take NaN as missing. Windows count ticks (trades and quotes); the 180-tick window is read as",
        "6 blocks of 30 ticks, block 1 the oldest and block 6 ending with the tick itself.",
        "",
        "| group | features | module |",
        "|---|---:|---|",
    ]
    for module in GROUP_MODULES:
        group = module.FEATURES[0].group
        lines.append(f"| [{group}](#{group}) | {len(module.FEATURES)} | `{module.__name__}` |")
    for module in GROUP_MODULES:
        group = module.FEATURES[0].group
        lines += ["", f"## {group}", "", inspect.cleandoc(module.__doc__ or ""), ""]
        lines += ["| feature | definition | warm-up |", "|---|---|---:|"]
        lines += [f"| `{f.name}` | {_cell(f.description)} | {f.warmup} |" for f in module.FEATURES]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/features.md (or the path given) from the definitions."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DOC_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_catalogue(), encoding="utf-8")
    print(f"wrote {path} ({len(FEATURES)} features)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
