"""The report file's format (``--lm-report``), readable without pytest: ``lmbehave diff`` loads reports with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config.errors import LMBehaveError

FORMAT = "pytest-lmbehave report"
VERSION = 1


class ReportError(LMBehaveError):
    """A report that cannot be compared: missing, truncated or not ours."""


def load_report(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ReportError(f"{path}: no such report; write one with `pytest specs/ --lm-report {path}`")
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ReportError(
            f"{path} is not valid JSON ({error}); it may be truncated: write it again with --lm-report"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ReportError(
            f'{path} is not a pytest-lmbehave report (no "format": "{FORMAT}"); pass files written by --lm-report'
        )
    if document.get("version") != VERSION:
        raise ReportError(
            f"{path} is a version {document.get('version')} report; this lmbehave reads version {VERSION}"
        )
    if not isinstance(document.get("observations"), dict):
        raise ReportError(f"{path} has no observations table; write it again with --lm-report")
    return document
