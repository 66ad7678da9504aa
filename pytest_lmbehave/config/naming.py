"""How a model is named without touching it: the spec a user writes, turned into a stable folder-safe name (its
snapshot set's, its report's); every layer knows a model by it."""

from __future__ import annotations

import re
from pathlib import Path

EMBEDDED = "embedded"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def slug(spec: str) -> str:
    """A stable, file-system-safe name for a model spec, computed without touching the model. A served model
    (``http://host:8000/v1#name``) is named by its served name: a served copy of ``embedded`` compares against the
    ``embedded`` set (same weights, other engine)."""
    text = spec.strip()
    if text.startswith(("http://", "https://")):
        name = text.partition("#")[2]
        return slug(name) if name else "served"
    if text == EMBEDDED:
        return EMBEDDED
    if _HUB_ID.match(text) and not Path(text).exists():
        return text.replace("/", "--")
    path = Path(text)
    name = path.stem if path.suffix == ".gguf" else path.name
    return re.sub(r"[^\w.-]+", "_", name) or "model"
