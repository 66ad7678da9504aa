"""The real specs give the same observations with -p no:xdist, -n 0, -n 2, reversed and shuffled order, and
with no request plan at all (every request computed when asked, one at a time)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SPECS = Path(__file__).resolve().parent.parent / "specs"
REVERSE_CONFTEST = """
import os

def pytest_collection_modifyitems(items):
    if os.environ.get("LMBEHAVE_TEST_REVERSE"):
        items.reverse()
"""
# A batch of another shape may move the last bits of a float, never an id or a text. Records round margins to
# 3 decimals, so one rounding step is allowed there.
FLOAT_TOLERANCE = 2e-4
MARGIN_TOLERANCE = 1.5e-3


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= FLOAT_TOLERANCE
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        margins = close_margins(a.get("margins", []), b.get("margins", []))
        return a.keys() == b.keys() and margins and all(close(a[k], b[k]) for k in a if k != "margins")
    return bool(a == b)


def close_margins(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= MARGIN_TOLERANCE for x, y in zip(a, b))


@pytest.fixture(scope="module")
def spec_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("specs-copy")
    shutil.copytree(SPECS, folder / "specs", ignore=shutil.ignore_patterns("__pycache__", "HuggingFaceTB--*"))
    (folder / "specs" / "conftest.py").write_text(REVERSE_CONFTEST)
    return folder


MODES = {
    "no-xdist": ["-p", "no:xdist", "-p", "no:randomly"],
    "n0": ["-n", "0", "-p", "no:randomly"],
    "n2": ["-n", "2", "-p", "no:randomly"],
    "reversed": ["-p", "no:xdist", "-p", "no:randomly"],
    "shuffled-n2": ["-n", "2", "-p", "randomly", "-p", "no:cacheprovider", "--randomly-seed=12345"],
    "no-plan": ["-p", "no:xdist", "-p", "no:randomly", "--lm-plan=none"],
}
PLAN = "--lm-plan=specs/lmbehave-plan.json"  # the repository's plan, copied with the specs


def test_every_observation_is_the_same_in_every_mode_and_order(spec_copy: Path) -> None:
    reports: dict[str, dict[str, Any]] = {}
    for mode, args in MODES.items():
        env = {**os.environ, "LMBEHAVE_TEST_REVERSE": "1" if mode == "reversed" else ""}
        path = spec_copy / f"{mode}.json"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "specs", f"--lm-report={path}", "-q", PLAN, *args],
            cwd=spec_copy,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"{mode}:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
        assert "snapshots passed" in done.stdout and "snapshot" in done.stdout
        reports[mode] = json.loads(path.read_text())["observations"]
    baseline = reports["no-xdist"]
    assert sum(len(v) for v in baseline.values()) > 100
    for mode, observed in reports.items():
        assert observed.keys() == baseline.keys(), mode
        for test, records in baseline.items():
            assert close(observed[test], records), f"{mode} differs from a serial run in {test}"
