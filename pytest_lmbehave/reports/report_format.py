"""The report file's format (``--lm-report``): written here from what a run collected, and read here, without
pytest, by ``lmbehave diff``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config.errors import LMBehaveError
from ..config.files import write_atomically

FORMAT = "pytest-lmbehave report"
VERSION = 1


class ReportError(LMBehaveError):
    """A report that cannot be compared: missing, truncated or not ours."""


def write_report(
    path: Path,
    environments: dict[str, dict[str, str]],
    processes: list[dict[str, Any]],
    observations: dict[str, list[dict[str, Any]]],
    skipped: dict[str, str],
    kinds: dict[str, str] | None = None,
    profile: dict[str, str] | None = None,
) -> None:
    """One report, whole or not at all: each table sorted, so that the same run writes the same bytes. ``kinds``: each
    test's kind of spec (invariant, fact, behaviour); ``profile``: the behaviours a model without a set did not show."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "environments": dict(sorted(environments.items())),
        "processes": sorted(processes, key=lambda p: str(p["process"])),
        "observations": dict(sorted(observations.items())),
        "skipped": dict(sorted(skipped.items())),
        "kinds": dict(sorted((kinds or {}).items())),
        "profile": dict(sorted((profile or {}).items())),
    }
    write_atomically(path, json.dumps(document, indent=1, ensure_ascii=False, sort_keys=False) + "\n")


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
