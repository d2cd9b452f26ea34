"""The client example (examples/web: Apollo Client, persisted queries over GET) in Debian's
chromium, from a second origin, against a real `strata serve` with CORS for that origin.

The example is built with npm (`npm ci` once per lock file, kept in
examples/web/node_modules, ignored by git; `npm run build` into a temporary folder); its
page is served by `python -m http.server` on another 127.0.0.1 port. Without npm or
chromium the test skips and says why; under STRATA_TEST_STRICT=1 it fails instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.api import prepare_database
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.redis_server import free_port
from tests.support.servers import Server, running, server_env
from tests.support.strict import require_program

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "web"
INSTALL_STAMP = EXAMPLE / "node_modules" / ".strata-lock-sha256"
RESPONSE_HITS = re.compile(r'^strata_response_cache_total\{result="hit"\} (\S+)$', re.M)
READY = "document.body.dataset.ready === 'true'"


def _npm(*args: str, timeout: float) -> None:
    npm = shutil.which("npm")
    assert npm is not None
    result = subprocess.run(
        [npm, *args], cwd=EXAMPLE, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"npm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def build_example(out: Path) -> Path:
    """`npm ci` when the lock file changed since the last install, then `npm run build`."""
    lock = hashlib.sha256((EXAMPLE / "package-lock.json").read_bytes()).hexdigest()
    if not INSTALL_STAMP.exists() or INSTALL_STAMP.read_text() != lock:
        _npm("ci", "--no-audit", "--no-fund", timeout=300)
        INSTALL_STAMP.write_text(lock)
    _npm("run", "build", "--", "--outDir", str(out), "--emptyOutDir", timeout=120)
    assert (out / "index.html").exists()
    return out


@contextlib.contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """The folder on http://127.0.0.1:<free port> (its own origin), by the standard library."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{origin}/index.html", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "python -m http.server did not start"
            time.sleep(0.1)
        yield origin
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def built_example(tmp_path: Path) -> Path:
    require_program(str(CHROMIUM), "run `apt-get install chromium` as root")
    require_program("npm", "install Node.js 20+ with npm (https://nodejs.org)")
    return build_example(tmp_path / "dist")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def _response_hits(server: Server) -> float:
    found = RESPONSE_HITS.search((await server.client.get("/metrics")).text)
    return float(found.group(1)) if found else 0.0


async def _texts(page: Any, selector: str) -> list[str]:
    texts: list[str] = await page.locator(selector).all_inner_texts()
    return texts


async def test_example_page_lists_shows_and_adds_reviews_from_another_origin(
    built_example: Path,
    browser: Any,
    sqlite_url: str,
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    _admin, reader, _other = await prepare_database(sqlite_url)
    with static_site(built_example) as page_origin, static_site(built_example) as other_origin:
        env = server_env(sqlite_url, redis_url, key_prefix)
        env["STRATA_CORS_ORIGINS"] = page_origin
        server = Server("frontend", env, tmp_path)
        async with running([server]):
            api = f"http://127.0.0.1:{server.port}/graphql"
            context = await browser.new_context()
            page = await context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            exchanges: list[tuple[str, str, int]] = []
            page.on(
                "response",
                lambda r: (
                    exchanges.append((r.request.method, r.url, r.status))
                    if r.url.startswith(api)
                    else None
                ),
            )

            # -- the list, then a book with its reviews --------------------------------
            await page.goto(f"{page_origin}/index.html?api={quote(api)}&token={reader}")
            await page.wait_for_function(READY, timeout=20_000)
            assert await page.locator("#error").is_hidden(), await page.inner_text("#error")
            assert await page.inner_text("#viewer") == "signed in as alice"
            books = page.locator("#books li[data-book-id]")
            assert await books.count() == 10
            first = books.first
            book_id = await first.get_attribute("data-book-id")
            title = await first.locator("a").inner_text()
            await first.locator("a").click()
            await page.wait_for_function(
                f"{READY} && document.getElementById('book').dataset.bookId === '{book_id}'"
            )
            assert await page.inner_text("#book-title") == title
            before = await _texts(page, "#reviews li")
            assert before, "the seeded book has reviews"
            assert int(await page.inner_text("#review-count")) == len(before)
            gets = [url for method, url, _status in exchanges if method == "GET"]
            assert gets, exchanges
            assert all("persistedQuery" in url for url in gets)  # APQ over GET

            # -- repeated views: 304s or response-cache hits, no SQL -------------------
            sql_before, hits_before = await server.sql_statements(), await _response_hits(server)
            seen = len(exchanges)
            for _ in range(2):
                await page.reload()
                await page.wait_for_function(READY, timeout=20_000)
            repeated = [e for e in exchanges[seen:] if e[0] == "GET"]
            not_modified = sum(1 for _m, _u, status in repeated if status == 304)
            hits = await _response_hits(server) - hits_before
            assert len(repeated) >= 6, repeated  # 3 queries per view
            assert await server.sql_statements() == sql_before, "a repeated view ran SQL"
            assert hits + not_modified >= len(repeated), (hits, not_modified, repeated)

            # -- add a review: the book and the list show it at once -------------------
            body = f"Read it in one sitting ({uuid.uuid4().hex[:8]})"
            await page.fill("#body", body)
            await page.select_option("#rating", "4")
            posts_before = sum(1 for e in exchanges if e[0] == "POST")
            await page.click("#submit-review")
            await page.wait_for_function(
                f"{READY} && document.getElementById('reviews').innerText.includes({body!r})",
                timeout=20_000,
            )
            assert sum(1 for e in exchanges if e[0] == "POST") > posts_before  # the mutation
            after = await _texts(page, "#reviews li")
            assert len(after) == len(before) + 1
            assert int(await page.inner_text("#review-count")) == len(before) + 1
            listed = page.locator(f"#books li[data-book-id='{book_id}'] .count")
            assert f"{len(before) + 1} reviews" in await listed.inner_text()
            # A new page in the same browser (same HTTP cache) agrees: nothing stale.
            fresh = await context.new_page()
            await fresh.goto(f"{page_origin}/index.html?api={quote(api)}#/book/{book_id}")
            await fresh.wait_for_function(READY, timeout=20_000)
            assert body in await fresh.inner_text("#reviews")
            listed = fresh.locator(f"#books li[data-book-id='{book_id}'] .count")
            assert f"{len(before) + 1} reviews" in await listed.inner_text()
            assert problems == []

            # -- an origin not in STRATA_CORS_ORIGINS: the browser refuses -------------
            refused = await context.new_page()
            await refused.goto(f"{other_origin}/index.html?api={quote(api)}")
            await refused.wait_for_selector("#error:not([hidden])", timeout=20_000)
            assert "fetch" in (await refused.inner_text("#error")).lower()
            assert await refused.locator("#books li[data-book-id]").count() == 0
            outcome = await refused.evaluate(
                """async (api) => {
                    try { await fetch(api + "?query=%7B__typename%7D"); return "answered"; }
                    catch (error) { return "refused: " + error.name; }
                }""",
                api,
            )
            assert outcome == "refused: TypeError"
            await context.close()
