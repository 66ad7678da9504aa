"""Each engine is its folder under ``backends/`` and one row in the engine table (``config/engines.py``): nothing
else in the package names an engine, and a made-up engine plugs in by its package and a row, as a made-up kind does
by its row in ``observations.KINDS``."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from pytest_lmbehave import backends
from pytest_lmbehave.config import engines, environment
from pytest_lmbehave.config.errors import SettingsError
from pytest_lmbehave.config.options import OPTIONS

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_lmbehave"
OWNERS = (PACKAGE / "backends", PACKAGE / "config" / "engines.py")  # the engines' folders, and their one table


def outside_the_engines() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if not any(p == o or o in p.parents for o in OWNERS)]


def engine_side(node: ast.expr) -> bool:
    """An expression that reads an engine's name: ``x.engine``, ``x["engine"]`` or ``x.get("engine", ...)``."""
    if isinstance(node, ast.Attribute):
        return node.attr == "engine"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "engine"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value == "engine"
    return False


def named_engines(source: str, where: str) -> list[str]:
    """Where a module names an engine: a string that is an engine's name (unless it is also the name of a package
    whose version the fingerprint keeps, as "transformers" is), or a comparison of an engine's name with a constant."""
    names = set(engines.ENGINES) - set(environment.PACKAGES)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and node.value in names:
            found.append(f"{where}:{node.lineno}: {node.value!r}")
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(engine_side(s) for s in sides) and any(isinstance(s, ast.Constant | ast.Tuple) for s in sides):
                found.append(f"{where}:{node.lineno}: compares an engine's name")
    return found


def test_no_module_outside_the_engines_and_their_table_names_an_engine() -> None:
    modules = outside_the_engines()
    assert len(modules) > 50  # the walk reaches the package
    assert [line for p in modules for line in named_engines(p.read_text(), str(p.relative_to(PACKAGE)))] == []


def test_the_check_finds_an_engine_named_or_compared() -> None:
    source = (
        "def f(settings, env):\n"
        "    drafts = settings.engine != 'transformers'\n"
        "    level = env.get('engine') in ('x', 'y')\n"
        "    return ['llama.cpp', 'transformers']\n"
    )
    assert named_engines(source, "m.py") == [
        "m.py:2: compares an engine's name",
        "m.py:3: compares an engine's name",
        "m.py:4: 'llama.cpp'",
    ]


def test_every_engine_in_the_table_is_a_choice_of_lm_engine_and_has_its_package() -> None:
    [option] = [o for o in OPTIONS if o.flag == "--lm-engine"]
    for name in engines.ENGINES:
        assert f"{name}, {engines.ENGINES[name].help}" in option.help
        package = backends.package(name)
        assert isinstance(package.DRAFTS, bool) and callable(package.open) and callable(package.by_level)
    with pytest.raises(SettingsError, match=r"no engine is named 'nope'; choose one of: transformers, llama\.cpp"):
        backends.package("nope")


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> engines.Engine:
    row = engines.Engine("toy", "tests.toy_engine", "a made-up engine")
    monkeypatch.setitem(engines.ENGINES, "toy", row)
    return row


def test_a_made_up_engine_plugs_in_by_its_package_and_one_table_row(toy: engines.Engine, run_with_tiny: Any) -> None:
    result = run_with_tiny(
        "def test_one(lm):\n    assert lm.fingerprint['engine'] == 'toy'\n    assert lm.tokenize('a')\n",
        "--lm-engine=toy",
        "-v",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*engine=toy (a made-up engine) threads=1 base seed=0*"])


def test_a_made_up_engine_judges_its_own_settings(toy: engines.Engine, pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one(lm):\n    assert lm.tokenize('a')\n")
    result = pytester.runpytest("-p", "no:randomly", "--lm-engine=toy")  # the embedded GGUF, which it cannot read
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lm-engine=toy reads directory models only*"])


def test_an_engine_missing_from_the_table_is_refused_with_the_choices(run_with_tiny: Any) -> None:
    result = run_with_tiny("def test_one(lm):\n    pass\n", "--lm-engine=toy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lm-engine*toy*transformers*llama.cpp*"])
