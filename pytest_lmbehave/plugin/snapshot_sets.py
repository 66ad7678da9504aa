"""The snapshot sets on disk: where each model's set (and its variants) lives, which sets a run finds, which
variant it compares against, and what an interrupted update left behind.

A model's set is ``<test dir>/__lm_snapshots__/<model slug>/``; a set recorded in another environment is a
variant, ``<model slug>@<name>/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .. import backends
from ..config import engines, environment

SETS_DIRNAME = "__lm_snapshots__"


def damage(location: str) -> str | None:
    """Why a snapshot file is damaged (it ends inside a record), or None when it is whole or absent."""
    path = Path(location)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.strip() or text.rstrip("\n").endswith("# ---"):
        return None
    names = re.findall(r"^# name: (.*)$", text, flags=re.M)
    complete = names[:-1] if names else []
    last = f"the last whole record is {complete[-1]!r}" if complete else "no record in it is whole"
    location = os.path.relpath(location) if path.resolve().is_relative_to(Path.cwd()) else location
    return (
        f"{location} is damaged: it ends in the middle of a record ({last}); restore it with "
        f"`git checkout -- {location}`, or record it again with `pytest --snapshot-update`"
    )


def remove_stale_sidecars(folder: Path) -> list[Path]:
    """Lock and staging files that an interrupted update left beside the sets (``x.ambr.lock``, ``x.ambr.tmp``);
    a lock another process holds is left alone."""
    import fcntl

    removed = []
    for path in sorted(folder.rglob("*.ambr.*")) if folder.is_dir() else []:
        if path.suffix not in (".lock", ".tmp") or not path.is_file():
            continue
        try:
            with open(path, "a") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink()
                removed.append(path)
        except OSError:
            continue  # held by a running writer
    return removed


VARIANT = "@"  # a set recorded in another environment: __lm_snapshots__/<model>@<variant>/
# How much each field counts when a run picks the recorded variant closest to its environment.
VARIANT_WEIGHTS = {"transformers_major": 100, "dtype": 20, "device": 20, "torch_minor": 10, "tokenizers_minor": 5}
VARIANT_WEIGHTS |= {"transformers": 2, "torch": 1, "cpu_capability": 1, "blas": 1, "gpu": 1, "engine": 50}
# Kernels that compute other numbers on each SIMD level (each engine says when its do: backends.by_level). Their
# sets are kept per level (embedded@llama.cpp is AVX2's, embedded@bf16 AVX-512's with oneDNN's avx512_core_bf16): the
# level, with oneDNN's where a 16-bit fingerprint names it (backends/transformers/hardware.py), outweighs the rest.
VARIANT_WEIGHTS |= {"kernels": 30}
VARIANT_WEIGHTS |= {"model_sha256": 200}  # new weights held to a set: the variant recorded with these very weights


def _derived(environment: dict[str, str]) -> dict[str, str]:
    found = {"engine": engines.DEFAULT, **environment}  # sets recorded before served models name no engine
    if "cpu_capability" in environment and backends.by_level(found):
        found["kernels"] = "+".join(environment[k] for k in ("cpu_capability", "onednn_isa") if k in environment)
    for key, parts in (("transformers", 1), ("torch", 2), ("tokenizers", 2)):
        if key in environment:
            found[f"{key}_{'major' if parts == 1 else 'minor'}"] = ".".join(environment[key].split(".")[:parts])
    return found


def variants(test_dir: Path, slug: str) -> dict[str, Path]:
    """A model's recorded sets beside a test module: '' for the plain set, else the variant's name."""
    sets = test_dir / SETS_DIRNAME
    found = {"": sets / slug} if (sets / slug).is_dir() else {}
    for folder in sorted(sets.glob(f"{slug}{VARIANT}*")) if sets.is_dir() else []:
        if folder.is_dir():
            found[folder.name.split(VARIANT, 1)[1]] = folder
    return found


def recorded_environment(folder: Path) -> dict[str, str]:
    """The environment a set was recorded in, from the first `env` line of its files ({} when none)."""
    for path in sorted(folder.glob("*.ambr")):
        match = re.search(r'^  env: "(.*)"$', path.read_text(encoding="utf-8", errors="replace"), flags=re.M)
        if match:
            return environment.parse_line(match.group(1))
    return {}


def choose_variant(test_dir: Path, slug: str, now: dict[str, str], named: str | None) -> tuple[str, str]:
    """The set a run compares against (its folder name) and why: the one ``--lm-variant`` names, else the variant
    whose recorded environment matches this run's best (the plain set on a tie)."""
    if named:
        folder = slug if named == "default" else f"{slug}{VARIANT}{named}"
        return folder, f"named by --lm-variant={named}"
    found = variants(test_dir, slug)
    if not found:
        return slug, ""
    current = _derived(now)
    recorded_in = {name: _derived(recorded_environment(folder)) for name, folder in found.items()}

    def score(name: str) -> int:
        recorded = recorded_in[name]
        return sum(w for key, w in VARIANT_WEIGHTS.items() if key in recorded and recorded[key] == current.get(key))

    best = max(found, key=lambda name: (score(name), name == ""))
    recorded = recorded_in[best]
    differing = [
        k
        for k in ("engine", "transformers", "torch", "tokenizers", "dtype", "device", "cpu_capability", "onednn_isa")
        if recorded.get(k) != current.get(k)
    ]
    moved = environment.weights_moved(recorded, current)
    weights = f"recorded with weights {moved[0][:7]}…, now {moved[1][:7]}…" if moved else ""
    if not differing:
        return found[best].name, weights or "recorded in this run's environment"
    releases = minor_releases(recorded, current, differing)
    closest = releases or "the recorded variant closest to this run; it differs in " + ", ".join(differing)
    if "onednn_isa" in differing and "onednn_isa" in recorded:
        closest += (
            f" (oneDNN's 16-bit kernels sum otherwise on {current.get('onednn_isa', 'this CPU')}: "
            f"ONEDNN_MAX_CPU_ISA={recorded['onednn_isa'].upper()} runs the recorded ones where this CPU has them, "
            "or record this level's set: --snapshot-update --lm-variant NAME)"
        )
    return found[best].name, f"{weights}; {closest}" if weights else closest


