"""The README is true (issue 17): its examples run as written against a real server seeded
the way `python3 dev.py serve` seeds, and the figures it quotes are the ones measured.

Every ```graphql block of the README has a `curl` form in it that sends the same document;
every `curl` line runs (through bash, as a reader would paste it, with the server's
address for 127.0.0.1:8000) and answers data without errors; the `strata token` lines run
too (their token is the `$TOKEN` of the lines that follow). The cursor example pages, and
the list page costs the SQL statements the README says.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from graphql import parse, print_ast

from tests.support.readme import blocks, list_page
from tests.support.servers import STRATA, Server, running, server_env

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = re.compile(r"^(\w+)=\$\((.*)\)$")


def _commands(block: str) -> Iterator[str]:
    """The block's commands, continuation lines joined."""
    pending = ""
    for line in block.splitlines():
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        command, pending = (pending + line).strip(), ""
        if command:
            yield command


def _runnable(command: str) -> bool:
    return command.startswith(("curl ", ".venv/bin/strata token ")) or bool(
        ASSIGNMENT.match(command)
    )


def readme_commands() -> list[str]:
    return [c for block in blocks("sh") for c in _commands(block) if _runnable(c)]


def sent_document(command: str) -> tuple[str, dict[str, Any]] | None:
    """The document and variables a curl line sends (POST JSON or GET query string)."""
    if not command.startswith("curl "):
        return None
    args = shlex.split(command.split(" | ")[0])
    for flag, value in itertools.pairwise(args):
        if flag == "-d":
            body = json.loads(value)
            return body["query"], body.get("variables") or {}
        if flag == "--data-urlencode" and value.startswith("query="):
            return value.removeprefix("query="), {}
    return None


def _normal(document: str) -> str:
    return print_ast(parse(document))


def _sends(command: str, document: str) -> bool:
    sent = sent_document(command)
    return sent is not None and _normal(sent[0]) == _normal(document)


def test_every_graphql_block_has_a_curl_form() -> None:
    sent = {_normal(found[0]) for c in readme_commands() if (found := sent_document(c))}
    documents = blocks("graphql")
    assert len(documents) >= 3
    missing = [block for block in documents if _normal(block) not in sent]
    assert missing == []


@dataclass
class Ran:
    command: str
    output: Any


def _dev_seed() -> list[str]:
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.SEED)


def _run(command: str, env: dict[str, str], server: Server, cwd: Path) -> str:
    local = f"127.0.0.1:{server.port}"
    command = command.replace("http://127.0.0.1:8000", f"http://{local}")
    command = command.replace("localhost:8000", local).replace(".venv/bin/strata", str(STRATA))
    done = subprocess.run(
        ["bash", "-c", command], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (command, done.stderr)
    return done.stdout


@pytest.mark.slow
async def test_the_readme_examples_run_on_the_dev_seed(
    sqlite_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    env = server_env(sqlite_url, redis_url, key_prefix)
    seeded = await asyncio.to_thread(
        subprocess.run,
        [str(STRATA), *_dev_seed()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    server = Server("readme", dict(env), tmp_path)
    ran: list[Ran] = []
    async with running([server]):
        for command in readme_commands():
            if found := ASSIGNMENT.match(command):
                env[found[1]] = _run(found[2], env, server, tmp_path).strip()
                continue
            output = _run(command, env, server, tmp_path)
            if command.startswith("curl "):
                payload = json.loads(output)
                assert "errors" not in payload, (command, payload)
                ran.append(Ran(command, payload))
                if _sends(command, list_page()[0]):  # asked again: now it is cached
                    ran.append(Ran(command, json.loads(_run(command, env, server, tmp_path))))
    _check_list_page(ran)
    _check_pages(ran)


def _check_list_page(ran: list[Ran]) -> None:
    document, statements = list_page()
    cold, cached = [r.output for r in ran if _sends(r.command, document)][:2]
    assert cold["data"]["books"]["edges"]
    assert statements <= cold["extensions"]["cache"]["sql"]["statements"] <= statements + 1
    assert cached["extensions"]["cache"]["sql"]["statements"] == 0


def _check_pages(ran: list[Ran]) -> None:
    pages = [r for r in ran if r.command.count("query Book(") == 1]
    assert len(pages) == 2
    first, second = (page.output["data"]["book"]["reviews"] for page in pages)
    assert first["pageInfo"]["hasNextPage"]
    sent = sent_document(pages[1].command)
    assert sent is not None
    assert sent[1]["after"] == first["pageInfo"]["endCursor"]
    assert second["edges"]
    assert {e["cursor"] for e in first["edges"]}.isdisjoint(e["cursor"] for e in second["edges"])
