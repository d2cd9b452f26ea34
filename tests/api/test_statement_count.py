"""The list page costs a constant number of SQL statements, whatever `first` is."""

from __future__ import annotations

from tests.support.api import Api
from tests.support.probes import LIST_QUERY as LIST_PAGE
from tests.support.readme import list_page
from tests.support.sql_counter import counting_statements


async def test_list_page_statements_do_not_grow_with_first(uncached_api: Api) -> None:
    counts = {}
    for first in (5, 40):
        with counting_statements(uncached_api.services.db) as statements:
            data = await uncached_api.data(LIST_PAGE, {"first": first})
        assert len(data["books"]["edges"]) == first
        counts[first] = len(statements)
    assert counts[5] == counts[40]
    assert counts[5] <= 4  # page ids, books, authors, review aggregates


async def test_nested_connections_are_batched(uncached_api: Api) -> None:
    query = """query ($first: Int!) { authors(first: $first) { edges { node { bookCount
        books(first: 2) { totalCount edges { node { title reviews(first: 2) {
          edges { node { reviewer { name } } } } } } } } } } }"""
    counts = {}
    for first in (3, 10):
        with counting_statements(uncached_api.services.db) as statements:
            data = await uncached_api.data(query, {"first": first})
        authors = data["authors"]["edges"]
        assert len(authors) == first
        assert all(len(a["node"]["books"]["edges"]) == 2 for a in authors)
        counts[first] = len(statements)
    # Per level: a page of ids, the rows, then counts, child pages and reviewers in batches
    # (bookCount and books.totalCount each count once: see graph/loaders.py, _unmemoized).
    assert counts[3] == counts[10] <= 9


async def test_the_readme_list_page_costs_what_the_readme_says(uncached_api: Api) -> None:
    """The README's own list page example and the count it quotes (cache off)."""
    document, quoted = list_page()
    assert "first: 20" in document
    for first in (5, 20, 40):
        with counting_statements(uncached_api.services.db) as statements:
            data = await uncached_api.data(document.replace("first: 20", f"first: {first}"))
        assert data["books"]["edges"]
        assert len(statements) == quoted, (first, statements)
