"""The code blocks of README.md and docs/ run as tests (docs/_ext/docs_examples.py): ``pytest README.md docs/``.

Sybil comes with the ``docs`` extra; without it (the transformers 4 venv) nothing here is collected.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

try:
    import docs_examples
except ImportError:  # sybil is missing: README.md and docs/ are not collected
    pass
else:
    from docs_examples import (
        pytest_configure,
        pytest_report_header,
        pytest_runtest_logreport,
        pytest_runtest_setup,
        pytest_terminal_summary,
    )

    pytest_collect_file = docs_examples.collector(ROOT)
    __all__ = [
        "pytest_collect_file",
        "pytest_configure",
        "pytest_report_header",
        "pytest_runtest_logreport",
        "pytest_runtest_setup",
        "pytest_terminal_summary",
    ]
