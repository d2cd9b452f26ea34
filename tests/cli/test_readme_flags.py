"""Every `strata` command and option is in the README's command table (bench's own
options are documented in docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer.main

from graph.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def _commands(group: Any, prefix: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if hasattr(command, "commands"):
            found += _commands(command, path)
        else:
            found.append((path, command))
    return found


def _command_table() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Command line") :]
    table = section[section.index("| command |") :]
    return table[: table.index("\n\n")]


def test_every_command_and_flag_is_in_the_readme_table() -> None:
    table = _command_table()
    missing = []
    commands = _commands(typer.main.get_command(app), "strata")
    assert len(commands) >= 10
    for path, command in commands:
        rows = [line for line in table.splitlines() if f"`{path}" in line]
        if not rows:
            missing.append(path)
        if path == "strata bench":
            continue
        row = " ".join(rows)
        for param in command.params:
            if param.param_type_name != "option":
                continue
            flags = [f for f in [*param.opts, *param.secondary_opts] if f.startswith("--")]
            if not any(flag in row for flag in flags if flag != "--delete"):
                missing.append(f"{path} {'/'.join(flags)}")
    assert missing == []
