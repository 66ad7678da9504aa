"""What a user installs: the wheel carries the document's specs and exercises as data, exactly as the tree holds
them (one copy, the tree's), with py.typed, one version and the classifiers; `lmbehave init` writes them into a
project, refusing to replace files without --force."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import pytest_lmbehave
from pytest_lmbehave.cli import main
from pytest_lmbehave.cli.init import SKIPPED

ROOT = Path(__file__).resolve().parent.parent


def tree(kind: str) -> set[str]:
    folder = ROOT / kind
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not any(part in SKIPPED for part in p.relative_to(folder).parts)
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build`: the sdist, and the wheel built from it (run outside the repo, whose build/ folder would
    shadow the module)."""
    pytest.importorskip("build", reason="the dev extra installs build")
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)]
    done = subprocess.run(command, cwd=out, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> zipfile.ZipFile:
    [built] = dist.glob("pytest_lmbehave-*.whl")
    return zipfile.ZipFile(built)


def test_the_sdist_carries_the_tree_the_wheel_is_built_from(dist: Path) -> None:
    import tarfile

    [sdist] = dist.glob("pytest_lmbehave-*.tar.gz")
    names = tarfile.open(sdist).getnames()
    for kind in ("specs", "exercises"):
        assert {n.split(f"/{kind}/", 1)[1] for n in names if f"/{kind}/" in n} >= tree(kind)
    assert any(n.endswith("/CHANGELOG.md") for n in names)


@pytest.mark.parametrize("kind", ["specs", "exercises"])
def test_the_wheel_carries_every_file_of_the_tree_and_nothing_else(wheel: zipfile.ZipFile, kind: str) -> None:
    marker = f".data/data/share/pytest-lmbehave/{kind}/"
    packaged = {name.split(marker, 1)[1] for name in wheel.namelist() if marker in name}
    assert packaged == tree(kind), "pyproject.toml [tool.setuptools.data-files] no longer matches the tree"


def test_the_wheel_is_typed_versioned_once_and_classified_as_a_pytest_plugin(wheel: zipfile.ZipFile) -> None:
    assert "pytest_lmbehave/py.typed" in wheel.namelist()
    [meta] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    found = Parser().parsestr(wheel.read(meta).decode())
    assert found["Version"] == pytest_lmbehave.__version__
    classifiers = found.get_all("Classifier") or []
    assert {"Framework :: Pytest", "Typing :: Typed"} <= set(classifiers)
    assert found["License-Expression"] == "MIT"  # an SPDX expression, which setuptools' license classifiers give way to
    assert any(c.startswith("Programming Language :: Python :: 3.1") for c in classifiers)


def test_init_writes_the_specs_refuses_to_replace_them_naming_them_and_force_replaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mine"
    assert main(["init", "specs", str(target)]) == 0
    assert {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()} == tree("specs")
    assert (target / "test_generation.py").read_bytes() == (ROOT / "specs" / "test_generation.py").read_bytes()
    assert "pytest " in capsys.readouterr().out
    (target / "document.py").write_text("edited")
    assert main(["init", "specs", str(target)]) == 2
    error = capsys.readouterr().err
    count = len(tree("specs"))
    assert f"already holds {count} of the {count} specs files" in error and "--force" in error
    assert (target / "document.py").read_text() == "edited"  # nothing replaced
    assert main(["init", "specs", str(target), "--force"]) == 0
    assert (target / "document.py").read_bytes() == (ROOT / "specs" / "document.py").read_bytes()
    assert not list(target.rglob("*.tmp"))  # each file written whole


def test_init_exercises_writes_the_blanks_and_the_answer_key(tmp_path: Path) -> None:
    assert main(["init", "exercises", str(tmp_path / "ex")]) == 0
    written = tree("exercises")
    assert {str(p.relative_to(tmp_path / "ex")) for p in (tmp_path / "ex").rglob("*") if p.is_file()} == written
    blanks = sum((tmp_path / "ex" / name).read_text().count("___,") for name in written if name.startswith("test_"))
    key = (tmp_path / "ex" / "answer_key.py").read_text()
    assert blanks == key.count('"test_') == 17  # one blank per exercise and answer, each `check(actual, ___, ...)`
