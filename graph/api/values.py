"""Dataclasses to and from the plain values the cache stores: one codec for every record,
list and page the API caches.

msgpack has no dataclasses, and field names repeated in every entry would cost more than
the data, so a dataclass is the list of its fields in declaration order, each converted by
its annotated type: datetimes are microseconds since the epoch (exact, an int to msgpack),
enums their value, a field typed as a union of dataclasses ``[class name, *fields]``.
A converter is built once per type, from the annotations, so there are no positions to
keep in step by hand. A change of a cached class's fields must change the cache namespace
(graph/services.py derives it from the record shapes and its format constant).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")
Convert = Callable[[Any], Any]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def encode(value: Any) -> Any:
    """A dataclass instance as msgpack-able lists and scalars."""
    return _encoder(type(value))(value)


def decode(kind: type[T], value: Any) -> T:
    """The instance of `kind` that `encode` turned into `value`."""
    result: T = _decoder(kind)(value)
    return result


def _same(value: Any) -> Any:
    return value


def _fields(kind: type[Any]) -> list[tuple[str, Any]]:
    # The fields a constructor takes: a Strawberry type's resolvers are fields too, not data.
    hints = get_type_hints(kind)
    return [(field.name, hints[field.name]) for field in dataclasses.fields(kind) if field.init]


def _members(annotation: Any) -> tuple[Any, ...] | None:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return None


def _is_dataclass(annotation: Any) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def _make_encoder(annotation: Any) -> Convert:
    if isinstance(annotation, typing.NewType):
        return _encoder(annotation.__supertype__)
    if annotation is datetime:
        return lambda moment: (moment - EPOCH) // MICROSECOND
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return lambda member: member.value
    if _is_dataclass(annotation):
        converters = [(name, _encoder(hint)) for name, hint in _fields(annotation)]
        return lambda obj: [convert(getattr(obj, name)) for name, convert in converters]
    members = _members(annotation)
    if members is not None:
        return _union_encoder(members)
    if get_origin(annotation) in (list, tuple):
        item = _encoder(get_args(annotation)[0])
        return lambda items: [item(each) for each in items]
    return _same


def _union_encoder(members: tuple[Any, ...]) -> Convert:
    classes = [member for member in members if _is_dataclass(member)]
    others = [member for member in members if member is not type(None)]
    if len(classes) > 1:
        # Which class it was must survive the trip: the encoding leads with its name.
        def tagged(obj: Any) -> Any:
            return None if obj is None else [type(obj).__name__, *_encoder(type(obj))(obj)]

        return tagged
    assert len(others) == 1, f"a cached union must be one type or None: {members}"
    inner = _encoder(others[0])
    return lambda value: None if value is None else inner(value)


def _make_decoder(annotation: Any) -> Convert:
    if isinstance(annotation, typing.NewType):
        return _decoder(annotation.__supertype__)
    if annotation is datetime:
        return lambda micros: EPOCH + micros * MICROSECOND
    if annotation is float:
        return float  # msgpack keeps 2.0 a float, but a hand-built value may say 2
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation
    if _is_dataclass(annotation):
        kind: Any = annotation
        converters = [(name, _decoder(hint)) for name, hint in _fields(annotation)]
        return lambda value: kind(
            **{name: convert(item) for (name, convert), item in zip(converters, value, strict=True)}
        )
    members = _members(annotation)
    if members is not None:
        return _union_decoder(members)
    origin = get_origin(annotation)
    if origin in (list, tuple):
        item = _decoder(get_args(annotation)[0])
        return lambda items: origin(item(each) for each in items)
    return _same


def _union_decoder(members: tuple[Any, ...]) -> Convert:
    classes = {member.__name__: member for member in members if _is_dataclass(member)}
    others = [member for member in members if member is not type(None)]
    if len(classes) > 1:

        def tagged(value: Any) -> Any:
            if value is None:
                return None
            name, *fields = value
            return _decoder(classes[name])(fields)

        return tagged
    inner = _decoder(others[0])
    return lambda value: None if value is None else inner(value)


# Built once per annotation: the same few classes are converted on every cached read.
_encoder: Callable[[Any], Convert] = cache(_make_encoder)
_decoder: Callable[[Any], Convert] = cache(_make_decoder)
