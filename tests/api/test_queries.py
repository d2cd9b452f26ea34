"""Reads of SPEC section 2: lookups, Relay connections, filters and the viewer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from models.seed import GENRES
from models.tables import REVIEWS
from tests.support.api import SMALL_PLAN, Api

BOOKS_TOTAL = SMALL_PLAN.authors * SMALL_PLAN.books_per_author


async def test_book_lookup_with_relations(api: Api) -> None:
    data = await api.data(
        """{ book(id: "5") { id title isbn genre publishedYear price
             author { id name bookCount } reviewCount averageRating } }"""
    )
    book = data["book"]
    assert book["id"] == "5"
    assert book["genre"] == GENRES[4]
    assert book["author"]["id"] == "2"
    assert book["author"]["bookCount"] == SMALL_PLAN.books_per_author
    assert book["reviewCount"] == SMALL_PLAN.reviews_per_book
    async with api.services.db.engine.connect() as conn:
        average = await conn.scalar(
            select(func.avg(REVIEWS.c.rating)).where(REVIEWS.c.book_id == 5)
        )
    assert average is not None
    assert book["averageRating"] == float(average)


async def test_unknown_and_malformed_ids_are_null(api: Api) -> None:
    for id_ in ("99999", "abc", "0", "-1", "1" * 40, "٣"):
        data = await api.data("query ($id: ID!) { book(id: $id) { id } }", {"id": id_})
        assert data["book"] is None, id_
    data = await api.data('{ author(id: "999") { id } review(id: "x") { id } }')
    assert data == {"author": None, "review": None}


async def _walk(api: Api, query: str, field: str, variables: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        data = await api.data(query, {**variables, "after": after})
        connection = data[field]
        ids += [edge["node"]["id"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            assert connection["totalCount"] == len(ids)
            return ids
        after = connection["pageInfo"]["endCursor"]
        assert after == connection["edges"][-1]["cursor"]


BOOK_PAGES = """
query ($first: Int, $after: String, $genre: String, $authorId: ID) {
  books(first: $first, after: $after, genre: $genre, authorId: $authorId) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id genre } }
  }
}
"""


async def test_books_connection_walks_every_book_once_in_order(api: Api) -> None:
    ids = await _walk(api, BOOK_PAGES, "books", {"first": 7})
    assert ids == [str(n) for n in range(1, BOOKS_TOTAL + 1)]


async def test_books_filtered_by_genre_and_author(api: Api) -> None:
    fantasy = await _walk(api, BOOK_PAGES, "books", {"first": 2, "genre": "fantasy"})
    assert fantasy == [str(n) for n in range(1, BOOKS_TOTAL + 1, len(GENRES))]
    by_author = await _walk(api, BOOK_PAGES, "books", {"first": 3, "authorId": "3"})
    assert by_author == ["9", "10", "11", "12"]
    both = await api.data(BOOK_PAGES, {"genre": "romance", "authorId": "1"})
    assert [e["node"]["id"] for e in both["books"]["edges"]] == ["4"]
    nobody = await api.data(BOOK_PAGES, {"authorId": "nope"})
    assert nobody["books"]["edges"] == []
    assert nobody["books"]["totalCount"] == 0


async def test_default_page_size_is_twenty(api: Api) -> None:
    data = await api.data("{ books { edges { node { id } } } authors { totalCount } }")
    assert len(data["books"]["edges"]) == 20
    assert data["authors"]["totalCount"] == SMALL_PLAN.authors


async def test_nested_connections_page_with_cursors(api: Api) -> None:
    query = """query ($after: String) { author(id: "4") {
        books(first: 3, after: $after) { totalCount pageInfo { hasNextPage endCursor }
          edges { cursor node { id reviews(first: 2) {
            totalCount edges { node { id } } } } } } } }"""
    first = (await api.data(query))["author"]["books"]
    assert [e["node"]["id"] for e in first["edges"]] == ["13", "14", "15"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["edges"][0]["node"]["reviews"]["totalCount"] == SMALL_PLAN.reviews_per_book
    assert len(first["edges"][0]["node"]["reviews"]["edges"]) == 2
    second = (await api.data(query, {"after": first["pageInfo"]["endCursor"]}))["author"]["books"]
    assert [e["node"]["id"] for e in second["edges"]] == ["16"]
    assert second["pageInfo"] == {"hasNextPage": False, "endCursor": second["edges"][0]["cursor"]}


async def test_review_lookup_reaches_book_and_reviewer(api: Api) -> None:
    data = await api.data(
        '{ review(id: "7") { id rating body createdAt book { id } reviewer { id name } } }'
    )
    review = data["review"]
    assert review["book"]["id"] == "3"
    assert 1 <= review["rating"] <= 5
    assert review["createdAt"].endswith("+00:00")
    assert review["reviewer"]["name"].startswith("reader")


async def test_me_is_null_when_anonymous_and_the_viewer_when_signed_in(api: Api) -> None:
    assert (await api.data("{ me { id } }"))["me"] is None
    me = (await api.data("{ me { name reviews { totalCount } } }", token=api.user_token))["me"]
    assert me == {"name": "alice", "reviews": {"totalCount": 0}}


async def test_user_reviews_list_their_reviews(api: Api) -> None:
    query = """{ review(id: "1") { reviewer { id reviews(first: 100) {
        totalCount edges { node { id reviewer { id } } } } } } }"""
    reviewer = (await api.data(query))["review"]["reviewer"]
    reviews = reviewer["reviews"]
    assert reviews["totalCount"] == len(reviews["edges"]) >= 1
    assert {e["node"]["reviewer"]["id"] for e in reviews["edges"]} == {reviewer["id"]}


async def test_page_size_and_cursor_are_checked(api: Api) -> None:
    for first in (0, 101, -5):
        codes = await api.error_codes(BOOK_PAGES, {"first": first})
        assert codes == ["BAD_USER_INPUT"], first
    authors = await api.data("{ authors(first: 1) { pageInfo { endCursor } } }")
    foreign = authors["authors"]["pageInfo"]["endCursor"]
    for cursor in (foreign, "garbage!", "Qm9vazp4"):
        assert await api.error_codes(BOOK_PAGES, {"after": cursor}) == ["BAD_USER_INPUT"]
