"""Session settings built once from the option table (command line, ini keys, environment), then validated."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from . import defaults
from .errors import SettingsError
from .files import path_problem
from .options import OPTIONS, Lookup


def default_cache_dir() -> Path:
    """Where converted models live: $LMBEHAVE_CACHE, else the user's cache directory."""
    explicit = os.environ.get("LMBEHAVE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-lmbehave"


@dataclass(frozen=True)
class Settings:
    model: str = "embedded"
    model_named: bool = False  # given explicitly (so it must exist), not the default
    dtype: str = "float32"
    device: str = "cpu"
    engine: str = "transformers"  # --lm-engine: what computes an in-process model (llama.cpp reads GGUF files)
    threads: int = 1
    attention: str = "sdpa"
    seed: int = 0
    top_shown: int = defaults.TOP
    tolerance: float = defaults.TOLERANCE
    near_tie: float = defaults.NEAR_TIE
    strict: bool = False
    variant: str | None = None
    expect: str | None = None  # --lm-expect: the snapshot set the chosen model is held to (its own by default)
    observation_cache: bool = False
    drafts: bool = True
    server: str = ""  # --lm-server: already folded into ``model`` (URL#NAME)
    server_timeout: float = 300.0
    cache_dir: Path = Path()


def build_settings(lookup: Lookup) -> Settings:
    """Settings from ``lookup(option)``, which returns the value given for an option or None.

    The lookup decides precedence (command line, then ini, then environment); this function parses and checks.
    """
    cache_dir = default_cache_dir()
    if (cache_dir.exists() and not cache_dir.is_dir()) or path_problem(cache_dir / "entry") is not None:
        raise SettingsError(
            f"the cache folder {cache_dir} cannot be used ({path_problem(cache_dir / 'entry') or 'it is a file'}); "
            "point LMBEHAVE_CACHE at a directory (or unset it to use ~/.cache/pytest-lmbehave)"
        )
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {"cache_dir": cache_dir}
    for option in OPTIONS:
        if option.setting is None or option.setting not in known:
            continue
        found = lookup(option)
        if option.setting == "model":
            values["model_named"] = found not in (None, "")
        raw = option.default if found in (None, "") else found
        values[option.setting] = option.parse(option.flag, "" if raw is None else str(raw))
    server = str(values.get("server") or "")
    if server:
        if not server.startswith(("http://", "https://")):
            raise SettingsError(
                f"--lm-server={server!r} is not a URL; pass the server's base URL, e.g. http://127.0.0.1:8000/v1"
            )
        name = values["model"] if values.get("model_named") else ""
        if str(name).startswith(("http://", "https://")):
            raise SettingsError("--lm-server and a served --lm-model URL both name a server; pass one of them")
        values["model"], values["model_named"] = server + (f"#{name}" if name and "#" not in server else ""), True
    return Settings(**values)
