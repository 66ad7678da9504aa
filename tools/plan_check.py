"""Is the committed plan what the specs write? `make plan-check` (and `make portability`, in `make test`) runs `pytest
specs/ --lm-plan-update` on a copy of the committed plan and hands both here: equal bytes pass; otherwise each test
whose entry is stale (committed, no longer written: a test renamed or removed), missing (written, not committed) or
changed is named, and the exit status is 1, with the command that rewrites the plan.

    python tools/plan_check.py COMMITTED WRITTEN
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def tests_of(path: Path) -> dict[str, object]:
    try:
        tests = json.loads(path.read_text())["tests"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        sys.exit(f"plan-check: {path} is not a readable plan ({type(error).__name__}: {error})")
    return dict(tests)


def main(committed: Path, written: Path) -> int:
    if committed.read_bytes() == written.read_bytes():
        print(f"plan-check: {committed} is what the specs write ({len(tests_of(committed))} tests)")
        return 0
    old, new = tests_of(committed), tests_of(written)
    lines = [f"  stale (no such test any more): {name}" for name in sorted(old.keys() - new.keys())]
    lines += [f"  missing (not in the committed plan): {name}" for name in sorted(new.keys() - old.keys())]
    lines += [f"  changed: {name}" for name in sorted(old.keys() & new.keys()) if old[name] != new[name]]
    if not lines:
        lines = ["  the same entries, written in other bytes (order or layout)"]
    print(f"plan-check: {committed} is not what the specs write ({written}):", *lines, sep="\n")
    print(f"rewrite it with: pytest specs/ -n 2 --lm-plan-update   (or: cp {written} {committed})")
    return 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
