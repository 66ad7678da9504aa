"""Session settings built once from options, ini keys and environment variables, then validated."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import defaults
from .errors import SettingsError
from .files import path_problem

DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("cpu", "cuda", "mps")
ATTENTION = ("sdpa", "eager")
DEFAULT_MODEL = "embedded"
DEFAULT_SEED = 0


def default_cache_dir() -> Path:
    """Where converted models live: $LMBEHAVE_CACHE, else the user's cache directory."""
    explicit = os.environ.get("LMBEHAVE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-lmbehave"


@dataclass(frozen=True)
class Settings:
    model: str = DEFAULT_MODEL
    dtype: str = "float32"
    device: str = "cpu"
    threads: int = 1
    attention: str = "sdpa"
    seed: int = DEFAULT_SEED
    top_shown: int = defaults.TOP
    tolerance: float = defaults.TOLERANCE
    near_tie: float = defaults.NEAR_TIE
    strict: bool = False
    variant: str | None = None
    observation_cache: bool = False
    cache_dir: Path = Path()


def _as_int(name: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(
            f"{name}={value!r} is not an integer; pass a whole number such as {name}={minimum}"
        ) from None
    if number < minimum:
        raise SettingsError(f"{name}={number} is too small; it must be at least {minimum}")
    return number


def _as_float(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a number; pass e.g. {name}=0.001") from None
    if not number >= 0:
        raise SettingsError(f"{name}={number} must be a number >= 0")
    return number


def _as_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={value!r} is not a boolean; use true or false")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} is not supported; choose one of: {', '.join(allowed)}")
    return value


def _variant(name: str) -> str | None:
    name = name.strip()
    if name and not re.fullmatch(r"[\w.-]+", name):
        raise SettingsError(f"--lm-variant={name!r} must be a folder-safe name (letters, digits, '.', '-', '_')")
    return name or None


def build_settings(get: Callable[[str, str, str | None], Any]) -> Settings:
    """Build settings from a lookup ``get(option_name, ini_name, env_name)`` returning a string or None.

    The lookup decides precedence (command line, then ini, then environment); this function only validates.
    """

    def value(option: str, ini: str, env: str | None, default: str) -> str:
        found = get(option, ini, env)
        return default if found in (None, "") else str(found)

    cache_dir = default_cache_dir()
    if (cache_dir.exists() and not cache_dir.is_dir()) or path_problem(cache_dir / "entry") is not None:
        raise SettingsError(
            f"the cache folder {cache_dir} cannot be used ({path_problem(cache_dir / 'entry') or 'it is a file'}); "
            "point LMBEHAVE_CACHE at a directory (or unset it to use ~/.cache/pytest-lmbehave)"
        )
    model = value("lm_model", "lm_model", "LMBEHAVE_MODEL", DEFAULT_MODEL).strip()
    if not model:
        raise SettingsError("--lm-model is empty; pass 'embedded', a directory, a .gguf file or a hub id")
    device = _one_of("--lm-device", value("lm_device", "lm_device", None, "cpu"), DEVICES)
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SettingsError(
                "--lm-device=cuda was asked for, but torch sees no CUDA device "
                f"(torch {torch.__version__}); drop the option to run on the CPU"
            )
    if device == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise SettingsError("--lm-device=mps was asked for, but MPS is not available; use --lm-device=cpu")
    return Settings(
        model=model,
        dtype=_one_of("--lm-dtype", value("lm_dtype", "lm_dtype", None, "float32"), DTYPES),
        device=device,
        threads=_as_int("--lm-threads", value("lm_threads", "lm_threads", None, "1"), 1),
        attention=_one_of("--lm-attention", value("lm_attention", "lm_attention", None, "sdpa"), ATTENTION),
        seed=_as_int("--lm-seed", value("lm_seed", "lm_seed", None, str(DEFAULT_SEED)), 0),
        top_shown=_as_int("--lm-top", value("lm_top", "lm_top", None, str(defaults.TOP)), 1),
        tolerance=_as_float("--lm-tolerance", value("lm_tolerance", "lm_tolerance", None, str(defaults.TOLERANCE))),
        near_tie=_as_float("--lm-near-tie", value("lm_near_tie", "lm_near_tie", None, str(defaults.NEAR_TIE))),
        strict=_as_bool("--lm-strict", value("lm_strict", "lm_strict", None, "false")),
        variant=_variant(value("lm_variant", "lm_variant", None, "")),
        observation_cache=_as_bool("--lm-cache", value("lm_cache", "lm_cache", None, "false")),
        cache_dir=cache_dir,
    )
