"""The scoring service's settings, read once from the environment into a frozen model (errors name the key)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from feature_store.instruments import DEFAULT_UNIVERSE, UNIVERSE_ENV
from pipelines.shards import Shard
from pipelines.tracking import tracking_uri

# environment variable -> field
ENV = {
    UNIVERSE_ENV: "universe",
    "TICKML_RELOAD_INTERVAL_S": "reload_interval_s",
    "TICKML_ADMIN_TOKEN": "admin_token",
    "TICKML_MAX_BODY_BYTES": "max_body_bytes",
    "TICKML_MAX_AHEAD_S": "max_ahead_s",
    "TICKML_WARM_START": "warm_start",
    "TICKML_SHARD": "shard",
    "TICKML_GC_FREEZE": "gc_freeze",
    "TICKML_SHADOW": "shadow",
}
TOKEN_FILE_ENV = "TICKML_ADMIN_TOKEN_FILE"


class ServingConfig(BaseModel):
    """How `serving.service.TickScorer` runs; `from_env` is where production settings come in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    universe: str = Field(default=DEFAULT_UNIVERSE, description="whose champions are served")
    tracking_uri: str = Field(description="the MLflow registry the champions are read from (read only)")
    reload_interval_s: float = Field(
        default=30.0, gt=0, description="how often the registry is polled for a moved champion alias"
    )
    admin_token: str | None = Field(
        default=None,
        min_length=16,
        repr=False,
        description="bearer token of POST /admin/reload; off if unset",
    )
    max_body_bytes: int = Field(default=8 * 2**20, ge=1024, description="larger request bodies get 413")
    max_ahead_s: float = Field(
        default=60.0, ge=0, description="ticks stamped further ahead of the service's clock are refused"
    )
    warm_start: bool = Field(default=True, description="rebuild a symbol's session from the tick store")
    shadow: bool = Field(
        default=False, description="also score the latest candidate versions, marked as shadow"
    )
    gc_freeze: bool = Field(
        default=True, description="freeze the collector after loading models (off only to measure it)"
    )
    shard: str | None = Field(
        default=None, pattern=r"^\d+/\d+$", description="i/N: serve only the symbols of shard i of N"
    )

    @field_validator("shard")
    @classmethod
    def _shard(cls, shard: str | None) -> str | None:
        if shard is not None:
            Shard.parse(shard)  # i < N
        return shard

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServingConfig:
        """Settings from `environ` (default os.environ); an invalid value raises ValueError naming the variable."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {"tracking_uri": environ.get("MLFLOW_TRACKING_URI") or tracking_uri()}
        values |= {field: environ[var] for var, field in ENV.items() if environ.get(var)}
        token_file = environ.get(TOKEN_FILE_ENV)
        if token_file and "admin_token" not in values:
            values["admin_token"] = Path(token_file).read_text().strip()
        try:
            return cls(**values)
        except ValidationError as exc:
            fields = {f: v for v, f in ENV.items()} | {
                "admin_token": f"{'TICKML_ADMIN_TOKEN'} or {TOKEN_FILE_ENV}"
            }
            problems = "; ".join(
                f"{fields.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}"
                for e in exc.errors(include_input=False)
            )
            raise ValueError(f"scoring service settings: {problems}") from None
