"""The only code that computes: one small protocol (``protocol.py``), implemented in this process
(each engine's package, named by its row in ``config/engines.py``) and over HTTP (``served/``). ``open`` picks the
backend for a model spec; everything above speaks token ids and plain numbers, and asks an engine's facts here."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from ..config import engines
from ..config.errors import LMBehaveError, ModelNotFoundError, SettingsError
from .protocol import (
    ALTERNATIVES,
    PREFIX,
    TOGETHER_FROM,
    Backend,
    Decoded,
    EnginePackage,
    Logprobs,
    ModelSource,
    Step,
    common_prefix,
    limits,
)

if TYPE_CHECKING:
    from ..config.settings import Settings

__all__ = [
    "ALTERNATIVES",
    "PREFIX",
    "TOGETHER_FROM",
    "Backend",
    "Decoded",
    "EnginePackage",
    "Logprobs",
    "ModelSource",
    "Step",
    "common_prefix",
    "limits",
    "open",
]


def package(name: str) -> EnginePackage:
    """The package that computes the engine ``name`` (its row in the engine table)."""
    row = engines.ENGINES.get(name)
    if row is None:
        raise SettingsError(f"no engine is named {name!r}; choose one of: {', '.join(engines.ENGINES)}")
    return cast(EnginePackage, importlib.import_module(row.package))


def takes_drafts(settings: Settings) -> bool:
    """Whether the session's engine verifies the plan's drafts, so that --snapshot-update may write its own."""
    return package(settings.engine).DRAFTS


def keeps_own_drafts(settings: Settings) -> bool:
    """Whether the session's engine verifies drafts of its own, kept in the plan beside the plan's."""
    return package(settings.engine).OWN_DRAFTS


def by_level(environment: Mapping[str, str]) -> bool:
    """Whether the numbers recorded in ``environment`` depend on the CPU's SIMD level (by its engine's own fact; a
    served engine with no row of its own, none)."""
    name = environment.get("engine", engines.DEFAULT)
    return name in engines.ENGINES and package(name).by_level(environment)


def resolve(spec: str) -> ModelSource:
    """Where a model spec's model comes from, without loading it or asking its server."""
    from .transformers.loading import resolve as resolved

    return resolved(spec)


def open(
    spec: str,
    settings: Settings,
    announce: Callable[[str], None] | None = None,
    timings: dict[str, tuple[float, float]] | None = None,
    source: ModelSource | None = None,
) -> Backend:
    """The engine that computes for a model spec (already resolved: ``source``): a served model's server, or the
    model in this process. Each backend loads (or connects to) and fingerprints its own model."""
    source = resolve(spec) if source is None else source
    if source.kind == "served":
        from .served.connect import connect

        started = time.perf_counter()
        served = connect(spec, settings, lambda name: _local_copy(name, settings, announce))
        if timings is not None:
            timings[spec] = (0.0, round(time.perf_counter() - started, 3))
        return served
    return package(settings.engine).open(source, settings, announce, timings)


def describe(spec: str, settings: Settings, resolved: Callable[[str], ModelSource] = resolve) -> str:
    """The header's words for a model spec, without loading it (resolving, by ``resolved``, and hashing only)."""
    try:
        source = resolved(spec)
        if source.kind == "served":
            return f"{spec} (served; probed at the start of the session)"
        from .transformers.loading import content_hash

        return f"{spec} = {source.name} ({source.kind}, sha256 {content_hash(source, settings.cache_dir)[:16]})"
    except LMBehaveError as error:
        return f"{spec} (not loadable: {str(error).splitlines()[0]})"


def numerics(settings: Settings) -> str:
    """The header's words for what computes in this process, and in which numerics: nothing for a served model, whose
    numerics are the server's (its probe says what it can answer, at the start of the session)."""
    if settings.model.startswith(("http://", "https://")):
        return ""
    return package(settings.engine).numerics(settings)


def announcement(source: ModelSource, settings: Settings) -> str | None:
    """The line a run starts with when its model is served (what serves it, what it cannot answer), else None."""
    spec = source.spec
    if source.kind != "served":
        return None
    from .served.capabilities import announcement as probed

    return probed(spec, settings.server_timeout)


def _local_copy(name: str, settings: Settings, announce: Callable[[str], None] | None) -> tuple[Any, str] | None:
    """A served model's local copy, by its served name: its tokenizer (the ids the in-process model reads) and its
    weights' hash; None when this machine does not have it."""
    from .transformers import loading

    try:
        source = loading.resolve(name)
    except ModelNotFoundError:
        return None
    return loading.load_tokenizer(source, settings, announce), loading.content_hash(source, settings.cache_dir)


def check(settings: Settings) -> None:
    """What only an engine can judge of the settings (a device torch cannot use here), before any test runs."""
    if settings.device != "cpu" and not settings.model.startswith(("http://", "https://")):
        from .transformers.loading import check_device

        check_device(settings.device)
    package(settings.engine).check(settings, resolve)
