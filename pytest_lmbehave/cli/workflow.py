"""`lmbehave init ci [DIR]`: two GitHub Actions workflows that put the drift report in a pull request.

- ``lmbehave.yml`` runs on pull requests that touch the requirement or lock files, the weights or the specs. It
  installs with the project's own lock, runs the specs with ``--lm-report`` on the head, takes the base branch's report
  from ``actions/cache`` (keyed by the base commit's lock and weights; built there when missing), runs
  ``lmbehave diff --markdown``, writes the job summary, and uploads the HTML and both reports. A read-only token (a
  fork's, Dependabot's) still gets the job summary.
- ``lmbehave-comment.yml`` runs on ``workflow_run``, with a token that may write, and posts or updates one sticky
  comment (``lmbehave comment``), naming the command that reproduces it.

The logic lives in ``run:`` steps that call the CLI; ``uses:`` steps are checkout, setup-python, cache and artifacts.
"""

from __future__ import annotations

from pathlib import Path

from ..config.errors import LMBehaveError
from ..config.files import write_atomically

PATHS = (
    "constraints*.txt",
    "requirements*.txt",
    "pyproject.toml",
    "**/*.gguf",
    "**/*.safetensors",
    "specs/**",
)
TORCH = "python -m pip install torch --index-url https://download.pytorch.org/whl/cpu"

MAIN = """\
# Written by `lmbehave init ci`: the drift of the model's behaviour, in the pull request that changes what computes it.
name: lmbehave
on:
  pull_request:
    paths:
@PATHS@
permissions:
  contents: read
jobs:
  drift:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/setup-python@v5
        with:
          python-version: "@PYTHON@"
      - name: Install with the project's own lock
        run: |
          @TORCH@
          @INSTALL@
      - name: The specs on the pull request's head
        id: specs
        continue-on-error: true
        run: pytest specs/ -n 2 -p no:randomly @ENGINE@--lm-report build/lmbehave/new.json --junitxml build/lmbehave/junit.xml
      - name: The base commit's key (its lock and weights)
        id: base
        env:
          BASE: ${{ github.event.pull_request.base.sha }}
        run: |
          git worktree add ../base "$BASE"
          digest=$(cd ../base && git ls-files -z @HASHED@ | xargs -0 -r sha256sum | sha256sum | cut -c1-16)
          echo "key=lmbehave-base-$digest" >> "$GITHUB_OUTPUT"
      - uses: actions/cache@v4
        id: cache
        with:
          path: build/lmbehave/old.json
          key: ${{ steps.base.outputs.key }}
      - name: The base branch's report, where the cache has none
        if: steps.cache.outputs.cache-hit != 'true'
        run: |
          python -m venv ../base-venv
          . ../base-venv/bin/activate
          cd ../base
          @TORCH@
          @INSTALL@
          pytest specs/ -n 2 -p no:randomly @ENGINE@--lm-report "$GITHUB_WORKSPACE/build/lmbehave/old.json" || true
      - name: The drift, as markdown, HTML and the job summary
        env:
          PR: ${{ github.event.pull_request.number }}
        run: |
          lmbehave diff build/lmbehave/old.json build/lmbehave/new.json --markdown build/lmbehave/drift.md \\
            --html build/lmbehave/drift.html || true
          cat build/lmbehave/drift.md >> "$GITHUB_STEP_SUMMARY"
          echo "$PR" > build/lmbehave/pr.txt
      - uses: actions/upload-artifact@v4
        with:
          name: lmbehave
          path: build/lmbehave/
      - name: The specs' verdict
        if: steps.specs.outcome == 'failure'
        run: exit 1
"""

COMMENT = """\
# Written by `lmbehave init ci`: the drift report as one sticky comment on the pull request. It runs after the
# lmbehave workflow, with a token that may write, which a pull request from a fork or Dependabot does not get.
name: lmbehave comment
on:
  workflow_run:
    workflows: [lmbehave]
    types: [completed]
permissions:
  actions: read
  pull-requests: write
jobs:
  comment:
    if: github.event.workflow_run.event == 'pull_request'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/setup-python@v5
        with:
          python-version: "@PYTHON@"
      - uses: actions/download-artifact@v4
        with:
          name: lmbehave
          path: lmbehave
          run-id: ${{ github.event.workflow_run.id }}
          github-token: ${{ secrets.GITHUB_TOKEN }}
      - name: Post or update the comment
        env:
          GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}
          REPO: ${{ github.repository }}
        run: |
          python -m pip install --no-deps pytest-lmbehave
          printf '\\nReproduce locally: `pytest specs/ --lm-report new.json` on both commits, then ' >> lmbehave/drift.md
          printf '`lmbehave diff old.json new.json`.\\n' >> lmbehave/drift.md
          lmbehave comment --repo "$REPO" --pr "$(cat lmbehave/pr.txt)" --body lmbehave/drift.md
"""


def install_command(project: Path) -> str:
    """How the project installs with its own lock: ``constraints*.txt``, then ``requirements*.txt``, then
    ``pyproject.toml``; the plugin alone where it has none of them."""
    constraints = sorted(project.glob("constraints*.txt"))
    requirements = sorted(project.glob("requirements*.txt"))
    plugin = '"pytest-lmbehave[xdist]"'
    if constraints:
        extra = f" -r {requirements[0].name}" if requirements else ""
        return f"python -m pip install -c {constraints[0].name}{extra} {plugin}"
    if requirements:
        return f"python -m pip install -r {requirements[0].name} {plugin}"
    if (project / "pyproject.toml").is_file():
        return f"python -m pip install -e . {plugin}"
    return f"python -m pip install {plugin}"


def workflows(project: Path, python: str, engine: str, paths: list[str], install: str | None) -> dict[str, str]:
    """The two workflows' text, by their path under ``project``."""
    listed = "\n".join(f'      - "{path}"' for path in paths)
    hashed = " ".join(f"'{path}'" for path in paths if not path.startswith("specs"))
    flags = "" if engine == "transformers" else f"--lm-engine {engine} "
    fill = {
        "@PATHS@": listed,
        "@PYTHON@": python,
        "@TORCH@": TORCH,
        "@INSTALL@": install or install_command(project),
        "@ENGINE@": flags,
        "@HASHED@": hashed,
    }
    found = {}
    for name, text in (("lmbehave.yml", MAIN), ("lmbehave-comment.yml", COMMENT)):
        for token, value in fill.items():
            text = text.replace(token, value)
        found[f".github/workflows/{name}"] = text
    return found


def write(project: Path, python: str, engine: str, paths: list[str], install: str | None, force: bool) -> list[Path]:
    files = workflows(project, python, engine, paths, install)
    existing = [project / name for name in files if (project / name).exists()]
    if existing and not force:
        raise LMBehaveError(
            f"{', '.join(str(p) for p in existing)} already there; pass --force to replace, or another folder"
        )
    written = []
    for name, text in files.items():
        write_atomically(project / name, text)
        written.append(project / name)
    return written
