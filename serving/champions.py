"""Following a universe's `champion` alias: load a vetted pair, swap it in live, and say why when not.

The registry is only read. A fault (registry unreachable, no champion yet, a version that is refused or
fails to load) never stops the service: with nothing served yet it stays not ready and retries with
backoff; with a pair served it keeps serving that pair and reports the fault in `status`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from feature_store.instruments import Universe
from pipelines import registry
from pipelines.scoring import ChampionPair

log = logging.getLogger("tickml.serving")


@dataclass(frozen=True)
class ChampionStatus:
    """What the service serves (None before the first good load) and the last problem, if any."""

    served: dict[str, str] | None  # registered model name -> version
    problem: str | None  # why nothing is served, or why the newest champion is not
    checked_at: dt.datetime | None
    shadow: dict[str, str] | None = None  # the challenger scored in shadow, if any
    shadow_problem: str | None = None  # why the latest candidates are not scored in shadow

    @property
    def ready(self) -> bool:
        return self.served is not None


class ChampionWatcher:
    """Resolves the universe's vetted champions, loads a pair that differs from the served one, and hands
    it to `swap`; `check` once on demand (the admin reload), `run` as a polling loop."""

    def __init__(
        self,
        universe: Universe,
        swap: Callable[[ChampionPair, ChampionPair | None], None],
        *,
        uri: str,
        interval_s: float = 30.0,
        max_backoff_s: float = 60.0,
        shadow: bool = False,
    ) -> None:
        self.universe, self.uri, self._swap, self.shadow = universe, uri, swap, shadow
        self.interval_s, self.max_backoff_s = interval_s, max_backoff_s
        self.names = [universe.model_name(b) for b in (registry.MODEL_15M, registry.MODEL_30M)]
        self._status = ChampionStatus(None, "not checked yet", None)
        self._refused: dict[str, str] = {}  # wanted versions (joined) -> why they were not loaded
        self._pair: ChampionPair | None = None
        self._shadow: tuple[dict[str, str] | None, ChampionPair | None] = (None, None)
        self._lock = threading.Lock()  # one check at a time (poller and admin reload)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def status(self) -> ChampionStatus:
        return self._status

    def check(self) -> ChampionStatus:
        """Look at the registry once: swap in the champions (and the shadow challenger) if they moved,
        record a problem otherwise."""
        with self._lock:
            self._status = self._check(self._status.served, dt.datetime.now(dt.UTC))
            return self._status

    def _check(self, served: dict[str, str] | None, now: dt.datetime) -> ChampionStatus:
        try:
            client = registry.read_client(self.uri)
            wanted = {n: registry.vetted_champion(n, uri=self.uri, client=client) for n in self.names}
        except Exception as exc:  # noqa: BLE001 - registry down, no champion yet: reported, retried
            return ChampionStatus(served, _one_line(exc), now, self._shadow[0])
        problem, before = None, (self._pair, self._shadow[1])
        if wanted != served:
            key = ",".join(f"{n}/{v}" for n, v in wanted.items())
            problem = self._refused.get(key)  # a refused pair stays refused until the alias moves again
            if problem is None:
                try:
                    self._pair = self._load(client, wanted)
                    log.info(
                        "serving %s (was %s)", _versions(wanted), _versions(served) if served else "nothing"
                    )
                    served = wanted
                except Exception as exc:  # noqa: BLE001 - a broken or unsafe version must not stop serving
                    problem = _one_line(exc)
                    if served is not None:
                        problem = f"{problem}; still serving {_versions(served)}"
                    if isinstance(exc, ValueError):  # refused (unsafe files, wrong classes): not retried
                        self._refused[key] = problem
                    log.error("champions %s not loaded: %s", key, problem)
        shadow_problem = self._update_shadow(client, served) if self.shadow else None
        if self._pair is not None and (self._pair, self._shadow[1]) != before:
            self._swap(self._pair, self._shadow[1])
        return ChampionStatus(served, problem, now, self._shadow[0], shadow_problem)

    def _load(self, client, versions: dict[str, str]) -> ChampionPair:
        return ChampionPair(
            *(registry.load_version(n, v, uri=self.uri, client=client) for n, v in versions.items())
        )

    def _update_shadow(self, client, served: dict[str, str] | None) -> str | None:
        """Load the latest registered version of each model as the shadow pair when it is not the champion;
        returns why not when it cannot be loaded (the champion serves on either way)."""
        if served is None:
            return None
        try:
            wanted = {
                n: str(max((int(v.version) for v in client.search_model_versions(f"name='{n}'")), default=0))
                for n in self.names
            }
        except Exception as exc:  # noqa: BLE001 - registry hiccup: keep the current shadow
            return _one_line(exc)
        if wanted == served:
            self._shadow = (None, None)
            return None
        if wanted == self._shadow[0]:
            return None
        key = ",".join(f"{n}/{v}" for n, v in wanted.items())
        if key in self._refused:
            return self._refused[key]
        try:
            self._shadow = (wanted, self._load(client, wanted))
            log.info("scoring %s in shadow", _versions(wanted))
            return None
        except Exception as exc:  # noqa: BLE001 - the shadow is optional
            problem = _one_line(exc)
            if isinstance(exc, ValueError):
                self._refused[key] = problem
            log.error("shadow candidates %s not loaded: %s", key, problem)
            return problem

    def start(self) -> None:
        """Check now, then keep checking in a daemon thread: every `interval_s` once something is served,
        with exponential backoff until then (1 s doubling up to `interval_s` or `max_backoff_s`)."""
        self.check()
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        failures = 0
        while True:
            failures = 0 if self._status.ready else failures + 1
            backoff = min(self.max_backoff_s, self.interval_s, 2.0 ** (failures - 1))
            delay = backoff if failures else self.interval_s
            if self._stop.wait(delay):
                return
            try:
                self.check()
            except Exception:  # a bug here must not end the polling for the service's lifetime
                log.exception("champion check failed; retrying in %.0f s", self.interval_s)


def _versions(served: dict[str, str]) -> str:
    return " and ".join(f"{name} v{version}" for name, version in served.items())


def _one_line(exc: BaseException, limit: int = 500) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
