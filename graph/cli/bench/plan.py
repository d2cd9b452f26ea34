"""What the benchmark sends: the page queries, the mix, and a seeded Zipf choice of ids.

Everything here is pure and deterministic for a seed, so a run can be replayed exactly and
the generator can be unit-tested without a server.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from models.seed import GENRES

KINDS = ("list", "detail", "author", "me", "mutation")
DEFAULT_MIX = "list=40,detail=35,author=15,me=9,mutation=1"
CURVE_FIRSTS = (10, 20, 50, 100)
LIST_FIRST = 20

LIST_PAGE = (
    "query ListPage($genre: String, $first: Int!) { books(first: $first, genre: $genre) "
    "{ edges { node { title author { name } reviewCount averageRating } } } }"
)
DETAIL_PAGE = (
    "query DetailPage($id: ID!) { book(id: $id) { title author { name bookCount } "
    "reviews(first: 5) { edges { node { rating body reviewer { name } } } } } }"
)
AUTHOR_PAGE = (
    "query AuthorPage($id: ID!) { author(id: $id) { name bio bookCount "
    "books(first: 10) { totalCount edges { node { title averageRating } } } } }"
)
ME_PAGE = "query MePage { me { name reviews(first: 5) { totalCount edges { node { rating } } } } }"
ADD_REVIEW = "mutation AddReview($input: ReviewInput!) { addReview(input: $input) { id rating } }"
UPDATE_BOOK = (
    "mutation UpdateBook($id: ID!, $input: BookPatch!) "
    "{ updateBook(id: $id, input: $input) { id price } }"
)

ADMIN = -1
"""The `viewer` of a request sent with the admin token."""


def parse_mix(text: str) -> dict[str, float]:
    """`list=40,detail=35,...` into weights; unknown kinds or a zero total are errors."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in KINDS:
            raise ValueError(f"bad mix entry {part!r}: expected KIND=WEIGHT, KIND one of {KINDS}")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"bad weight in mix entry {part!r}") from None
        if weight < 0:
            raise ValueError(f"negative weight in mix entry {part!r}")
        weights[name] = weights.get(name, 0.0) + weight
    if sum(weights.values()) <= 0:
        raise ValueError("the mix needs at least one positive weight")
    return {kind: weight for kind, weight in weights.items() if weight > 0}


class Zipf:
    """Ranks 1..n drawn with probability proportional to 1 / rank**s, mapped through a
    seeded permutation so the hot ids are spread over the catalogue (not all by author 1)."""

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        if n < 1:
            raise ValueError("Zipf needs at least one item")
        if s < 0:
            raise ValueError("the Zipf exponent must be >= 0")
        self._cumulative = list(itertools.accumulate(1.0 / rank**s for rank in range(1, n + 1)))
        self._ids = list(range(1, n + 1))
        rng.shuffle(self._ids)
        self._rng = rng

    def rank(self) -> int:
        """A 0-based rank (0 is the most popular)."""
        point = self._rng.random() * self._cumulative[-1]
        return min(bisect.bisect_left(self._cumulative, point), len(self._cumulative) - 1)

    def id(self) -> int:
        return self._ids[self.rank()]


@dataclass(frozen=True, slots=True)
class Request:
    """One GraphQL request: `viewer` is None (anonymous), a user index, or ADMIN."""

    kind: str
    query: str
    variables: Mapping[str, Any]
    viewer: int | None = None

    def body(self) -> bytes:
        payload: dict[str, Any] = {"query": self.query}
        if self.variables:
            payload["variables"] = dict(self.variables)
        return orjson.dumps(payload)


def kind_counts(mix: Mapping[str, float], total: int) -> dict[str, int]:
    """Exact counts per kind summing to `total` (largest remainder), in KINDS order."""
    weight_sum = sum(mix.values())
    shares = {kind: total * mix.get(kind, 0.0) / weight_sum for kind in KINDS}
    counts = {kind: int(share) for kind, share in shares.items()}
    left = total - sum(counts.values())
    by_remainder = sorted(KINDS, key=lambda kind: (counts[kind] - shares[kind], KINDS.index(kind)))
    for kind in by_remainder[:left]:
        counts[kind] += 1
    return {kind: count for kind, count in counts.items() if count}


def list_page(genre: str, first: int = LIST_FIRST) -> Request:
    return Request("list", LIST_PAGE, {"genre": genre, "first": first})


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Sizes of the seeded data the ids are drawn from."""

    authors: int
    books: int
    viewers: int  # signed-in users that have a token


def generate(
    mix: Mapping[str, float],
    catalogue: Catalogue,
    *,
    count: int,
    zipf: float,
    seed: int,
) -> list[Request]:
    """`count` requests in the mix's proportions, in a seeded random order."""
    rng = random.Random(seed)
    books = Zipf(max(catalogue.books, 1), zipf, random.Random(rng.random()))
    authors = Zipf(max(catalogue.authors, 1), zipf, random.Random(rng.random()))
    viewers = max(catalogue.viewers, 1)
    kinds = [kind for kind, n in kind_counts(mix, count).items() for _ in range(n)]
    rng.shuffle(kinds)
    requests: list[Request] = []
    for n, kind in enumerate(kinds):
        if kind == "list":
            requests.append(list_page(rng.choice(GENRES)))
        elif kind == "detail":
            requests.append(Request(kind, DETAIL_PAGE, {"id": str(books.id())}))
        elif kind == "author":
            requests.append(Request(kind, AUTHOR_PAGE, {"id": str(authors.id())}))
        elif kind == "me":
            requests.append(Request(kind, ME_PAGE, {}, viewer=rng.randrange(viewers)))
        elif rng.random() < 0.5:
            review = {"bookId": str(books.id()), "rating": rng.randint(1, 5), "body": f"bench {n}"}
            requests.append(
                Request(kind, ADD_REVIEW, {"input": review}, viewer=rng.randrange(viewers))
            )
        else:
            patch = {"price": round(rng.uniform(4.99, 59.99), 2)}
            requests.append(
                Request(kind, UPDATE_BOOK, {"id": str(books.id()), "input": patch}, viewer=ADMIN)
            )
    return requests


def only(kind: str, catalogue: Catalogue, *, count: int, zipf: float, seed: int) -> list[Request]:
    """Requests of a single kind (the per-page runs)."""
    return generate({kind: 1.0}, catalogue, count=count, zipf=zipf, seed=seed)


def list_pages(first: int, count: int, seed: int) -> list[Request]:
    """The list page at a given `first` over the genres (the cost curve)."""
    rng = random.Random(seed)
    return [list_page(rng.choice(GENRES), first) for _ in range(count)]


def share(requests: Sequence[Request], kind: str) -> float:
    return sum(1 for request in requests if request.kind == kind) / max(len(requests), 1)
