"""GraphiQL works offline: the page served at /graphql loads every asset from /static."""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser

from graph.web.endpoint import GRAPHIQL_HTML
from tests.support.api import Api

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class AssetParser(HTMLParser):
    """The URLs of the page's scripts and stylesheets, with their integrity attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[tuple[str, str, str | None]] = []  # (tag, url, integrity)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        url = found.get("src") if tag == "script" else None
        if tag == "link" and found.get("rel") == "stylesheet":
            url = found.get("href")
        if url is not None:
            self.assets.append((tag, url, found.get("integrity")))


def assets_of(page: str) -> list[tuple[str, str, str | None]]:
    parser = AssetParser()
    parser.feed(page)
    parser.close()
    return parser.assets


async def get_page(api: Api) -> str:
    response = await api.client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def test_the_ide_is_our_vendored_page(sqlite_api: Api) -> None:
    page = await get_page(sqlite_api)
    assert page == GRAPHIQL_HTML
    assert "unpkg.com" not in page


async def test_every_asset_is_local_and_served(sqlite_api: Api) -> None:
    assets = assets_of(await get_page(sqlite_api))
    urls = [url for _, url, _ in assets]
    # React, ReactDOM, js-cookie, GraphiQL and the explorer plugin, scripts and styles.
    assert len(assets) == 7, urls
    for tag, url, integrity in assets:
        assert url.startswith("/static/graphiql/"), url
        response = await sqlite_api.client.get(url)
        assert response.status_code == 200, url
        expected_type = "text/javascript" if tag == "script" else "text/css"
        assert response.headers["content-type"].startswith(expected_type), url
        # The page keeps strawberry's SRI hashes: a browser refuses a file that differs.
        assert integrity is not None, url
        algorithm, _, digest = integrity.partition("-")
        assert algorithm == "sha384", url
        computed = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
        assert computed == digest, f"{url} does not match its integrity attribute"


async def test_static_files_outside_the_directory_are_refused(sqlite_api: Api) -> None:
    assert (await sqlite_api.client.get("/static/graphiql/nothing-here.js")).status_code == 404
    # graph/web/static sits beside graph/web/*.py: an encoded ../ must not reach the source.
    response = await sqlite_api.client.get("/static/%2e%2e/endpoint.py")
    assert response.status_code == 404
    assert b"GRAPHIQL_HTML" not in response.content
