"""Under xdist, --snapshot-update writes what a serial update writes, deletes only unused snapshots, truncates nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

MANY = """
import pytest

PROMPTS = ["hello", "hello hello", "Shakespeare was a", "The best places", "Review: good game.", "world"]

@pytest.mark.parametrize("n", range({count}))
def test_many(lm, lm_snapshot, n):
    prompt = PROMPTS[n % len(PROMPTS)] + " " * (n // len(PROMPTS))
    assert lm.generate(prompt, max_new_tokens=3) == lm_snapshot
    assert lm.next_token(prompt) == lm_snapshot
"""


def set_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "__lm_snapshots__").rglob("*")) if p.is_file()}


@pytest.fixture
def in_folder(pytester: pytest.Pytester, tiny_model: Path):  # type: ignore[no-untyped-def]
    def run(folder: str, count: int, *args: str) -> pytest.RunResult:
        target = pytester.path / folder
        target.mkdir(exist_ok=True)
        (target / "test_many.py").write_text(MANY.replace("{count}", str(count)))
        return pytester.runpytest_subprocess(
            str(target), "-p", "no:randomly", f"--lm-model={tiny_model}", "--snapshot-update", *args
        )

    return run


def test_a_parallel_update_writes_exactly_what_a_serial_update_writes(in_folder, pytester: pytest.Pytester) -> None:  # type: ignore[no-untyped-def]
    in_folder("serial", 60, "-p", "no:xdist").assert_outcomes(passed=60)
    in_folder("parallel", 60, "-n", "2").assert_outcomes(passed=60)
    serial, parallel = set_files(pytester.path / "serial"), set_files(pytester.path / "parallel")
    assert list(parallel) == ["test_many.ambr"]  # no lock or staging sidecars left
    assert parallel == serial
    assert serial["test_many.ambr"].count(b"# name: ") == 120


def test_a_parallel_update_deletes_only_the_snapshots_no_test_uses_any_more(
    in_folder, pytester: pytest.Pytester
) -> None:  # type: ignore[no-untyped-def]
    in_folder("parallel", 60, "-n", "2").assert_outcomes(passed=60)
    in_folder("serial", 60, "-p", "no:xdist").assert_outcomes(passed=60)
    result = in_folder("parallel", 40, "-n", "2")
    result.assert_outcomes(passed=40)
    result.stdout.fnmatch_lines(["*80 snapshots passed. 40 unused snapshots deleted.*"])
    kept = set_files(pytester.path / "parallel")["test_many.ambr"]
    assert kept.count(b"# name: ") == 80
    full = set_files(pytester.path / "serial")["test_many.ambr"].decode()
    for block in kept.decode().split("# ---\n")[:-1]:
        assert block.split("# name: ")[-1] in full  # every kept entry is whole and unchanged
