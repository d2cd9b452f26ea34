"""Manual invalidation accepts the tags the app carries and refuses anything else."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graph.api import keys, lists, tags
from graph.api.tag_grammar import FORMS, is_valid
from graph.settings import Settings
from models import AuthorRecord, BookRecord, ReviewRecord
from models.tokens import digest
from tests.support.api import Api
from tests.support.servers import run_strata

NOW = datetime(2026, 1, 1, tzinfo=UTC)

VALID = [
    "*",
    "Author",
    "Book",
    "Review",
    "User",
    "Author:1",
    "Book:42",
    "Review:2502",
    "User:7",
    "Author:3:books",
    "Book:42:reviews",
    "User:7:reviews",
    "Book:genre:science-fiction",
    "Book:genre:a genre with spaces",
    f"Token:{digest('some-token')}",
]
INVALID = [
    "Bok:1",
    "book:1",
    "Book:01",
    "Book:0",
    "Book:-1",
    "Book:x",
    "Book:",
    "Book:1:books",
    "Author:1:reviews",
    "Book:genre:",
    "Book:genre:" + "g" * 51,
    "Token:abc",
    " Book:1",
    "Book:1 ",
    "**",
    "",
]


@pytest.mark.parametrize("tag", VALID)
def test_the_forms_the_app_uses_are_accepted(tag: str) -> None:
    assert is_valid(tag)


@pytest.mark.parametrize("tag", INVALID)
def test_anything_else_is_refused(tag: str) -> None:
    assert not is_valid(tag)


def test_every_tag_a_builder_makes_is_in_the_grammar() -> None:
    """The grammar and the builders in graph/api/tags.py stay in step."""
    author = AuthorRecord(id=3, name="A", bio=None)
    book = BookRecord(
        id=42, title="T", isbn="i", genre="poetry", published_year=2000, price=1.0, author_id=3
    )
    moved = BookRecord(
        id=42, title="T", isbn="i", genre="horror", published_year=2000, price=1.0, author_id=4
    )
    review = ReviewRecord(id=9, rating=5, body="b", created_at=NOW, book_id=42, reviewer_id=7)
    made = (
        tags.author_written(None, author)
        | tags.book_written(None, book)
        | tags.book_written(book, moved)
        | tags.review_written(review)
        | tags.book_deleted(book, [review])
        | set(lists.Books().tags())
        | set(lists.Authors().tags())
        | set(lists.Books(genre="poetry", author=3).tags())
        | set(lists.BooksOfAuthor(3).tags())
        | set(lists.ReviewsOfBook(42).tags())
        | set(lists.ReviewsOfUser(7).tags())
        | {keys.USERS}
    )
    assert made
    assert all(is_valid(tag) for tag in made), sorted(t for t in made if not is_valid(t))


async def test_invalidate_cache_refuses_a_typo_listing_the_forms(cached_api: Api) -> None:
    payload = (
        await cached_api.post(
            'mutation { invalidateCache(tags: ["Book:1", "Bok:1"]) }',
            token=cached_api.admin_token,
        )
    ).json()
    assert payload["data"] is None
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "'Bok:1'" in error["message"]
    assert "'Book:1'" not in error["message"]
    for form in ("Book:<id>", "Author:<id>:books", "Book:genre:<genre>", "*"):
        assert form in error["message"]
    bumped = await cached_api.data(
        'mutation { invalidateCache(tags: ["Book:1", "Book:genre:poetry", "*"]) }',
        token=cached_api.admin_token,
    )
    assert bumped == {"invalidateCache": 3}


async def _cli_invalidate(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": str(settings.redis_url),
        "STRATA_CACHE_SECRET": "test-secret",
        "STRATA_CACHE_PREFIX": settings.cache_prefix,
        "STRATA_LOG_LEVEL": "WARNING",
        "COLUMNS": "300",
    }
    return await run_strata(env, "cache", "invalidate", *args)


async def test_cli_refuses_a_typo_unless_raw(cached_settings: Settings, cached_api: Api) -> None:
    code, out, err = await _cli_invalidate(cached_settings, "--tag", "Bok:1")
    assert code != 0
    assert "Bok:1" in err
    assert "Book:<id>" in err
    assert "--raw" in err
    assert "invalidated" not in out
    code, out, err = await _cli_invalidate(cached_settings, "--raw", "--tag", "Bok:1")
    assert code == 0, err
    assert out.strip() == "invalidated 1 tag"
    code, out, err = await _cli_invalidate(cached_settings, "--tag", "Book:1", "--tag", "Book")
    assert code == 0, err
    assert out.strip() == "invalidated 2 tags"


def test_forms_are_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for form, _meaning in FORMS:
        assert f"`{form.replace('|', chr(92) + '|')}`" in readme, form  # `\|` in a table
