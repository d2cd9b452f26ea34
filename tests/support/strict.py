"""What a test needs from the machine, and what happens when it is missing."""

from __future__ import annotations

import os
import shutil

import pytest

STRICT = bool(os.environ.get("STRATA_TEST_STRICT"))
"""Set by CI: what would make a test skip here (no PostgreSQL, wrk or chromium) fails it."""


def require_program(program: str, how_to_install: str) -> None:
    """Skips the calling test when ``program`` (a name on PATH or a path) is missing, or
    fails it in strict mode: on CI's machine a skip would hide a test that never ran."""
    if shutil.which(program) is not None:
        return
    message = f"{program} is not installed: {how_to_install}"
    if STRICT:
        pytest.fail(f"STRATA_TEST_STRICT is set but {message}")
    pytest.skip(message)