SAME_MAJOR = "same major, no variant of its own"  # a minor or patch release: information, not a warning


def minor_releases(recorded: dict[str, str], now: dict[str, str], differing: list[str]) -> str | None:
    """'recorded on transformers 5.24.0, running 5.25.0: same major, no variant of its own' when every difference
    is a package's release within the same major version; None otherwise (another major, dtype, engine, CPU...)."""
    packages = ("transformers", "torch", "tokenizers")
    if not differing or any(k not in packages or k not in recorded or k not in now for k in differing):
        return None
    if any(recorded[k].split(".")[0] != now[k].split(".")[0] for k in differing):
        return None
    was = ", ".join(f"{k} {recorded[k]}" for k in differing)
    running = ", ".join(now[k] if len(differing) == 1 else f"{k} {now[k]}" for k in differing)
    return f"recorded on {was}, running {running}: {SAME_MAJOR}"


def weights_variant(test_dir: Path, slug: str, now: dict[str, str]) -> str | None:
    """Where --snapshot-update records new weights held to ``slug``'s set: a variant named after them
    (``weights-<sha>``), unless the set was recorded with these very weights (or holds nothing yet)."""
    plain = test_dir / SETS_DIRNAME / slug
    if not plain.is_dir() or environment.weights_moved(recorded_environment(plain), now) is None:
        return None
    return f"weights-{now['model_sha256'][:8]}"


def set_folders(invocation_dir: Path, args: Iterable[str]) -> list[Path]:
    """The snapshot-set folders under the paths a run was given (each ``__lm_snapshots__``)."""
    folders: set[Path] = set()
    for arg in list(args) or [str(invocation_dir)]:
        path = (invocation_dir / arg.split("::")[0]).resolve()
        start = path if path.is_dir() else path.parent
        if (start / SETS_DIRNAME).is_dir():
            folders.add(start / SETS_DIRNAME)
        if path.is_dir():
            for here, dirs, _ in os.walk(start):  # hidden folders (.venv, .git) are never entered
                dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
                if SETS_DIRNAME in dirs:
                    folders.add(Path(here) / SETS_DIRNAME)
    return sorted(folders)


def spec_of_set(name: str) -> str | None:
    """The model spec a set's folder name stands for: 'embedded' or a hub id ('owner--name'); None for local paths."""
    if name == "embedded":
        return name
    owner, sep, repo = name.partition("--")
    return f"{owner}/{repo}" if sep and owner and repo else None


def models_with_sets(folder: Path, chosen: str, chosen_slug: str) -> list[tuple[str, str]]:
    """(spec, set name) of the chosen model, then of every other model with a set beside a test module."""
    found = [(chosen, chosen_slug)]
    sets = folder / SETS_DIRNAME
    seen = {chosen_slug}
    for entry in sorted(sets.iterdir()) if sets.is_dir() else []:
        name = entry.name.split(VARIANT, 1)[0]  # a model's variants run as that one model
        spec = spec_of_set(name)
        if spec is None or name in seen:
            continue
        seen.add(name)
        found.append((spec, name))
    return found
