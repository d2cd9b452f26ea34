"""Parsing and validation remembered per document text, bounded in bytes (SPEC 14).

Strawberry's ParserCache and ValidationCache are `functools.lru_cache`s bounded in entries
only, keyed by the client's text and by parse trees whose locations keep that text: a
thousand comment-padded documents of a megabyte each stay in memory. Here a document is
remembered only when its text is small (a real client's documents are; a large one is
parsed again each time, which its size already costs), under a digest of its text, in a
store bounded in bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from graph.api.memo import document_key

DOCUMENTS_BYTES = 16 * 1024 * 1024
LARGEST_REMEMBERED = 64 * 1024  # bytes of text
# A parse tree, with its tokens and locations, takes several times its text.
TREE_BYTES_PER_TEXT_BYTE = 8
ENTRY_OVERHEAD = 1024


@dataclass
class _Known:
    document: DocumentNode
    size: int
    # Validation errors by the rules they were found with (the same every request).
    errors: dict[tuple[type[ASTValidationRule], ...], list[GraphQLError]]


class Documents:
    """Parse trees and their validation errors, by document text, bounded in bytes."""

    def __init__(self, max_bytes: int = DOCUMENTS_BYTES, largest: int = LARGEST_REMEMBERED):
        self.largest = largest
        self._known: LRUCache[bytes, _Known] = LRUCache(max_bytes, getsizeof=lambda k: k.size)

    def __len__(self) -> int:
        return len(self._known)

    @property
    def bytes(self) -> float:
        return self._known.currsize

    def parse(self, query: str, options: Mapping[str, Any]) -> DocumentNode:
        """`graphql.parse(query, **options)`, remembered (options are the schema's own)."""
        length = len(query.encode(errors="surrogatepass"))
        if length > self.largest:
            return parse(query, **options)
        key = document_key(query, None)
        known = self._known.get(key)
        if known is None:
            document = parse(query, **options)  # a syntax error is raised, not remembered
            size = length * TREE_BYTES_PER_TEXT_BYTE + ENTRY_OVERHEAD
            self._known[key] = known = _Known(document, size, {})
        return known.document

    def validate(
        self,
        schema: GraphQLSchema,
        query: str | None,
        document: DocumentNode,
        rules: Sequence[type[ASTValidationRule]],
    ) -> list[GraphQLError]:
        """Strawberry's validation of `document`, remembered with its parse tree."""
        known = None if query is None else self._known.get(document_key(query, None))
        if known is None or known.document is not document:
            return validate_document(schema, document, tuple(rules))
        ruleset = tuple(rules)
        errors = known.errors.get(ruleset)
        if errors is None:
            errors = known.errors[ruleset] = validate_document(schema, document, ruleset)
        return errors


class DocumentCache(SchemaExtension):
    """Strawberry's ParserCache and ValidationCache in one, over `Documents`."""

    def __init__(self, *, documents: Documents) -> None:
        super().__init__()
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            context.graphql_document = self.documents.parse(context.query, context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            context.pre_execution_errors = self.documents.validate(
                context.schema._schema,
                context.query,
                context.graphql_document,
                context.validation_rules,
            )
        yield
