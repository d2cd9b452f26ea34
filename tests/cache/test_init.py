"""The public surface of ``cache``: what an app imports, and nothing that needs Strawberry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cache

ROOT = Path(__file__).resolve().parents[2]

BLOCK_STRAWBERRY = """
import sys

class NoStrawberry:
    def find_spec(self, name, path=None, target=None):
        if name == "strawberry" or name.startswith("strawberry."):
            raise ImportError(f"{name} is blocked for this test")
        return None

sys.meta_path.insert(0, NoStrawberry())
"""


def run_without_strawberry(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_STRAWBERRY + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_import_cache_works_without_strawberry() -> None:
    done = run_without_strawberry(
        "import cache\n"
        "assert 'strawberry' not in sys.modules, sorted(sys.modules)\n"
        "assert cache.TieredCache and cache.TieredAiocache\n"
    )
    assert done.returncode == 0, done.stderr


def test_the_block_is_real() -> None:
    """Without this, the test above could pass with a block that blocks nothing."""
    done = run_without_strawberry("import cache.strawberry\n")
    assert done.returncode != 0
    assert "strawberry is blocked" in done.stderr


def test_exports_are_what_an_app_uses() -> None:
    assert sorted(cache.__all__) == [
        "CacheAdmin",
        "CacheConfig",
        "Entry",
        "GLOBAL_TAG",
        "Lease",
        "NOT_FOUND",
        "Observation",
        "Recorder",
        "TagVersions",
        "TieredAiocache",
        "TieredCache",
        "compose_key",
    ]
    for name in cache.__all__:
        assert getattr(cache, name) is not None
