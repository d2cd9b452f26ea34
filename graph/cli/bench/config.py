"""What a benchmark runs: its settings, its phases and the steps (runs) of each."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.cli.bench import plan as plans

PHASES = ("off", "fields", "yardstick", "all", "hits")
PHASE_ENV = {
    "off": {"STRATA_CACHE": "off", "STRATA_RESPONSE_CACHE": "false"},
    "fields": {"STRATA_CACHE": "on", "STRATA_RESPONSE_CACHE": "false"},
    "yardstick": {},  # benchmarks/yardstick.py: Strawberry over dicts, not Strata
    "all": {"STRATA_CACHE": "on", "STRATA_RESPONSE_CACHE": "true"},
    "hits": {"STRATA_CACHE": "on", "STRATA_RESPONSE_CACHE": "true"},
}
PHASE_TITLES = {
    "off": "cache off",
    "fields": "field + dataloader cache",
    "yardstick": "Strawberry over in-memory dicts (benchmarks/yardstick.py)",
    "all": "everything on (response cache)",
    "hits": "response-cache hits: interleaved rounds against /healthz, and A/B of log and metrics",
}
CURVE_PHASES = ("off", "all")
RUN_KINDS = ("mix", "list", "detail")
YARDSTICK_RUNS = ("list", "detail")
SCRAPE_PAUSE = 1.0  # engine counters reach /metrics within ~1 s
REQUESTS_PER_SCRIPT = 10_000


@dataclass(frozen=True)
class BenchConfig:
    authors: int = 1000
    books_per_author: int = 10
    reviews_per_book: int = 5
    users: int = 100
    seed: int = 42
    duration: float = 10.0
    warmup: float = 3.0
    connections: int = 16
    workers: int = 1
    mix: str = plans.DEFAULT_MIX
    zipf: float = 1.1
    out: Path = Path("bench-results")
    phases: tuple[str, ...] = PHASES
    curve: bool = True
    curve_firsts: tuple[int, ...] = plans.CURVE_FIRSTS
    viewers: int = 8
    scrape_pause: float = SCRAPE_PAUSE
    hit_rounds: int = 3
    hit_duration: float = 5.0
    command: str = "strata bench"

    def validate(self) -> None:
        unknown = [phase for phase in self.phases if phase not in PHASES]
        if unknown or not self.phases:
            raise ValueError(f"phases must be a subset of {','.join(PHASES)}, got {unknown}")
        if self.hit_rounds < 1:
            raise ValueError("the hit-path section needs at least one round")
        if self.authors < 1 or self.books_per_author < 1 or self.users < 1:
            raise ValueError("the benchmark needs at least one author, book and user")
        if any(not 1 <= first <= 100 for first in self.curve_firsts):
            raise ValueError("curve points must be between 1 and 100 (the schema's bounds)")
        plans.parse_mix(self.mix)


@dataclass
class Step:
    phase: str
    name: str  # mix, list, detail, healthz, curve-<first>
    script: Path
    warmup: float
    first: int | None = None
    result: dict[str, Any] = field(default_factory=dict)
