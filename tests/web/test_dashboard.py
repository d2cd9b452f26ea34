"""The live dashboard: its numbers agree with /metrics in a real browser, and its data is
for admins only in production.

The browser test drives Debian's chromium (/usr/bin/chromium) with Playwright; `python3
dev.py test` installs chromium where it can (root, apt-get). Without it the test skips.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from graph.observability.exposition import parse
from graph.observability.figures import quantile
from graph.settings import Settings
from tests import conftest
from tests.support.api import prepare_database, running_api
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import Server, running, server_env
from tests.support.strict import require_program

ROOT = Path(__file__).resolve().parents[2]

BOOKS = "query Books { books(first: 5) { edges { node { id title author { name } } } } }"
BOOK = "query Book($id: ID!) { book(id: $id) { id title reviewCount averageRating } }"
AUTHORS = "query Authors { authors(first: 3) { edges { node { id name bookCount } } } }"
UPDATE = "mutation Rename($id: ID!, $title: String!) { updateBook(id: $id, input: {title: $title}) { id title } }"  # noqa: E501


# --- /metrics, parsed --------------------------------------------------------------------


def total(
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(value for (n, have), value in samples.items() if n == name and wanted <= have)


def headline(text: str) -> dict[str, int]:
    """The figures the page must show, as /metrics has them."""
    samples = parse(text)
    return {
        "requests-total": int(total(samples, "strata_request_seconds_count")),
        "response-hits": int(total(samples, "strata_response_cache_total", result="hit")),
        "response-misses": int(total(samples, "strata_response_cache_total", result="miss")),
        "l1-hits": int(total(samples, "strata_cache_hits_total", tier="l1")),
        "l1-misses": int(total(samples, "strata_cache_misses_total", tier="l1")),
        "l2-hits": int(total(samples, "strata_cache_hits_total", tier="l2")),
        "sql-total": int(total(samples, "strata_sql_statements_total")),
        "l1-entries": int(total(samples, "strata_cache_l1_entries")),
    }


# --- the page in a browser ---------------------------------------------------------------


async def traffic(server: Server, book_ids: list[str], rounds: int) -> None:
    """Repeated reads, so the second and later ones hit the caches."""
    for _ in range(rounds):
        await server.data(BOOKS)
        await server.data(AUTHORS)
        for book_id in book_ids:
            await server.data(BOOK, {"id": book_id})


async def settled_metrics(server: Server) -> str:
    """/metrics once two scrapes in a row agree (the last request's figures are in)."""
    previous = None
    for _ in range(50):
        text = (await server.client.get("/metrics")).text
        if previous is not None and headline(text) == headline(previous):
            return text
        previous = text
        await asyncio.sleep(0.1)
    raise AssertionError("/metrics kept changing after the traffic stopped")


@pytest.mark.slow
async def test_dashboard_in_a_browser_agrees_with_metrics(
    sqlite_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    require_program(
        str(CHROMIUM),
        "`python3 dev.py test` installs Debian's chromium when run as root where apt-get "
        "exists; else run `apt-get install chromium` as root",
    )
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - playwright is in the dev lock
        pytest.skip("the playwright package is not installed (it is in requirements-dev.lock)")

    admin, _user, _other = await prepare_database(sqlite_url)
    server = Server("dashboard", server_env(sqlite_url, redis_url, key_prefix), tmp_path)
    async with running([server]), async_playwright() as playwright:
        data = await server.data(BOOKS)
        book_ids = [edge["node"]["id"] for edge in data["books"]["edges"]][:3]
        await traffic(server, book_ids, rounds=2)
        renamed = await server.data(UPDATE, {"id": book_ids[0], "title": "Renamed"}, admin)
        assert renamed["updateBook"]["title"] == "Renamed"

        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1360, "height": 900})
            problems: list[str] = []
            outside: list[str] = []
            base = f"http://127.0.0.1:{server.port}/"
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type == "error" else None,
            )
            page.on(
                "request",
                lambda request: (
                    None if request.url.startswith(base) else outside.append(request.url)
                ),
            )
            await page.goto(base + "dashboard")
            await page.wait_for_function("document.body.dataset.state === 'live'", timeout=10_000)

            # Traffic while the page polls, so the charts have windows with lookups in them.
            for _ in range(8):
                await traffic(server, book_ids, rounds=2)
                await asyncio.sleep(0.7)
            # The traffic has stopped: the figures are final, and the page must catch up.
            expected = headline(await settled_metrics(server))
            assert expected["response-hits"] > 0, expected
            assert expected["l1-hits"] > 0, expected
            wanted = " && ".join(
                f"document.getElementById({key!r}).dataset.value === {str(value)!r}"
                for key, value in expected.items()
            )
            try:
                await page.wait_for_function(wanted, timeout=8_000)
            except Exception:
                shown = await shown_values(page, expected)
                raise AssertionError(f"the page shows {shown}, /metrics says {expected}") from None
            shown = await shown_values(page, expected)
            after = headline((await server.client.get("/metrics")).text)
            assert shown == after == expected

            # What a person reads is the same number, formatted.
            text = await page.inner_text("#requests-total")
            assert int(text.replace(",", "")) == expected["requests-total"]
            ratio = await page.inner_text("#response-ratio")
            assert re.fullmatch(r"\d+\.\d%", ratio), ratio

            # The hit-ratio chart drew points, on a canvas of a real size.
            plotted = await page.evaluate(
                "() => { const c = window.strataDashboard.charts.ratio;"
                " return {points: c.data[0].length,"
                " values: c.data.slice(1).flat().filter(v => v != null).length,"
                " width: c.width, height: c.height}; }"
            )
            assert plotted["points"] >= 2, plotted
            assert plotted["values"] >= 2, plotted
            assert plotted["width"] >= 300, plotted
            assert plotted["height"] >= 150, plotted
            canvas = await page.eval_on_selector("#chart-ratio canvas", "c => c.width * c.height")
            assert canvas > 0

            # Tables: the hottest keys were read, the mutation's tags are listed.
            assert await page.locator("#hot-keys tbody td.key").count() > 0
            recent = await page.inner_text("#recent tbody")
            assert f"Book:{book_ids[0]}" in recent, recent
            assert "mutation" in recent

            # The deployment: this one process, one row, its id as /dashboard/data has it.
            data = (await server.client.get("/dashboard/data")).json()
            me = data["deployment"]["instances"]
            assert len(me) == 1, me
            assert await page.locator("#instances tbody tr").count() == 1
            row = page.locator("#instances tbody tr")
            assert await row.get_attribute("data-instance") == me[0]["id"]
            assert me[0]["id"] in recent  # the mutation was made by this instance
            shown_count = await page.get_attribute("#deployment-instances", "data-value")
            assert shown_count == "1"
            # An empty tier is explained, not a bare 0.0%.
            l2_note = page.locator("#l2-note")
            assert await l2_note.is_visible() == (expected["l2-hits"] == 0), expected
            if expected["l2-hits"] == 0:
                assert "first read" in await l2_note.inner_text()
                notes = await page.inner_text("#deployment-notes")
                assert "L2: every L2 lookup so far was a first read" in notes

            shot = tmp_path / "dashboard.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("STRATA_UPDATE_SCREENSHOT"):  # refresh the one in docs/
                shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")

            assert not problems, problems
            assert not outside, f"the page fetched from elsewhere: {outside}"
        finally:
            await browser.close()


