"""The yardstick `strata bench` measures field-cached execution against
(benchmarks/yardstick.py): the same types as schema.graphql, and the same answers as
Strata to the bench's pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from graphql import build_schema, print_type

from benchmarks.yardstick import YardstickApp, load, schema
from graph.cli.bench import plan
from tests.support.api import Api

ROOT = Path(__file__).resolve().parents[2]
SCALARS = {"String", "Boolean", "Int", "Float", "ID"}


def test_its_types_are_those_of_schema_graphql() -> None:
    ours = build_schema((ROOT / "schema.graphql").read_text())
    yardstick = build_schema(schema().as_str())
    names = [name for name in yardstick.type_map if not name.startswith("__")]
    assert {"Query", "Book", "Author", "Review", "User", "BookConnection"} <= set(names)
    for name in set(names) - SCALARS:
        assert print_type(yardstick.type_map[name]) == print_type(ours.type_map[name]), name


async def test_it_answers_the_bench_pages_as_strata_does(sqlite_api: Api, sqlite_url: str) -> None:
    requests = [
        *plan.only("list", plan.Catalogue(12, 48, 4), count=6, zipf=1.1, seed=3),
        *plan.only("detail", plan.Catalogue(12, 48, 4), count=6, zipf=1.1, seed=3),
        plan.Request("list", plan.LIST_PAGE, {"genre": None, "first": 7}),
    ]
    app = YardstickApp(await load(sqlite_url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://yardstick") as client:
        for request in requests:
            variables: dict[str, Any] = dict(request.variables)
            expected = await sqlite_api.data(request.query, variables)
            response = await client.post(
                "/graphql", json={"query": request.query, "variables": variables}
            )
            assert response.status_code == 200
            assert response.json() == {"data": expected}
            assert expected[next(iter(expected))]  # a page or a book, not null
