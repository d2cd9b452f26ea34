"""The dev server's settings for the other `strata` commands (`python3 dev.py serve`).

dev.py starts its own Redis on a unix socket in `.strata/` and keeps a cache secret
there; while it runs, it writes `.strata/dev.env` with `REDIS_URL`, `STRATA_CACHE_SECRET`,
`DATABASE_URL` and `STRATA_ENV=dev`, and removes the file when it stops.

The rule, exactly: a `strata` command reads that file when

1. the current directory has `.strata/dev.env` (the command is run in the project
   directory; parent directories are not searched),
2. neither `REDIS_URL` nor `STRATA_REDIS_URL` is set in the environment (a configured
   deployment is never redirected), and
3. the Redis it names is up: for a `unix://` URL, its socket exists.

Variables already set in the environment win over the file's.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlparse

DEV_ENV = Path(".strata") / "dev.env"
KEYS = ("REDIS_URL", "STRATA_CACHE_SECRET", "DATABASE_URL", "STRATA_ENV")


def parse(text: str) -> dict[str, str]:
    """`NAME=value` lines; blank lines and `#` comments are skipped."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        if name.strip() in KEYS:
            values[name.strip()] = value.strip()
    return values


def render(values: dict[str, str]) -> str:
    header = "# Written by `python3 dev.py serve` while it runs; read by `strata` commands\n"
    return header + "".join(f"{name}={values[name]}\n" for name in KEYS if name in values)


def _redis_up(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        return Path(parsed.path).exists()
    return True


def load_dev_env(
    cwd: Path | None = None, environ: MutableMapping[str, str] | None = None
) -> Path | None:
    """Apply the dev server's file to `environ` under the rule above; the file if applied."""
    environ = os.environ if environ is None else environ
    path = (cwd or Path.cwd()) / DEV_ENV
    if environ.get("REDIS_URL") or environ.get("STRATA_REDIS_URL"):
        return None
    try:
        values = parse(path.read_text())
    except OSError:
        return None
    if not _redis_up(values.get("REDIS_URL", "")):
        return None
    for name, value in values.items():
        environ.setdefault(name, value)
    return path
