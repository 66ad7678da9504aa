"""The one table of engines: each name ``--lm-engine`` takes, with the backend package that computes it.

A package named here offers ``backends.protocol.EnginePackage`` at its top (open, check, numerics and its facts), so a
new engine is its folder under ``backends/`` and one row here; nothing else names an engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Engine:
    name: str  # what --lm-engine takes, and the fingerprint's "engine"
    package: str  # the module that computes it (an EnginePackage)
    help: str  # what --lm-engine's help says of it


ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in (
        Engine("transformers", "pytest_lmbehave.backends.transformers", "torch and transformers (default)"),
        Engine(
            "llama.cpp",
            "pytest_lmbehave.backends.llamacpp",
            "for a GGUF file: its own quantized kernels, tokenizer and sampler; needs pytest-lmbehave[llamacpp]",
        ),
    )
}
DEFAULT = "transformers"  # the engine of a run that names none, and of records from before engines were named
