"""What the README says, for the tests that keep it true: its fenced blocks, and the list
page example with the SQL statements it quotes for it."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
LIST_PAGE = re.compile(
    r"The list page costs \*\*(\d+) SQL statements\*\*.*?```graphql\n(.*?)```", re.S
)


def blocks(language: str) -> list[str]:
    """The bodies of the README's fenced blocks in `language`, in order."""
    return [body for lang, body in FENCE.findall(README) if lang == language]


def list_page() -> tuple[str, int]:
    """The list page example (the first GraphQL block after the sentence that quotes its
    cost) and the number of SQL statements quoted for it when nothing is cached."""
    found = LIST_PAGE.search(README)
    assert found is not None, "README: 'The list page costs **N SQL statements**' is gone"
    return found[2], int(found[1])
