"""Sphinx configuration: furo, MyST markdown, the reference generated from the code (docs/_ext/lmbehave_docs.py).

Built offline by ``make docs`` with warnings as errors and nitpicky cross-references: Python's and pytest's
inventories are vendored under ``_inventories/`` (copied from sphobjinv's test resources; their age only limits
which names resolve), and the few references no vendored inventory holds are listed below, one reason a line.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import pytest_lmbehave  # noqa: E402

project = "pytest-lmbehave"
author = "the pytest-lmbehave authors"
copyright = "2026, the pytest-lmbehave authors"
release = version = pytest_lmbehave.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "lmbehave_docs",
]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "examples", "conftest.py", "test_*.py"]
html_theme = "furo"
html_title = f"pytest-lmbehave {release}"
html_extra_path = ["examples"]
html_static_path: list[str] = []

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(HERE / "_inventories" / "python.inv")),
    "pytest": ("https://docs.pytest.org/en/stable", str(HERE / "_inventories" / "pytest.inv")),
}
intersphinx_timeout = 1

nitpicky = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
python_use_unqualified_type_names = True

# References that no vendored inventory resolves, one reason a line; nothing is ignored wholesale.
nitpick_ignore = [
    ("py:class", "torch.Tensor"),  # torch's objects.inv is not among the vendored ones (none is to be had offline)
    ("py:class", "numpy.ndarray"),  # numpy's neither; Distribution.logprobs and Draws.counts are arrays
    ("py:class", "Backend"),  # Runtime's constructor takes an engine's backend: internal, see contributing's map
    ("py:class", "ObservationStore"),  # Runtime's --lm-cache store: internal, idem
    ("py:class", "SharedBatches"),  # Runtime's xdist batch exchange: internal, idem
]
nitpick_ignore_regex: list[tuple[str, str]] = []
smartquotes = False  # option names keep their two hyphens (--lm-model, not an en dash)
