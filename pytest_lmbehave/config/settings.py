"""Session settings built once from the option table (command line, ini keys, environment), then validated."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

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


def _default(setting: str) -> Any:
    """A setting's default, as the option table writes it (parsed as a given value would be)."""
    [option] = [o for o in OPTIONS if o.setting == setting]
    return option.parse(option.flag, option.default or "")


@dataclass(frozen=True)
class Settings:
    """What a session runs with. Each default is its option's, read from the option table (``options.OPTIONS``)."""

    model: str = _default("model")
    model_named: bool = False  # given explicitly (so it must exist), not the default
    dtype: str = _default("dtype")
    device: str = _default("device")
    engine: str = _default("engine")  # --lm-engine: what computes an in-process model (a row of config/engines.py)
    threads: int = _default("threads")
    attention: str = _default("attention")
    seed: int = _default("seed")
    top_shown: int = _default("top_shown")
    tolerance: float = _default("tolerance")
    near_tie: float = _default("near_tie")
    strict: bool = _default("strict")
    variant: str | None = _default("variant")
    expect: str | None = _default("expect")  # --lm-expect: the set the chosen model is held to (its own by default)
    observation_cache: bool = _default("observation_cache")
    drafts: bool = _default("drafts")
    report_top: int = _default("report_top")
    summary: str = _default("summary")  # --lm-summary: the job summary on GitHub Actions, on or off
    reference: str | None = _default("reference")  # --lm-reference: an engine the report's KL divergences are from
    server: str = _default("server")  # --lm-server: already folded into ``model`` (URL#NAME)
    server_timeout: float = _default("server_timeout")
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
    reference = values.get("reference")
    if reference is not None and reference == values.get("engine"):
        raise SettingsError(
            f"--lm-reference={reference} names the engine this run uses; name the other one to check this run "
            "against, or leave --lm-reference out"
        )
    if reference is not None and str(values.get("model", "")).startswith(("http://", "https://")):
        raise SettingsError(
            f"--lm-reference={reference}: a server reports only its top candidates, so no exact KL divergence "
            "can be taken from it; run the model in process (--lm-engine) to check it against another engine"
        )
    return Settings(**values)
