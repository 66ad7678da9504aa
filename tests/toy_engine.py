"""A made-up third engine, for tests/test_engines.py: the tiny transformers model under another engine's name, with
facts of its own. It is everything an engine needs besides its one row in the engine table (``config/engines.py``):
the ``EnginePackage`` interface at its top."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pytest_lmbehave.backends import transformers
from pytest_lmbehave.backends.protocol import Backend, ModelSource
from pytest_lmbehave.config.errors import SettingsError
from pytest_lmbehave.config.settings import Settings

NAME = "toy"
DRAFTS = False  # it leaves the plan's drafts alone, as an engine whose numbers are not the plan's would
OWN_DRAFTS = False


class ToyBackend:
    """The transformers backend, its fingerprint naming this engine."""

    name = NAME
    decodes_each_draw = False

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    def fingerprint(self) -> dict[str, str]:
        return {**self.inner.fingerprint(), "engine": NAME, "engine_version": "0.0"}


def check(settings: Settings, resolve: Callable[[str], ModelSource]) -> None:
    if resolve(settings.model).kind != "directory":
        raise SettingsError(f"--lm-engine={NAME} reads directory models only; pass one with --lm-model")


def numerics(settings: Settings) -> str:
    return f"engine={NAME} (a made-up engine) threads={settings.threads}"


def by_level(environment: Mapping[str, str]) -> bool:
    return False


def open(
    source: ModelSource,
    settings: Settings,
    announce: Callable[[str], None] | None = None,
    timings: dict[str, tuple[float, float]] | None = None,
) -> Backend:
    return ToyBackend(transformers.load(source, settings, announce, timings))  # type: ignore[return-value]
