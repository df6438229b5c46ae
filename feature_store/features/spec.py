"""What a feature declaration is: `FeatureDef`, the group names, and the per-block family helper.

Group modules (`groups/*.py`) declare their features with these; `definitions.py` gathers them.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICE = "price"
VOLATILITY = "volatility"
ORDER_FLOW = "order_flow"
BOOK = "book"
SESSION = "session"
TIME = "time"
BLOCK = "block"
SMART_MONEY = "smart_money"
MARKET_MAKER = "market_maker"
INDICATOR = "indicator"
REGIME = "regime"
GROUPS: tuple[str, ...] = (
    PRICE,
    VOLATILITY,
    ORDER_FLOW,
    BOOK,
    SESSION,
    TIME,
    BLOCK,
    SMART_MONEY,
    MARKET_MAKER,
    INDICATOR,
    REGIME,
)

# The 180-tick window is read as 6 blocks of 30 ticks; block 6 ends with the current tick t.
N_BLOCKS = 6
BLOCK_TICKS = 30


@dataclass(frozen=True)
class FeatureDef:
    """One feature of a tick: what it means, and how many ticks of the session it needs.

    `warmup` is the number of ticks of the current trading day (this one included) that must have
    been seen before the feature has a value; until then it is NaN, never a silent zero. After the
    warm-up a feature may still be NaN where its description says it is undefined.
    """

    name: str
    group: str
    description: str
    warmup: int = 1

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"feature name must be a lower-case identifier, got {self.name!r}")
        if self.group not in GROUPS:
            raise ValueError(f"feature {self.name}: group {self.group!r} is not one of {GROUPS}")
        if not self.description.strip() or "\n" in self.description:
            raise ValueError(f"feature {self.name}: description must be one non-empty line")
        if self.warmup < 1:
            raise ValueError(f"feature {self.name}: warmup must be >= 1, got {self.warmup}")


def block_span(block: int) -> str:
    """The ticks of block `block` (1 = oldest, 6 = newest) as text, e.g. `ticks t-59..t-30`."""
    last = (N_BLOCKS - block) * BLOCK_TICKS
    first = last + BLOCK_TICKS - 1
    return f"ticks t-{first}..t" if last == 0 else f"ticks t-{first}..t-{last}"


def per_block(
    stem: str, group: str, description: str, *, warmup: int = 180, first_block_warmup: int | None = None
) -> tuple[FeatureDef, ...]:
    """The family `blk1_<stem>` .. `blk6_<stem>`, one feature per block of the 180-tick window.

    `description` is a one-line template with `{block}` (e.g. `block 2 (ticks t-149..t-120)`).
    `first_block_warmup` is for families whose block 1 also reads the tick before the window.
    """
    return tuple(
        FeatureDef(
            f"blk{b}_{stem}",
            group,
            description.format(block=f"block {b} ({block_span(b)})"),
            warmup=(first_block_warmup or warmup) if b == 1 else warmup,
        )
        for b in range(1, N_BLOCKS + 1)
    )


def check_declarations(namespace: dict[str, object], features: tuple[FeatureDef, ...]) -> None:
    """Raise unless every module-level declaration in `namespace` is listed in `features` exactly once.

    A single feature's variable must carry its name; a per-block family's variable must be its stem
    (`blk_slope` for `blk1_slope` .. `blk6_slope`). A declaration left out would never be computed.
    """
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise ValueError(f"a group lists a feature twice: {sorted({n for n in names if names.count(n) > 1})}")
    declared: list[str] = []
    for var, value in namespace.items():
        if isinstance(value, FeatureDef):
            if value.name != var:
                raise ValueError(f"feature {value.name!r} must be declared as a variable of the same name")
            declared.append(value.name)
        elif isinstance(value, tuple) and value and all(isinstance(f, FeatureDef) for f in value):
            if var == "FEATURES":
                continue
            stem = var.removeprefix("blk_")
            if var == stem or [f.name for f in value] != [f"blk{b}_{stem}" for b in range(1, N_BLOCKS + 1)]:
                raise ValueError(f"per-block family {var!r} must be named blk_<stem> and hold blk1..blk6")
            declared.extend(f.name for f in value)
    if sorted(declared) != sorted(names):
        missing = sorted(set(declared) ^ set(names))
        raise ValueError(f"declared features and the group's FEATURES differ on {missing}")
