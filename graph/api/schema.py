"""The Strawberry schema, with query limits and parse/validation caches built once."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from functools import partial

import strawberry
from graphql import ASTValidationRule, GraphQLError, ValidationContext
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.types import ExecutionContext

from cache.strawberry.subtrees import Subtrees, subtree_executor
from graph.api.documents import DocumentCache, Documents
from graph.api.limits import Limits, PreExecutionLimits
from graph.api.mutations import Mutation
from graph.api.queries import Query
from graph.api.types import entity_at, entity_of
from graph.observability.operations import OperationObserver
from graph.settings import Settings


def _is_unexpected(error: GraphQLError) -> bool:
    # Errors we raise on purpose carry a code; anything else is a bug whose text stays in logs.
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


log = logging.getLogger("strata.graphql")


def tolerant(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """A limit rule that stays quiet on documents it cannot measure.

    Strawberry's depth and alias rules raise (KeyError, empty max()) on an unknown fragment
    or an empty selection set; the standard rules then report the real mistake instead of
    the raw exception text reaching the client.
    """

    class Tolerant(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:  # type: ignore[override]
            super().__init__(context)
            # Both limit rules do all their work, reporting included, when built.
            with contextlib.suppress(KeyError, ValueError, TypeError, AttributeError):
                rule(context)

    Tolerant.__name__ = f"Tolerant{rule.__name__}"
    return Tolerant


def limit_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """The validation rules of the SPEC's depth and alias limits. Built once: building a
    depth limiter per request is costly (docs/benchmarks.md) and defeats the validation
    cache."""
    return [
        tolerant(rule)
        for rule in (
            *QueryDepthLimiter(max_depth=settings.max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
        )
    ]


def query_limit_extensions(
    settings: Settings, rules: list[type[ASTValidationRule]]
) -> list[Callable[[], SchemaExtension]]:
    """Extension factories for the SPEC's limits on tokens, depth and aliases."""
    return [
        partial(MaxTokensLimiter, max_token_count=settings.max_tokens),
        partial(AddValidationRules, rules),
    ]


class Schema(strawberry.Schema):
    # The limits checked before execution; also what a persisted query must pass.
    limits: Limits

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Client mistakes are answered and counted, not logged: a client must not be able to
        # flood the logs. Only errors from bugs (no code of ours) get a traceback.
        for error in errors:
            if _is_unexpected(error):
                log.error("unexpected error in a resolver", exc_info=error.original_error)


def build_schema(settings: Settings, *, observed: bool = True) -> Schema:
    """The schema; `observed=False` leaves out the per-operation statistics (only the
    overhead benchmark does that: the HTTP layer relies on them)."""
    rules = limit_rules(settings)
    extensions: list[Callable[[], SchemaExtension]] = [
        *query_limit_extensions(settings, rules),
        # One store of parse trees per schema, bounded in bytes (not Strawberry's
        # ParserCache and ValidationCache: bounded in entries only).
        partial(DocumentCache, documents=Documents()),
        partial(MaskErrors, should_mask_error=_is_unexpected),
    ]
    if observed:
        extensions.append(partial(OperationObserver, expose=settings.cache_stats_exposed))
    # The limits read the built schema (which fields page, which arguments are text), so
    # they exist only once the schema does; factories are called per request, so the
    # attribute is set by then. One `Limits` (one set of memos) serves every request.
    extensions.append(lambda: PreExecutionLimits(limits=schema.limits))
    schema = Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        execution_context_class=subtree_executor(
            # A subtree is part of a response: the same bound as a whole response.
            Subtrees(entity_of, entity_at, max_bytes=settings.response_cache_max_bytes)
        ),
    )
    schema.limits = Limits(schema._schema, settings.max_cost, rules)
    return schema
