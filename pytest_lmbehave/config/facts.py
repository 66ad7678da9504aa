"""Facts learned once and read back without torch: a model file's sha256 (keyed by its path, size and mtime)
and what torch reports about this CPU (keyed by the torch build, the CPU's flags and the kernel variables).

With them, the environment fingerprint of an unchanged re-run is known before torch is imported, so a run whose
every observation is in ``--lm-cache`` never imports it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .files import write_atomically


def _where(cache_dir: Path, identity: dict[str, Any]) -> Path:
    name = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    return cache_dir / "facts" / f"{name}.json"


def recall(cache_dir: Path | None, identity: dict[str, Any]) -> Any:
    """The value stored for ``identity``; None when it was never learned (or there is no cache folder)."""
    if cache_dir is None:
        return None
    try:
        stored = json.loads(_where(cache_dir, identity).read_text(encoding="utf-8"))
        if stored["identity"] == identity:
            return stored["value"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def remembered(cache_dir: Path | None, identity: dict[str, Any], compute: Callable[[], Any]) -> Any:
    """The value stored for ``identity``, else ``compute()``, stored for next time (one small file per fact)."""
    found = recall(cache_dir, identity)
    if found is not None:
        return found
    value = compute()
    if cache_dir is not None:
        write_atomically(_where(cache_dir, identity), json.dumps({"identity": identity, "value": value}))
    return value


def forget(cache_dir: Path | None, identity: dict[str, Any]) -> None:
    """Drop what was stored for ``identity`` (a fact found to have changed)."""
    if cache_dir is not None:
        _where(cache_dir, identity).unlink(missing_ok=True)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path, cache_dir: Path | None) -> str:
    """A file's sha256, computed again only when its path, size or mtime changed."""
    status = path.stat()
    identity = {"fact": "sha256", "path": str(path.resolve()), "size": status.st_size, "mtime": status.st_mtime_ns}
    return str(remembered(cache_dir, identity, lambda: sha256(path)))


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("flags")), "")
    except OSError:
        return ""


def torch_build() -> dict[str, Any]:
    """Which torch would be imported, without importing it: its location and when it was installed."""
    spec = importlib.util.find_spec("torch")
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    return {"torch": str(origin), "installed": origin.stat().st_mtime_ns if origin and origin.exists() else None}


def cpu_facts(
    cache_dir: Path | None, variables: dict[str, str], compute: Callable[[], dict[str, str]]
) -> dict[str, str]:
    """What torch reports about this CPU (its kernel level, BLAS and oneDNN builds), learned once per torch build,
    CPU and kernel-selecting variables."""
    identity = {"fact": "cpu", **torch_build(), "flags": flags_digest()}
    identity["variables"] = variables
    return dict(remembered(cache_dir, identity, compute))


def flags_digest() -> str:
    """This CPU's instruction-set flags, as a digest (a fact learned on one CPU is not another's)."""
    return hashlib.sha256(cpu_flags().encode()).hexdigest()