async def shown_values(page: Any, expected: Mapping[str, int]) -> dict[str, int | None]:
    values: dict[str, str] = await page.evaluate(
        "keys => Object.fromEntries(keys.map(k => [k, document.getElementById(k).dataset.value]))",
        list(expected),
    )
    return {key: int(value) if value else None for key, value in values.items()}


# --- access ------------------------------------------------------------------------------


async def test_dashboard_data_is_for_admins_in_production(sqlite_url: str) -> None:
    settings = Settings(database_url=sqlite_url, env="production", log_level="WARNING")
    async with running_api(settings) as api:
        page = await api.client.get("/dashboard")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert "/static/dashboard/dashboard.js" in page.text

        anonymous = await api.client.get("/dashboard/data")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = await api.client.get("/dashboard/data", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        basic = await api.client.get("/dashboard/data", headers={"Authorization": "Basic eA=="})
        assert basic.status_code == 401

        user = await api.client.get(
            "/dashboard/data", headers={"Authorization": f"Bearer {api.user_token}"}
        )
        assert user.status_code == 403

        admin = await api.client.get(
            "/dashboard/data", headers={"Authorization": f"Bearer {api.admin_token}"}
        )
        assert admin.status_code == 200
        assert admin.headers["cache-control"] == "no-store"
        assert admin.json()["env"] == "production"


async def test_dashboard_data_is_open_in_dev_and_agrees_with_metrics(sqlite_url: str) -> None:
    async with running_api(conftest.test_settings(sqlite_url)) as api:
        for _ in range(3):
            await api.data(BOOKS)
        await api.data('mutation { invalidateCache(tags: ["Book"]) }', token=api.admin_token)
        answer = await api.client.get("/dashboard/data")
        assert answer.status_code == 200
        body: dict[str, Any] = answer.json()
        expected = headline((await api.client.get("/metrics")).text)
        assert body["requests"]["total"] == expected["requests-total"] == 4
        assert body["tiers"]["response"]["hits"] == expected["response-hits"] == 2
        assert body["tiers"]["response"]["ratio"] == pytest.approx(2 / 3)
        assert body["tiers"]["l1"]["hits"] == expected["l1-hits"]
        assert body["sql_statements"] == expected["sql-total"]
        assert body["cache"]["l1_entries"] == expected["l1-entries"] > 0
        assert body["latency"]["p50"] is not None
        assert 0 < body["latency"]["p50"] <= body["latency"]["p95"] <= body["latency"]["p99"]
        assert body["hot_keys"], body
        assert body["hot_tags"] == [{"tag": "Book", "invalidations": 1}]
        assert body["recent_invalidations"][0]["source"] == "admin"
        assert body["recent_invalidations"][0]["tags"] == ["Book"]


def test_quantile_follows_histogram_quantile() -> None:
    buckets = [(0.1, 0.0), (0.2, 10.0), (0.5, 20.0), (float("inf"), 20.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.2)
    assert quantile(0.75, buckets) == pytest.approx(0.35)
    assert quantile(0.25, buckets) == pytest.approx(0.15)
    assert quantile(0.99, [(0.1, 1.0), (float("inf"), 5.0)]) == pytest.approx(0.1)
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.5, []) is None
