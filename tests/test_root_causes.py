"""A diff's root cause names what moved when the same ids gave other numbers: the engine and its numbers, the dtype,
transformers, torch, the kernels, or nothing (the same stack, other numbers). The reports in tests/reports are real:
specs/test_forward_pass.py and specs/test_scoring.py on the embedded model, recorded with transformers (float32),
with the simulated default kernels (ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE) and with llama.cpp (Q4_1).
A transformers move and a torch move could not be recorded here (one torch, one transformers 5): those are the real
pair of kernels, its new environment that of the old run but for the one version."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_lmbehave.config import environment
from pytest_lmbehave.observations.differences import Difference
from pytest_lmbehave.reports.causes import UNMOVED, root_cause

REPORTS = Path(__file__).resolve().parent / "reports"
TIGHT = ["--prob", "1e-9", "--kl", "1e-9", "--score", "1e-9"]  # float noise counts: every moved number is a change


def cause(old: Path, new: Path, *more: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_lmbehave", "diff", str(old), str(new), *TIGHT, *more],
        capture_output=True,
        text=True,
    )
    lines = done.stdout.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith(("where the changes come from", "root causes")))
    return lines[heading + 1].strip(), done.stdout


def edited(tmp_path: Path, report: Path, like: Path, **fields: str) -> Path:
    """``report``'s observations under ``like``'s environment, with ``fields`` set."""
    document = json.loads(report.read_text())
    (model, env), *_ = json.loads(like.read_text())["environments"].items()
    document["environments"] = {model: {**env, **fields}}
    path = tmp_path / f"{report.stem}-edited.json"
    path.write_text(json.dumps(document))
    return path


def test_an_engine_change_is_named_with_both_engines_and_their_numbers() -> None:
    line, _ = cause(REPORTS / "transformers.json", REPORTS / "llama.cpp.json")
    assert re.fullmatch(
        r"the engine and its numbers: transformers float32 → llama\.cpp \S+ Q4_1 \(same weights, same ids\): "
        r"\d+ change\(s\)",
        line,
    ), line


def test_a_kernel_move_is_named_field_by_field() -> None:
    line, _ = cause(REPORTS / "transformers.json", REPORTS / "transformers-default-kernels.json")
    assert line.startswith("the kernels: ") and "aten_cpu_capability unset → default" in line, line
    assert "mkl_cbwr unset → COMPATIBLE" in line and line.endswith("change(s)") and "(same weights, same ids)" in line


@pytest.mark.parametrize(("field", "version"), [("transformers", "5.25.0"), ("torch", "2.14.1")])
def test_a_version_move_is_named_with_what_stayed(field: str, version: str, tmp_path: Path) -> None:
    old = REPORTS / "transformers.json"
    new = edited(tmp_path, REPORTS / "transformers-default-kernels.json", old, **{field: version})
    before = json.loads(old.read_text())["environments"]["embedded"][field]
    line, _ = cause(old, new)
    assert line.startswith(f"{field} {before} → {version} (same weights, same ids, same kernels): "), line


def test_nothing_moved_is_a_finding_of_its_own(tmp_path: Path) -> None:
    old = REPORTS / "transformers.json"
    new = edited(tmp_path, REPORTS / "transformers-default-kernels.json", old)
    line, _ = cause(old, new)
    assert line.startswith(UNMOVED), line


def test_the_html_heads_with_the_same_line(tmp_path: Path) -> None:
    line, _ = cause(REPORTS / "transformers.json", REPORTS / "llama.cpp.json", "--html", str(tmp_path / "d.html"))
    assert line.replace("→", "&rarr;") in (tmp_path / "d.html").read_text() or line in (tmp_path / "d.html").read_text()


def test_a_snapshot_failure_names_what_moved_as_its_root_cause() -> None:
    def line(env: dict[str, Any]) -> str:
        return " ".join(f"{k}={v}" for k, v in env.items())

    env = json.loads((REPORTS / "transformers.json").read_text())["environments"]["embedded"]
    moved = Difference("probability", "probability of ' great' moved", size=0.01)
    found = list(root_cause([line(env)], line({**env, "torch": "2.14.1"}), [moved]))
    assert found == [f"root cause: torch {env['torch']} → 2.14.1 (same weights, same ids, same kernels): 1 change(s)"]
    assert environment.weights_moved(env, env) is None


PROBE = """<script>addEventListener('load', () => {
  const rows = [...document.querySelectorAll('table.changes tr, table:last-of-type tr')];
  const right = Math.max(...rows.map(row => row.lastElementChild.getBoundingClientRect().right));
  document.body.dataset.right = String(right);
  document.body.dataset.width = String(innerWidth);
  document.body.dataset.first = document.querySelector('h1').nextElementSibling.textContent;
});</script>"""


def test_the_page_reads_without_a_horizontal_scroll_at_1400_pixels(tmp_path: Path) -> None:
    """Rendered by headless Chromium (installed by `make test`): the explanation column's right edge lies inside a
    1,400-pixel window, and the root cause is the first line under the title."""
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("headless Chromium is not installed: apt-get install chromium (make test installs it)")
    line, _ = cause(REPORTS / "transformers.json", REPORTS / "llama.cpp.json", "--html", str(tmp_path / "d.html"))
    page = (tmp_path / "d.html").read_text(encoding="utf-8")
    (tmp_path / "probe.html").write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
         "--virtual-time-budget=2000", "--dump-dom", (tmp_path / "probe.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body is not None, done.stderr[-2000:]
    found = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    assert float(found["right"]) <= float(found["width"]) == 1400, found
    assert found["first"] == line
