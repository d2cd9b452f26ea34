"""Parse trees remembered by document text, bounded in bytes (SPEC 14)."""

from __future__ import annotations

from graphql import specified_rules

from graph.api.documents import ENTRY_OVERHEAD, Documents
from graph.api.schema import build_schema
from graph.settings import Settings

SCHEMA = build_schema(Settings(env="dev"), observed=False)._schema


def test_small_documents_are_remembered_within_the_byte_bound() -> None:
    documents = Documents(max_bytes=64 * 1024, largest=4 * 1024)
    query = "{ books(first: 1) { totalCount } }"
    first = documents.parse(query, {})
    assert documents.parse(query, {}) is first
    for i in range(500):
        documents.parse(f"{{ books(first: {i + 1}) {{ totalCount }} }}", {})
        assert documents.bytes <= 64 * 1024
    assert 0 < len(documents) < 500
    assert documents.parse(query, {}) is not first  # evicted long ago, parsed again


def test_large_documents_are_parsed_each_time_and_never_kept() -> None:
    documents = Documents(max_bytes=64 * 1024, largest=4 * 1024)
    padded = "{ books(first: 1) { totalCount } }\n#" + "x" * 5000
    first = documents.parse(padded, {})
    assert documents.parse(padded, {}) is not first
    assert len(documents) == 0
    assert documents.bytes == 0
    assert documents.validate(SCHEMA, padded, first, specified_rules) == []


def test_validation_is_remembered_with_its_tree() -> None:
    documents = Documents()
    query = "{ books(first: 1) { nope } }"
    tree = documents.parse(query, {})
    errors = documents.validate(SCHEMA, query, tree, specified_rules)
    assert [e.message for e in errors] == ["Cannot query field 'nope' on type 'BookConnection'."]
    assert documents.validate(SCHEMA, query, tree, specified_rules) is errors
    assert documents.bytes >= ENTRY_OVERHEAD
