"""`strata schema` prints the SDL, and schema.graphql at the root (what frontend codegen
reads) is exactly that output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from graphql import build_schema

ROOT = Path(__file__).resolve().parents[2]
STRATA = Path(sys.executable).parent / "strata"
REGENERATE = "strata schema > schema.graphql"


def _printed_sdl(cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    result = subprocess.run(
        [str(STRATA), "schema"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_schema_file_is_what_strata_schema_prints(tmp_path: Path) -> None:
    printed = _printed_sdl(tmp_path)
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == printed, f"schema.graphql is out of date: run `{REGENERATE}`"


def test_printed_sdl_is_a_valid_schema_with_the_spec_entry_points(tmp_path: Path) -> None:
    schema = build_schema(_printed_sdl(tmp_path))
    query = schema.query_type
    mutation = schema.mutation_type
    assert query is not None
    assert mutation is not None
    assert {"author", "authors", "book", "books", "review", "me"} <= set(query.fields)
    assert {"addReview", "deleteReview", "invalidateCache"} <= set(mutation.fields)
