"""One cache-off page in process: its CPU time, or a cProfile of it (issue 15, uncached).

The app with `STRATA_CACHE=off` (INFO, a 100-author catalogue), called directly as in
`benchmarks/field_execution.py`: no socket, no other server. Prints the process CPU time
per page (all threads: SQLite's reads run in threads) of five runs, or with `--profile`
the top of a cProfile of `--count` pages and the calls per page.

    .venv/bin/python -m benchmarks.uncached_profile list [--profile] [--count 200]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats

from benchmarks.field_execution import PAGES, PLAN, lifespan, per_request_us
from benchmarks.seeded import seeded_database
from graph.settings import Settings
from graph.web.app import create_app


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("page", choices=sorted(PAGES))
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--lines", type=int, default=25)
    options = parser.parse_args()
    url = await seeded_database(PLAN, "strata-uncached-")
    settings = Settings(cache="off", database_url=url, log_level="INFO", expose_cache_stats=False)  # type: ignore[arg-type]  # fmt: skip
    app = create_app(settings)
    stop = await lifespan(app)
    await per_request_us(app, options.page, 100)  # warm the parse and statement caches
    if options.profile:
        profile = cProfile.Profile()
        profile.enable()
        await per_request_us(app, options.page, options.count)
        profile.disable()
        stats = pstats.Stats(profile)
        print(f"{stats.total_calls / options.count:.0f} function calls per page")  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(options.lines)
    else:
        for _ in range(5):
            print(
                f"{options.page}: {await per_request_us(app, options.page, options.count):.0f} µs"
            )
    await stop()


if __name__ == "__main__":
    asyncio.run(main())
