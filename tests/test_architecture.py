"""The package's floor plan: a few parts by job at its top, layers that import downwards only (the import-linter
contracts in pyproject.toml, which fail on one reversed import; no circle, type-checking imports included), modules
small enough to read in one sitting, and torch or transformers imported only by the transformers backend."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_lmbehave"
ROOT = PACKAGE.parent
TENSOR_HELPER = (
    "observations.tensors"  # the one place outside the transformers backend that hands numbers out as tensors
)
LIMIT = 400  # lines: a module that needs more does several jobs (a module cut only to stay under it would be worse)
TOP = 12  # entries at the package's top: a few parts by job, not a flat list of modules


def modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__") or "": path
        for path in PACKAGE.rglob("*.py")
    }


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            for alias in node.names:
                candidate = f"{target}.{alias.name}" if target else alias.name
                found.add(candidate if candidate in known else target)
    return {f for f in found if f in known and f != name}


def external_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_import_graph_has_no_circle() -> None:
    found = modules()
    graph = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for other in sorted(graph[node]):
            if state.get(other) == 1:
                circles.append([*stack[stack.index(other) :], other])
            elif other not in state:
                visit(other)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)
    assert graph["runtime.runtime"] >= {"backends", "runtime.memo", "runtime.scheduler"}  # the graph is really read


def test_no_module_needs_a_table_of_contents() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert max(sizes.values()) > 100  # really counted
    assert {name: size for name, size in sizes.items() if size > LIMIT} == {}


def test_only_the_transformers_backend_imports_torch_or_transformers() -> None:
    users = {name for name, path in modules().items() if external_imports(path) & {"torch", "transformers"}}
    assert "backends.transformers.inprocess" in users  # really read
    assert {n for n in users if not n.startswith("backends.transformers")} == {TENSOR_HELPER}


def test_the_package_top_holds_a_few_parts_by_job() -> None:
    top = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(top) <= TOP, top
    assert {"plugin", "api", "runtime", "backends", "observations", "reports", "config", "teaching"} <= set(top)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over the package found under ``root``, with the contracts of pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [
        sys.executable,
        "-c",
        "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
    ]
    return subprocess.run(
        [*command, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )


def test_the_layer_contracts_are_kept() -> None:
    pytest.importorskip("importlinter")
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "4 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "reversed_import"),
    [
        ("config/defaults.py", "from ..runtime import plan  # noqa"),  # the bottom reaching up
        ("backends/served/http.py", "from ..transformers import loading  # noqa"),  # one engine into the other
        ("backends/llamacpp/backend.py", "from ..transformers import loading  # noqa"),  # llama.cpp into transformers
        ("backends/llamacpp/numbers.py", "import torch  # noqa"),  # torch in the llama.cpp engine
        ("reports/drift.py", "import torch  # noqa"),  # torch outside the transformers backend
        ("plugin/session.py", "from ..backends.served import http  # noqa"),  # an engine reached around open()
    ],
)
def test_one_reversed_import_breaks_a_contract(tmp_path: Path, module: str, reversed_import: str) -> None:
    pytest.importorskip("importlinter")
    copy = tmp_path / "pytest_lmbehave"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{reversed_import}\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout[-2000:]
