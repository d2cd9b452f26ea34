"""The API's keys, tags and cached values: one spelling each, injective, and lossless."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cache.strawberry import RequestCache, Scope
from graph.api import keys, values
from graph.api.lists import (
    Authors,
    Books,
    BooksOfAuthor,
    ListSource,
    ReviewsOfBook,
    ReviewsOfUser,
)
from graph.api.types import TOTAL_COUNT, Connection, User
from models import AuthorRecord, BookRecord, ReviewRecord, UserRecord
from models.catalogue import Page

genres = st.none() | st.text(max_size=6) | st.sampled_from(["None", "null", "@none", "", "7"])
pks = st.integers(min_value=1, max_value=2**62)
sources: st.SearchStrategy[ListSource] = st.one_of(
    st.builds(Books, genre=genres, author=st.none() | pks),
    st.just(Authors()),
    st.builds(BooksOfAuthor, pks),
    st.builds(ReviewsOfBook, pks),
    st.builds(ReviewsOfUser, pks),
)


@settings(max_examples=400, deadline=None)
@given(sources, sources)
def test_two_lists_share_a_key_only_when_they_are_the_same_list(
    a: ListSource, b: ListSource
) -> None:
    key_a = TOTAL_COUNT.key(_connection(a), {}, _request())
    key_b = TOTAL_COUNT.key(_connection(b), {}, _request())
    assert (key_a == key_b) == (a == b)
    assert (a.tags() == b.tags()) >= (a == b)


def test_the_reported_pair_has_two_keys() -> None:
    by_null, by_string = Books(genre=None, author=7), Books(genre="None", author=7)
    assert TOTAL_COUNT.key(_connection(by_null), {}, _request()) != TOTAL_COUNT.key(
        _connection(by_string), {}, _request()
    )
    assert by_null.tags() == ["Author:7:books"]
    assert by_string.tags() == ["Book:genre:None", "Author:7:books"]


def test_tags_read_as_the_spec_spells_them() -> None:
    # Operators copy ids from responses into tags: the ids appear as the API shows them.
    assert keys.entity(keys.BOOKS, 42) == "Book:42"
    assert keys.books_of_author(7) == "Author:7:books"
    assert keys.books_of_genre("science-fiction") == "Book:genre:science-fiction"
    assert keys.reviews_of_book(3) == "Book:3:reviews"
    assert keys.reviews_of_user(2) == "User:2:reviews"
    assert Books().tags() == ["Book"]
    assert Authors().tags() == ["Author"]


def test_a_genre_holding_separators_gets_a_tag_of_its_own() -> None:
    assert keys.books_of_genre("x:reviews") != "Book:x:reviews"
    assert keys.books_of_genre("a:b") != keys.books_of_genre("a%3Ab")


def test_only_a_users_reviews_are_private() -> None:
    kinds = (Books, Authors, BooksOfAuthor, ReviewsOfBook, ReviewsOfUser)
    assert [kind.scope for kind in kinds] == [Scope.PUBLIC] * 4 + [Scope.PRIVATE]
    assert TOTAL_COUNT.scope_of(_connection(ReviewsOfUser(1))) is Scope.PRIVATE


def test_a_private_count_is_keyed_by_its_viewer() -> None:
    connection = _connection(ReviewsOfUser(1))
    anonymous = TOTAL_COUNT.key(connection, {}, _request(None))
    assert anonymous != TOTAL_COUNT.key(connection, {}, _request("1"))
    assert anonymous != TOTAL_COUNT.key(connection, {}, _request("None"))
    assert "(viewer,1)" in TOTAL_COUNT.key(connection, {}, _request("1"))


@settings(max_examples=200, deadline=None)
@given(sources, st.lists(pks, max_size=5), st.booleans())
def test_a_cached_page_comes_back_as_it_went(
    source: ListSource, ids: list[int], more: bool
) -> None:
    connection = Connection.of(keys.BOOKS, _page(ids, more), source)
    again = Connection.from_value(connection.to_value())
    assert (again.node_kind, again.ids, again.has_next, again.source) == (
        keys.BOOKS,
        ids,
        more,
        source,
    )
    assert type(again.source) is type(source)


def test_records_come_back_as_they_went() -> None:
    written = datetime(2024, 5, 17, 8, 30, 1, 123456, tzinfo=UTC)
    for record in (
        AuthorRecord(1, "Ann", None),
        AuthorRecord(2, "Bo", "bio"),
        BookRecord(3, "T", "isbn", "None", 2001, 9.5, 1),
        BookRecord(4, "T", "isbn", "poetry", 2001, 10.0, 1),
        ReviewRecord(5, 4, "body", written, 3, 2),
        UserRecord(6, "u", True),
    ):
        value = values.encode(record)
        assert isinstance(value, list)
        assert values.decode(type(record), value) == record
    assert values.decode(BookRecord, [4, "T", "isbn", "poetry", 2001, 10, 1]).price == 10.0


def test_the_viewer_comes_back_as_it_went() -> None:
    user = User.from_record(UserRecord(6, "u", False))
    again = values.decode(User, values.encode(user))
    assert (again.id, again.name, again.pk) == ("6", "u", 6)


def _page(ids: list[int], more: bool) -> Page:
    return Page(ids=ids, has_next=more)


def _connection(source: ListSource) -> Connection[Any]:
    return Connection.of(keys.BOOKS, _page([], False), source)


def _request(viewer: str | None = None) -> RequestCache:
    return RequestCache(cache=None, viewer=viewer, default_ttl=1.0)  # type: ignore[arg-type]
