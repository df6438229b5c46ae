"""Where the real market samples are: $TICKML_SAMPLE_DATA, else ../shared/data beside the project.

A missing folder fails the test run at collection with this message, never a silent empty parametrisation.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(os.environ.get("TICKML_SAMPLE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
LOBSTER = DATA / "lobster" / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
B3_FILES = sorted((DATA / "b3").glob("PETR4_*.csv"))
DHAN = DATA / "nse" / "dhan_nifty_futures_ticks.csv"
KITE = DATA / "nse" / "kiteconnect_nifty_futures_ticks.csv"

_missing = [str(p) for p in (LOBSTER, DHAN, KITE) if not p.exists()]
if _missing or len(B3_FILES) != 19:
    raise RuntimeError(
        f"real market samples not found under {DATA} (missing {_missing}, {len(B3_FILES)} of 19 B3 files): "
        "put the shared data beside the project as ../shared/data or set TICKML_SAMPLE_DATA"
    )
