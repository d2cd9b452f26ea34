"""Ids and cursors as clients see them.

An id is the row's primary key as a decimal string, so that an operator can copy it from a
response into a cache tag (`Book:42`). Clients treat it as opaque. A cursor is opaque for
real: the base64 of `<Type>:<id>`, checked on the way back in.
"""

from __future__ import annotations

import base64
import binascii

from graph.api.errors import bad_input

MAX_FIRST = 100
_MAX_ID_DIGITS = 18  # stays below 2**63, the widest primary key either database has


def api_id(pk: int) -> str:
    """The id clients see for a primary key (and the one cache keys and tags show)."""
    return str(pk)


def parse_id(value: str) -> int | None:
    """The primary key for an id, or None when the string cannot be one of ours."""
    if not value.isascii() or not value.isdigit() or len(value) > _MAX_ID_DIGITS:
        return None
    number = int(value)
    return number if number > 0 else None


def encode_cursor(kind: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The id a cursor points after; BAD_USER_INPUT if it is not one of this connection's."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise bad_input("after is not a valid cursor") from None
    prefix, _, raw_id = text.partition(":")
    row_id = parse_id(raw_id)
    if prefix != kind or row_id is None:
        raise bad_input(f"after is not a cursor of a {kind} connection")
    return row_id


DEFAULT_FIRST = 20


def check_first(first: int | None) -> int:
    """`first` as given, the default for an explicit null, else BAD_USER_INPUT."""
    if first is None:
        return DEFAULT_FIRST
    if not 1 <= first <= MAX_FIRST:
        raise bad_input(f"first must be between 1 and {MAX_FIRST}")
    return first
