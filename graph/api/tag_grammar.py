"""The grammar of the cache tags the app carries (see the builders in graph/api/tags.py),
for invalidation by hand: `invalidateCache(tags:)` and `strata cache invalidate --tag`.

A tag that no cached value can carry (`Bok:1`, `Book:01`, `book:1`) is almost always a
typo; bumping it would report success and change nothing, so it is refused with the list
of valid forms. `strata cache invalidate --raw` bumps any tag, knowingly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from graph.api import keys
from graph.api.errors import bad_input

KINDS = (keys.AUTHORS, keys.BOOKS, keys.REVIEWS, keys.USERS)
_ID = r"[1-9][0-9]{0,17}"  # an id as the API shows it (graph/api/ids.py)
_KIND = "|".join(KINDS)
GENRE_MAX = 50  # the column's length (models/tables.py)

FORMS: tuple[tuple[str, str], ...] = (
    ("*", "everything cached"),
    ("Author | Book | Review | User", "the unfiltered lists of a kind (and `me`, for User)"),
    ("Author:<id> | Book:<id> | Review:<id> | User:<id>", "one entity, its id as the API shows it"),
    ("Author:<id>:books", "an author's books, bookCount, books(authorId:)"),
    ("Book:<id>:reviews", "a book's reviews, reviewCount, averageRating"),
    ("User:<id>:reviews", "a user's reviews"),
    ("Book:genre:<genre>", "books(genre:)"),
    ("Token:<sha256 hex>", "one bearer token's viewer"),
)

GRAMMAR = re.compile(
    "|".join(
        (
            r"\*",
            rf"(?:{_KIND})",
            rf"(?:{_KIND}):{_ID}",
            rf"Author:{_ID}:books",
            rf"Book:{_ID}:reviews",
            rf"User:{_ID}:reviews",
            rf"Book:genre:.{{1,{GENRE_MAX}}}",
            r"Token:[0-9a-f]{64}",
        )
    ),
    re.DOTALL,
)


def is_valid(tag: str) -> bool:
    return GRAMMAR.fullmatch(tag) is not None


def valid_forms() -> str:
    return "; ".join(form for form, _meaning in FORMS)


def check_manual_tags(candidates: Iterable[str]) -> None:
    """BAD_USER_INPUT naming the tags outside the grammar, with the valid forms."""
    unknown = [tag for tag in candidates if not is_valid(tag)]
    if unknown:
        shown = ", ".join(repr(tag) for tag in unknown[:5])
        raise bad_input(
            f"not a tag any cached value carries: {shown}. Valid forms: {valid_forms()} "
            "(e.g. Book:42, Book:genre:poetry). `strata cache invalidate --raw` bumps any tag."
        )
