"""What a selection contributes to the key of a cached subtree: a digest of its syntax
(its selection sets printed, with the fragments they use) and the variables it refers to.

Computed once per syntax node: the parser cache hands the same document to every request
with the same text, so its nodes (and their digests) are met again and again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from cachetools import LRUCache
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    VariableNode,
    Visitor,
    print_ast,
    visit,
)
from graphql.execution.collect_fields import FieldDetailsList

from cache.keys import compose_key

SELECTIONS_MAX_BYTES = 8 * 1024 * 1024  # printed selections and the documents they pin


class Identity:
    """What a selection contributes to a key: a digest of its text, and its variables."""

    __slots__ = ("digest", "prefixes", "size", "variables")

    def __init__(self, digest: str, variables: tuple[str, ...], size: int) -> None:
        self.digest = digest
        self.variables = variables
        self.size = size
        self.prefixes: dict[str, str] = {}

    def prefix(self, name: str) -> str:
        """`subtree:<type or field>:<digest>`, the leading parts of its keys."""
        known = self.prefixes.get(name)
        if known is None:
            known = self.prefixes[name] = compose_key("subtree", name, self.digest)
        return known


class _References(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.fragments: list[str] = []
        self.variables: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_args: Any) -> None:
        self.fragments.append(node.name.value)

    def enter_variable(self, node: VariableNode, *_args: Any) -> None:
        self.variables.add(node.name.value)


def _identity(nodes: list[FieldNode], fragments: Mapping[str, FragmentDefinitionNode]) -> Identity:
    """The selection sets of `nodes` printed, followed by every fragment they use."""
    texts = [print_ast(node.selection_set) if node.selection_set else "" for node in nodes]
    references = _References()
    for node in nodes:
        visit(node, references)
    seen: list[str] = []
    while references.fragments:
        name = references.fragments.pop()
        if name in seen or name not in fragments:
            continue
        seen.append(name)
        visit(fragments[name], references)
    texts.extend(print_ast(fragments[name]) for name in sorted(seen))
    text = "\n".join(texts).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(text, digest_size=16).hexdigest()
    # Kept nodes keep their document's source text alive: it counts in the memo's bound.
    held = sum(len(node.loc.source.body) for node in nodes if node.loc is not None)
    return Identity(digest, tuple(sorted(references.variables)), len(text) + held + 64)


class Selections:
    """Identities of the selections met, by the syntax nodes that hold them: a parsed
    document is reused for as long as the parser cache keeps it, so are its digests."""

    def __init__(self) -> None:
        self._known: LRUCache[tuple[int, ...], tuple[list[FieldNode], Identity]] = LRUCache(
            SELECTIONS_MAX_BYTES, getsizeof=lambda known: known[1].size
        )

    def identity(
        self, details: FieldDetailsList, fragments: Mapping[str, FragmentDefinitionNode]
    ) -> Identity | None:
        nodes = []
        for detail in details:
            if detail.defer_usage is not None or detail.fragment_variable_values is not None:
                return None  # incremental delivery and fragment arguments: executed
            nodes.append(detail.node)
        ids = tuple(map(id, nodes))
        known = self._known.get(ids)
        if known is not None and all(a is b for a, b in zip(known[0], nodes, strict=True)):
            return known[1]
        identity = _identity(nodes, fragments)
        if identity.size <= SELECTIONS_MAX_BYTES:
            self._known[ids] = (nodes, identity)
        return identity
