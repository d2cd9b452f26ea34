"""What the per-operation statistics cost when they are not exposed (issue 6).

Runs one warm, field-cached query through Strawberry (no response cache, no HTTP) with
and without the `OperationObserver` extension and the per-request stats the endpoint
opens, with `extensions.cache` off and operation log lines below the log level, and
prints medians and the difference in microseconds. Usage:

    .venv/bin/python -m benchmarks.observability_overhead
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from benchmarks.seeded import seeded_database
from graph.api.schema import build_schema
from graph.observability.logs import configure_logging
from graph.observability.operations import observing_operation, report
from graph.services import Services
from graph.settings import Settings
from models.seed import SeedPlan

QUERY = '{ book(id: "3") { title author { name } reviewCount averageRating } }'
ROUNDS, PER_ROUND = 15, 400


async def _time(run: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    for _ in range(PER_ROUND):
        await run()
    return (time.perf_counter() - started) / PER_ROUND * 1e6


async def main() -> None:
    plan = SeedPlan(authors=20, books_per_author=3, reviews_per_book=3, users=5)
    url = await seeded_database(plan, "strata-overhead-")
    settings = Settings(database_url=url, expose_cache_stats=False, log_level="WARNING")
    configure_logging(settings)
    services = Services.create(settings)
    bare = build_schema(settings, observed=False)
    await services.start()

    async def observed() -> None:
        with observing_operation(services.cache) as stats:
            result = await services.schema.execute(QUERY, context_value=services.context(None))
            stats.response = "skip"
            report(stats, services.metrics)
        assert not result.errors

    async def unobserved() -> None:
        result = await bare.execute(QUERY, context_value=services.context(None))
        assert not result.errors

    for _ in range(200):  # warm the caches of both paths
        await observed()
        await unobserved()
    with_stats, without = [], []
    for _ in range(ROUNDS):  # interleaved, so machine noise hits both alike
        with_stats.append(await _time(observed))
        without.append(await _time(unobserved))
    await services.close()
    on, off = statistics.median(with_stats), statistics.median(without)
    print(f"execution with statistics (not exposed): {on:8.1f} µs (median of {ROUNDS})")
    print(f"execution without the extension:          {off:8.1f} µs")
    print(f"overhead:                                 {on - off:8.1f} µs ({on / off - 1:+.1%})")


if __name__ == "__main__":
    asyncio.run(main())
