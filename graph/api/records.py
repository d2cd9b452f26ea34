"""Records to and from the plain lists the cache stores (msgpack has no dataclasses)."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from models import AuthorRecord, BookRecord, ReviewRecord, UserRecord

RecordT = TypeVar("RecordT", AuthorRecord, BookRecord, ReviewRecord, UserRecord)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

_NAMES: dict[type[Any], tuple[str, ...]] = {
    record: tuple(f.name for f in fields(record))
    for record in (AuthorRecord, BookRecord, ReviewRecord, UserRecord)
}


def _plain(value: Any) -> Any:
    # Microseconds since the epoch: exact, and msgpack stores it as an int.
    if isinstance(value, datetime):
        return (value - EPOCH) // MICROSECOND
    return value


def to_value(record: Any) -> list[Any]:
    return [_plain(getattr(record, name)) for name in _NAMES[type(record)]]


def from_value(record: type[RecordT], value: list[Any]) -> RecordT:
    if record is ReviewRecord:
        value = list(value)
        value[3] = EPOCH + value[3] * MICROSECOND
    return record(*value)
