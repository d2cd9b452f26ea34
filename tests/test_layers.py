"""The layering rules of docs/architecture.md, proven on the source: each package imports
only the layers below it, and the server never loads the benchmark.

Static (every `import` in the tree, including the lazy ones inside functions) and dynamic
(a fresh interpreter imports the app and we look at what came along)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (the files of a layer, the packages they must not import, why)
RULES = [
    ("cache", ("graph", "models"), "cache/ is domain-free: a library another app could lift"),
    ("models", ("graph",), "models/ is storage: it knows nothing of GraphQL or HTTP"),
    ("graph/api", ("graph.cli", "graph.web"), "the schema does not depend on its transport"),
    ("graph/web", ("graph.cli",), "the server does not depend on the command line"),
    ("graph/observability", ("graph.cli",), "the server's metrics come from the server"),
    ("graph/services.py", ("graph.cli",), "the server's wiring does not use the CLI"),
    ("graph/settings.py", ("graph.cli",), "settings are read by the server too"),
]


def imports_of(source: str, package: str) -> set[str]:
    """Absolute names of every module `source` (a module of `package`) imports, relative
    imports resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def modules_imported(path: Path) -> set[str]:
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    return imports_of(path.read_text(), package)


def files_of(layer: str) -> list[Path]:
    where = ROOT / layer
    return [where] if where.is_file() else sorted(where.rglob("*.py"))


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize(("layer", "forbidden", "why"), RULES, ids=[rule[0] for rule in RULES])
def test_a_layer_imports_nothing_above_it(layer: str, forbidden: tuple[str, ...], why: str) -> None:
    files = files_of(layer)
    assert files, f"{layer} has no Python files: the rule would prove nothing"
    breaches = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in sorted(modules_imported(path))
        if any(within(module, package) for package in forbidden)
    ]
    assert not breaches, f"{why}:\n" + "\n".join(breaches)


def test_the_rules_see_a_breach() -> None:
    """The checker itself: absolute, relative and lazy imports into graph/cli are seen."""
    source = "from ..cli.bench import runner\ndef later() -> None:\n    import graph.cli.main\n"
    found = imports_of(source, "graph.web")
    assert {"graph.cli.bench", "graph.cli.bench.runner", "graph.cli.main"} <= found


def test_the_server_app_loads_without_the_cli_or_the_bench() -> None:
    """What `strata serve` loads (uvicorn imports `graph.web.app`), in a fresh interpreter."""
    script = (
        "import json, sys\n"
        "import graph.web.app\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'graph')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert "graph.web.app" in loaded, loaded
    assert not [name for name in loaded if within(name, "graph.cli")], loaded
