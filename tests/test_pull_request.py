"""The drift where upgrades arrive, a pull request: `lmbehave diff --markdown`, the job summary a run appends to
$GITHUB_STEP_SUMMARY, and each failure's verdict line in JUnit XML. From real reports (tests/reports: the embedded
model on transformers 4.57 and 5.24, the same specs), rendered as GitHub renders markdown (cmarkgfm)."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_lmbehave.cli import main
from pytest_lmbehave.reports import markdown
from pytest_lmbehave.reports.drift import Change

REPORTS = Path(__file__).resolve().parent / "reports"


def diff_markdown(tmp_path: Path, old: str, new: str) -> str:
    out = tmp_path / "drift.md"
    main(["diff", str(REPORTS / old), str(REPORTS / new), "--markdown", str(out)])
    return out.read_text(encoding="utf-8")


def test_the_markdown_verdict_names_the_upgrades_root_cause_first(tmp_path: Path) -> None:
    text = diff_markdown(tmp_path, "transformers-4.json", "transformers.json")
    first = text.splitlines()[0]
    assert first.startswith("**lmbehave diff: 13 changes (11 major, 2 minor), 1 root cause: the tokenizer no longer")
    assert "prepends '<|im_start|>' (id 1)" in first
    assert text.index(first) < text.index("<details>")
    assert "Reproduce: `lmbehave diff transformers-4.json transformers.json`" in text


def test_the_markdown_of_two_equal_reports_says_no_change(tmp_path: Path) -> None:
    text = diff_markdown(tmp_path, "transformers.json", "transformers.json")
    assert text.splitlines()[0] == "**lmbehave diff: no change beyond the noise floor**"
    assert "| severity |" not in text  # no table of changes; the distributions' statistics stay folded


def synthetic(count: int) -> list[Change]:
    """``count`` changes of every severity, each with a long summary, as a large diff would hold."""
    severities = ("major", "near-tie", "minor")
    kinds = ("generation", "top-1 flip", "probabilities")
    return [
        Change(
            f"specs/test_{i % 40}.py::test_case[{i}]",
            i % 3,
            kinds[i % 3],
            severities[i % 3],
            f"generation after 'prompt {i}': first diverging token {i % 20}: recorded [{i}] vs now [{i + 1}] " * 3,
        )
        for i in range(count)
    ]


def test_a_diff_of_five_thousand_changes_stays_under_the_comment_limit() -> None:
    changes = synthetic(5000)
    environments = [(f"embedded: field {i}", "old " * 20, "new " * 20) for i in range(300)]
    summaries = [f"  KL {i} at token {i} of 'some text'" for i in range(2000)]
    text = markdown.render(
        "lmbehave diff", changes, ["the dtype float32 → bfloat16: 5000 change(s)"], summaries, environments
    )
    assert len(text.encode()) <= markdown.COMMENT_BYTES
    assert text.startswith("**lmbehave diff: 5000 changes (1667 major, 1667 near-tie, 1666 minor), 1 root cause")
    assert "_Cut short or left out to stay under 60,000 bytes: " in text and "the HTML artifact has them" in text
    assert re.search(r"<summary>Flips \(3334\), the first \d{2,}</summary>", text)  # the worst, as many as fit


def test_a_small_diff_is_not_cut() -> None:
    text = markdown.render("lmbehave diff", synthetic(3), [], [], [])
    assert "_Cut" not in text and text.count("<details>") == 2  # the flips, the moved probabilities


def test_a_run_summary_of_many_failures_stays_under_a_mebibyte() -> None:
    failures = [
        (f"specs/test_{i}.py::test_x", "behaviour", "root cause: the weights changed " + "x" * 300) for i in range(9000)
    ]
    ties = [(f"specs/test_{i}.py::test_y", "NEAR-TIE: margin 0.0100 recorded " * 10) for i in range(3000)]
    text = markdown.run_summary(
        {"failed": 9000, "passed": 1}, {"specs/__lm_snapshots__/embedded": ""}, failures, ties, []
    )
    assert len(text.encode()) <= markdown.SUMMARY_BYTES
    assert text.startswith("**pytest-lmbehave: 9000 failed, 1 passed, 3000 near tie(s) within the noise; 1 root cause")


def rendered(text: str) -> str:
    cmarkgfm = pytest.importorskip("cmarkgfm", reason="cmarkgfm renders GitHub's markdown: pip install cmarkgfm")
    from cmarkgfm.cmark import Options

    return str(cmarkgfm.github_flavored_markdown_to_html(text, options=Options.CMARK_OPT_UNSAFE))


def test_github_renders_the_verdict_as_the_first_text_above_the_folded_details(tmp_path: Path) -> None:
    html = rendered(diff_markdown(tmp_path, "transformers-4.json", "transformers.json"))
    assert html.startswith("<p><strong>lmbehave diff: 13 changes")
    assert html.index("</strong>") < html.index("<details>")
    assert "<table>" in html and html.count("<details>") >= 2


PROBE = """<script>window.addEventListener('load', () => {
  const first = document.body.innerText.trim().split('\\n')[0];
  const details = document.querySelector('details');
  const verdict = document.querySelector('strong');
  document.body.dataset.first = first;
  document.body.dataset.above = String(!!(verdict.compareDocumentPosition(details) & Node.DOCUMENT_POSITION_FOLLOWING));
});</script>"""


def test_the_rendered_comment_shows_the_verdict_first_in_chromium(tmp_path: Path) -> None:
    """The markdown rendered as GitHub renders it, opened in headless Chromium (installed by `make test`): the first
    text a reader sees is the verdict, and it stands above every folded section. The screenshot is kept under
    build/ for a person to look at."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("headless Chromium is not installed: apt-get install chromium (make test installs it)")
    text = diff_markdown(tmp_path, "transformers-4.json", "transformers.json")
    page = tmp_path / "comment.html"
    page.write_text(f"<html><body>{rendered(text)}{PROBE}</body></html>", encoding="utf-8")
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,800"]
    done = subprocess.run(
        [*common, "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body is not None, done.stderr[-2000:]
    found = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    assert found["first"].startswith("lmbehave diff: 13 changes (11 major, 2 minor), 1 root cause: the tokenizer")
    assert found["above"] == "true"
    shot = Path(__file__).resolve().parent.parent / "build" / "pull-request-comment.png"
    shot.parent.mkdir(exist_ok=True)
    subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000


FAILING = """
import pytest


def test_a_behaviour_that_moved():
    raise AssertionError("1 difference(s)\\n  root cause: transformers 4.57.6 → 5.24.0 (same weights, same ids)\\n")


@pytest.mark.fact("tokenizer")
def test_a_fact():
    raise AssertionError("  1 difference(s) from the embedded snapshot:\\n    - [tokenizer] the text splits otherwise")


def test_a_passing_one():
    pass
"""


def test_the_job_summary_is_appended_once_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ci=FAILING)
    summary = pytester.path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    pytester._monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    assert result.ret == 1
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n")  # appended, never replaced
    assert text.count("**pytest-lmbehave:") == 1, text
    assert "**pytest-lmbehave: 2 failed, 1 passed; 1 root cause: transformers 4.57.6 → 5.24.0" in text
    assert "| `test_ci.py::test_a_fact` | fact | [tokenizer] the text splits otherwise |" in text


def test_the_job_summary_is_off_with_lm_summary_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ci=FAILING)
    summary = pytester.path / "summary.md"
    pytester._monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.runpytest_subprocess("-p", "no:randomly", "--lm-summary=off")
    assert not summary.exists()
    pytester.makeini("[pytest]\nlm_summary = off\n")
    pytester.runpytest_subprocess("-p", "no:randomly")
    assert not summary.exists()


def test_junit_xml_leads_each_failure_with_its_kind_and_root_cause(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ci=FAILING)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--junitxml=junit.xml")
    assert result.ret == 1
    messages = {
        case.get("name"): failure.get("message", "")
        for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
        for failure in case.iter("failure")
    }
    assert messages["test_a_behaviour_that_moved"].startswith(
        "[behaviour] root cause: transformers 4.57.6 → 5.24.0 (same weights, same ids)\n"
    )
    assert messages["test_a_fact"].startswith("[fact] [tokenizer] the text splits otherwise\n")
    assert "test_a_passing_one" not in messages


def test_without_junit_xml_a_failures_message_is_left_as_it_was(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ci=FAILING)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-rf")
    result.stdout.fnmatch_lines(["FAILED test_ci.py::test_a_behaviour_that_moved - AssertionError: 1 difference(s)"])
