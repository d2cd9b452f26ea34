"""Writes of SPEC section 2: every mutation, its validation and who may run it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import SMALL_PLAN, Api

CREATE_AUTHOR = "mutation ($input: AuthorInput!) { createAuthor(input: $input) { id name bio } }"
UPDATE_AUTHOR = """mutation ($id: ID!, $input: AuthorPatch!) {
  updateAuthor(id: $id, input: $input) { id name bio } }"""
CREATE_BOOK = """mutation ($input: BookInput!) {
  createBook(input: $input) { id title isbn genre publishedYear price author { id } } }"""
UPDATE_BOOK = """mutation ($id: ID!, $input: BookPatch!) {
  updateBook(id: $id, input: $input) { id title isbn author { id } } }"""
ADD_REVIEW = """mutation ($input: ReviewInput!) {
  addReview(input: $input) { id rating body book { id } reviewer { name } } }"""


def book_input(**overrides: Any) -> dict[str, Any]:
    values = {
        "title": "A New Book",
        "isbn": "979-0000000001",
        "genre": "poetry",
        "publishedYear": 2024,
        "price": 12.5,
        "authorId": "1",
    }
    return values | overrides


async def test_author_lifecycle(api: Api) -> None:
    created = (
        await api.data(CREATE_AUTHOR, {"input": {"name": " Ada ", "bio": "b"}}, api.admin_token)
    )["createAuthor"]
    assert created["name"] == "Ada"
    author_id = created["id"]
    renamed = await api.data(
        UPDATE_AUTHOR, {"id": author_id, "input": {"name": "Ada L."}}, api.admin_token
    )
    assert renamed["updateAuthor"] == {"id": author_id, "name": "Ada L.", "bio": "b"}
    cleared = await api.data(
        UPDATE_AUTHOR, {"id": author_id, "input": {"bio": None}}, api.admin_token
    )
    assert cleared["updateAuthor"]["bio"] is None
    deleted = await api.data(
        "mutation ($id: ID!) { deleteAuthor(id: $id) }", {"id": author_id}, api.admin_token
    )
    assert deleted == {"deleteAuthor": True}
    assert (await api.data("query ($id: ID!) { author(id: $id) { id } }", {"id": author_id})) == {
        "author": None
    }


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"input": {"name": "   "}}, "BAD_USER_INPUT"),
        ({"input": {"name": "x" * 201}}, "BAD_USER_INPUT"),
    ],
)
async def test_create_author_validation(api: Api, variables: dict[str, Any], code: str) -> None:
    assert await api.error_codes(CREATE_AUTHOR, variables, api.admin_token) == [code]


async def test_author_and_book_writes_need_an_admin(api: Api) -> None:
    variables = {"input": {"name": "Nobody"}}
    assert await api.error_codes(CREATE_AUTHOR, variables) == ["UNAUTHENTICATED"]
    assert await api.error_codes(CREATE_AUTHOR, variables, api.user_token) == ["FORBIDDEN"]
    book = {"input": book_input()}
    assert await api.error_codes(CREATE_BOOK, book, api.user_token) == ["FORBIDDEN"]
    assert await api.error_codes('mutation { deleteBook(id: "1") }', None, api.user_token) == [
        "FORBIDDEN"
    ]
    assert (await api.data('{ book(id: "1") { id } }'))["book"] == {"id": "1"}


async def test_update_author_errors(api: Api) -> None:
    missing = {"id": "99999", "input": {"name": "x"}}
    assert await api.error_codes(UPDATE_AUTHOR, missing, api.admin_token) == ["NOT_FOUND"]
    null_name = {"id": "1", "input": {"name": None}}
    assert await api.error_codes(UPDATE_AUTHOR, null_name, api.admin_token) == ["BAD_USER_INPUT"]


async def test_delete_author_refuses_while_they_have_books(api: Api) -> None:
    codes = await api.error_codes('mutation { deleteAuthor(id: "1") }', None, api.admin_token)
    assert codes == ["BAD_USER_INPUT"]
    assert (await api.data('{ author(id: "1") { bookCount } }'))["author"]["bookCount"] == 4


async def test_create_book_shows_in_lists_and_counts(api: Api) -> None:
    book = (await api.data(CREATE_BOOK, {"input": book_input()}, api.admin_token))["createBook"]
    assert book["author"] == {"id": "1"}
    data = await api.data(
        """{ author(id: "1") { bookCount books(first: 100) { edges { node { id } } } }
             books(genre: "poetry", first: 100) { totalCount edges { node { id } } } }"""
    )
    assert data["author"]["bookCount"] == SMALL_PLAN.books_per_author + 1
    assert book["id"] in [e["node"]["id"] for e in data["author"]["books"]["edges"]]
    assert book["id"] in [e["node"]["id"] for e in data["books"]["edges"]]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"title": ""}, "BAD_USER_INPUT"),
        ({"isbn": "9780000000019"}, "BAD_USER_INPUT"),  # the seeded first book's isbn
        ({"price": -1.0}, "BAD_USER_INPUT"),
        ({"publishedYear": 0}, "BAD_USER_INPUT"),
        ({"authorId": "99999"}, "NOT_FOUND"),
        ({"authorId": "not-an-id"}, "NOT_FOUND"),
    ],
)
async def test_create_book_validation(api: Api, overrides: dict[str, Any], code: str) -> None:
    seeded = await api.data('{ book(id: "1") { isbn } }')
    assert seeded["book"]["isbn"] == "9780000000019"
    assert await api.error_codes(
        CREATE_BOOK, {"input": book_input(**overrides)}, api.admin_token
    ) == [code]


async def test_update_book_moves_it_between_authors(api: Api) -> None:
    moved = await api.data(UPDATE_BOOK, {"id": "1", "input": {"authorId": "2"}}, api.admin_token)
    assert moved["updateBook"]["author"] == {"id": "2"}
    data = await api.data(
        """{ a: author(id: "1") { bookCount } b: author(id: "2") { bookCount }
             books(authorId: "2", first: 100) { edges { node { id } } } }"""
    )
    assert data["a"]["bookCount"] == SMALL_PLAN.books_per_author - 1
    assert data["b"]["bookCount"] == SMALL_PLAN.books_per_author + 1
    assert "1" in [e["node"]["id"] for e in data["books"]["edges"]]


async def test_update_book_errors(api: Api) -> None:
    taken = (await api.data('{ book(id: "2") { isbn } }'))["book"]["isbn"]
    dup = {"id": "1", "input": {"isbn": taken}}
    assert await api.error_codes(UPDATE_BOOK, dup, api.admin_token) == ["BAD_USER_INPUT"]
    same = {"id": "1", "input": {"isbn": "9780000000019", "title": "Kept"}}
    assert (await api.data(UPDATE_BOOK, same, api.admin_token))["updateBook"]["title"] == "Kept"
    gone = {"id": "99999", "input": {"title": "x"}}
    assert await api.error_codes(UPDATE_BOOK, gone, api.admin_token) == ["NOT_FOUND"]


async def test_delete_book_deletes_its_reviews(api: Api) -> None:
    before = await api.data('{ book(id: "2") { reviews { edges { node { id } } } } }')
    review_ids = [e["node"]["id"] for e in before["book"]["reviews"]["edges"]]
    assert review_ids
    assert await api.data('mutation { deleteBook(id: "2") }', None, api.admin_token) == {
        "deleteBook": True
    }
    assert (await api.data('{ book(id: "2") { id } }'))["book"] is None
    for review_id in review_ids:
        data = await api.data("query ($id: ID!) { review(id: $id) { id } }", {"id": review_id})
        assert data["review"] is None
    assert await api.error_codes('mutation { deleteBook(id: "2") }', None, api.admin_token) == [
        "NOT_FOUND"
    ]


async def test_add_review_as_the_signed_in_user(api: Api) -> None:
    variables = {"input": {"bookId": "3", "rating": 5, "body": "Loved it"}}
    assert await api.error_codes(ADD_REVIEW, variables) == ["UNAUTHENTICATED"]
    review = (await api.data(ADD_REVIEW, variables, api.user_token))["addReview"]
    assert review["reviewer"] == {"name": "alice"}
    assert review["book"] == {"id": "3"}
    book = (await api.data('{ book(id: "3") { reviewCount } }'))["book"]
    assert book["reviewCount"] == SMALL_PLAN.reviews_per_book + 1
    me = await api.data("{ me { reviews { edges { node { id } } } } }", token=api.user_token)
    assert [e["node"]["id"] for e in me["me"]["reviews"]["edges"]] == [review["id"]]


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"bookId": "3", "rating": 0, "body": "x"}, "BAD_USER_INPUT"),
        ({"bookId": "3", "rating": 6, "body": "x"}, "BAD_USER_INPUT"),
        ({"bookId": "3", "rating": 3, "body": "  "}, "BAD_USER_INPUT"),
        ({"bookId": "99999", "rating": 3, "body": "x"}, "NOT_FOUND"),
    ],
)
async def test_add_review_validation(api: Api, values: dict[str, Any], code: str) -> None:
    assert await api.error_codes(ADD_REVIEW, {"input": values}, api.user_token) == [code]


async def test_delete_review_own_only_unless_admin(api: Api) -> None:
    variables = {"input": {"bookId": "4", "rating": 2, "body": "meh"}}
    first = (await api.data(ADD_REVIEW, variables, api.user_token))["addReview"]["id"]
    second = (await api.data(ADD_REVIEW, variables, api.user_token))["addReview"]["id"]
    delete = "mutation ($id: ID!) { deleteReview(id: $id) }"
    assert await api.error_codes(delete, {"id": first}) == ["UNAUTHENTICATED"]
    assert await api.error_codes(delete, {"id": first}, api.other_user_token) == ["FORBIDDEN"]
    assert await api.data(delete, {"id": first}, api.user_token) == {"deleteReview": True}
    assert await api.data(delete, {"id": second}, api.admin_token) == {"deleteReview": True}
    assert await api.error_codes(delete, {"id": first}, api.user_token) == ["NOT_FOUND"]


async def test_invalidate_cache_is_for_admins(api: Api) -> None:
    mutation = 'mutation { invalidateCache(tags: ["Book:1"]) }'
    assert await api.error_codes(mutation) == ["UNAUTHENTICATED"]
    assert await api.error_codes(mutation, None, api.user_token) == ["FORBIDDEN"]
    # The count of distinct tags bumped: a repeated tag is bumped once.
    assert await api.data(mutation, None, api.admin_token) == {"invalidateCache": 1}
    several = 'mutation { invalidateCache(tags: ["Book:1", "Author:2", "Book:1"]) }'
    assert await api.data(several, None, api.admin_token) == {"invalidateCache": 2}
