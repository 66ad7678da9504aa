"""`lmbehave init specs|exercises|ci [DIR]`: the document's behaviour specs (with every model's recorded sets and
the request plan) or the exercises (with their answer key), written into a user's own project from the installed
package's data (``share/pytest-lmbehave/``), or from the source tree in a checkout; or the GitHub Actions workflows
that put the drift in a pull request (``workflow.py``). Nothing is overwritten without ``--force``, and every file is
written whole or not at all."""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from ..config.engines import ENGINES
from ..config.errors import LMBehaveError
from ..config.files import write_atomically
from . import workflow

KINDS = ("specs", "exercises")
COMMANDS = (*KINDS, "ci")
SHARE = ("share", "pytest-lmbehave")
SKIPPED = ("__pycache__", ".pytest_cache")


def packaged(kind: str) -> dict[str, Path]:
    """The bundle's files by their path inside it: the installed package's data, else this checkout's tree."""
    try:
        listed = metadata.distribution("pytest-lmbehave").files or []
    except metadata.PackageNotFoundError:
        listed = []
    found: dict[str, Path] = {}
    for entry in listed:
        parts = entry.parts
        if any(part in SKIPPED for part in parts):
            continue  # pip byte-compiles the bundled .py files: their __pycache__ is not the bundle's
        for i in range(len(parts) - 2):
            if parts[i : i + 2] == SHARE and parts[i + 2] == kind:
                found["/".join(parts[i + 3 :])] = Path(str(entry.locate()))
    if found:
        return found
    tree = Path(__file__).resolve().parents[2] / kind  # an editable install: the repo's own specs/ or exercises/
    if (tree / "conftest.py").is_file():
        return {
            str(p.relative_to(tree)): p
            for p in sorted(tree.rglob("*"))
            if p.is_file() and not any(part in SKIPPED for part in p.relative_to(tree).parts)
        }
    raise LMBehaveError(
        f"the packaged {kind} were not found in this installation of pytest-lmbehave; reinstall it "
        "(pip install --force-reinstall pytest-lmbehave)"
    )


def init(kind: str, target: Path, force: bool = False) -> list[Path]:
    """Write the bundle into ``target``; refuses to replace existing files unless ``force``, naming them."""
    if kind not in KINDS:
        raise LMBehaveError(f"lmbehave init {kind}: choose one of {', '.join(KINDS)}")
    files = packaged(kind)
    existing = [target / name for name in sorted(files) if (target / name).exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:5]) + (
            f" and {len(existing) - 5} more" if len(existing) > 5 else ""
        )
        raise LMBehaveError(
            f"{target} already holds {len(existing)} of the {len(files)} {kind} files ({shown}); "
            f"pass --force to replace them, or another folder: lmbehave init {kind} OTHER_DIR"
        )
    written = []
    for name in sorted(files):
        destination = target / name
        write_atomically(destination, files[name].read_bytes())
        written.append(destination)
    return written


NEXT = {
    "specs": "pytest {dir} -n 2   verifies the embedded model against the shipped expectations;\n"
    "pytest {dir} --lm-model=MODEL --snapshot-update   records your own model's set beside them",
    "exercises": "pytest {dir}   shows the progress line (0/16 at first) and a hint for every blank;\n"
    "replace each ___ with what the model really does until they pass",
    "ci": "commit {dir}/.github/workflows/: a pull request that touches the lock, the weights or the specs gets the "
    "drift as its job summary and one comment",
}


def run(args: argparse.Namespace) -> int:
    target = Path(args.dir or ("." if args.kind == "ci" else args.kind))
    try:
        if args.kind == "ci":
            paths = [p.strip() for p in args.paths.split(",") if p.strip()] if args.paths else list(workflow.PATHS)
            written = workflow.write(target, args.python, args.engine, paths, args.install, args.force)
        else:
            written = init(args.kind, target, args.force)
    except LMBehaveError as error:
        print(f"lmbehave init: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files into {target}/\nnext:\n" + NEXT[args.kind].format(dir=target))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kind",
        choices=COMMANDS,
        help="specs: the document's behaviour specs; exercises: the exercises; ci: GitHub Actions workflows that put "
        "the drift in a pull request",
    )
    parser.add_argument("dir", nargs="?", help="the folder to write (default: ./specs, ./exercises, or . for ci)")
    parser.add_argument("--force", action="store_true", help="replace files that are already there")
    parser.add_argument("--python", default="3.11", help="ci: the Python version the workflow runs (default 3.11)")
    parser.add_argument(
        "--engine",
        default="transformers",
        choices=ENGINES,
        help="ci: the engine the specs run on (default transformers)",
    )
    parser.add_argument(
        "--paths",
        help="ci: the paths whose change triggers the workflow, comma-separated (default: "
        + ", ".join(workflow.PATHS)
        + ")",
    )
    parser.add_argument(
        "--install",
        help="ci: the install command (default: with the project's constraints*.txt, else requirements*.txt, else "
        "pyproject.toml)",
    )
