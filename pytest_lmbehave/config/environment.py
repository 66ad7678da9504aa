"""The environment fingerprint: every software, hardware and numerics setting that can change what a model computes.

Stored with snapshots and reports, part of the `--lm-cache` key, printed in the header, and named field by field
when a failure's environment differs from the recorded one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from .defaults import DECODING_VERSION

# Variables that select other CPU kernels (and so other last bits) in torch, MKL and oneDNN.
NUMERICS_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")
PACKAGES = {"torch": "torch", "transformers": "transformers", "tokenizers": "tokenizers", "gguf": "gguf"}
# What the numerics probe learned (backends/transformers/invariance.py): whether a batch or a path changes a prompt's
# numbers, how far its top candidates move between them (nats: the dtype's measured noise floor), and the power of
# two at or below the top logit (where the dtype's step is read).
INVARIANT, NOISE, LOGIT_SCALE = "batch_invariant", "noise", "logit_scale"
# Fields of a snapshot's `env` line, in order (values never hold spaces).
LINE_FIELDS = (
    "model_sha256",
    "generation",
    "engine",
    "engine_version",
    "served_model",
    "dtype",
    "device",
    "threads",
    "attention",
    INVARIANT,
    NOISE,
    LOGIT_SCALE,
    "torch",
    "transformers",
    "tokenizers",
    "gguf",
    "lmbehave",
    "decoding",
    "cpu_capability",
    "blas",
    "onednn_isa",
    "gpu",
    *(name.lower() for name in NUMERICS_VARIABLES),
)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def software() -> dict[str, str]:
    """Versions from package metadata (no imports), the plugin's own and its decoding algorithm's."""

    versions = {key: _version(name) for key, name in PACKAGES.items()}
    versions["lmbehave"] = _version("pytest-lmbehave")
    versions["decoding"] = DECODING_VERSION
    return versions


def numerics_variables() -> dict[str, str]:
    """The kernel-selecting variables, lower-cased, 'unset' where unset: e.g. {'mkl_cbwr': 'COMPATIBLE', ...}."""
    return {name.lower(): os.environ.get(name) or "unset" for name in NUMERICS_VARIABLES}


def cpu_without_torch() -> str:
    """The CPU kernel level torch will pick, told from the OS's CPU flags (for the header, which imports no torch)."""
    forced = os.environ.get("ATEN_CPU_CAPABILITY")
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        flags = []
    level = "AVX512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "DEFAULT" if flags else "unknown"
    return f"{forced} (forced)" if forced else level


def line(fingerprint: dict[str, str]) -> str:
    """A snapshot's one-line environment: the fingerprint fields that exist, as key=value."""
    return " ".join(f"{key}={fingerprint[key]}" for key in LINE_FIELDS if key in fingerprint)


def parse_line(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in str(text).split() if "=" in part)


# Fields written only when they hold something: absent means this value, on either side.
WHEN_ABSENT = {"generation": "none"}


def weights_moved(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> tuple[str, str] | None:
    """The weights' hashes (recorded, now) when both are known and differ: the model's bytes moved."""
    old, new = str(recorded.get("model_sha256", "unknown")), str(now.get("model_sha256", "unknown"))
    return None if "unknown" in (old, new) or old == new else (old, new)


def differences(recorded: dict[str, Any], now: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The fields whose values differ ("threads 2 -> 1"), and those the recording does not hold at all."""
    known = {**WHEN_ABSENT, **recorded} if recorded else {}
    fallback = {**WHEN_ABSENT, **now}
    changed = [
        f"{key} {known[key]} -> {fallback.get(key, 'unset')}"
        for key in sorted(set(known) | set(fallback))
        if key in known and known[key] != fallback.get(key, "unset")
    ]
    unrecorded = sorted(key for key in now if key not in known)
    return changed, unrecorded


def describe_differences(recorded: dict[str, Any], now: dict[str, Any]) -> str:
    changed, unrecorded = differences(recorded, now)
    if not changed and not unrecorded:
        return "environment: the same as when the snapshot was recorded"
    parts = []
    if changed:
        parts.append("environment differs from the recording: " + ", ".join(changed))
    else:
        parts.append("environment: no recorded field differs")
    if unrecorded:
        parts.append("not recorded then: " + ", ".join(unrecorded))
    return "; ".join(parts)
