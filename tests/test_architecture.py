"""The package's shape: layers that import downwards only (no circle, type-checking imports included), modules
small enough to read in one sitting, and torch or transformers imported only where the model is loaded or run."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_lmbehave"
# The only modules that import torch or transformers to compute or load; the others import them at most for a
# type or a conversion a caller asked for (Distribution.logprobs, Engine.logits hand out tensors).
COMPUTE = {
    "backends.inprocess",
    "backends.prefill",
    "backends.decoding",
    "backends.drafts",
    "backends.configured",
    "models",
    "conversion",
}
HANDS_OUT_TENSORS = {"observations", "engine", "settings", "environment"}
LIMIT = 300  # lines: a module that needs more does several jobs


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
    assert graph["engine"] >= {"backends", "memo", "scheduler"}  # the graph is really read


def test_no_module_needs_a_table_of_contents() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert max(sizes.values()) > 100  # really counted
    assert {name: size for name, size in sizes.items() if size > LIMIT} == {}


def test_only_the_backend_and_model_loading_compute_with_torch_or_transformers() -> None:
    users = {
        name
        for name, path in modules().items()
        if external_imports(path) & {"torch", "transformers"} and name not in COMPUTE | HANDS_OUT_TENSORS
    }
    assert users == set()
    assert "backends.inprocess" in {n for n, p in modules().items() if "transformers" in p.read_text()}
