"""A GGUF model computed by llama.cpp, its own engine, through ``llama-cpp-python``: the file read as it is (its
quantized weights, its tokenizer, llama.cpp's kernels and sampler), chosen with ``--lm-engine llama.cpp``.

The whole engine is this folder and its row in ``config/engines.py``; ``backends.open`` reaches it through that row.
It imports neither torch nor transformers, and nothing of the other engines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...config.errors import BackendUnavailable, LMBehaveError, ModelLoadError, SettingsError
from ...config.settings import Settings
from ..protocol import Backend, ModelSource

if TYPE_CHECKING:
    from ..lazy import ModelFacts

ENGINE = "llama.cpp"
# llama.cpp's generations are not transformers', so --snapshot-update leaves the plan's drafts alone; it verifies
# drafts, and an update adds its own beside them (its sampled rows draw other tokens than transformers').
DRAFTS = False
OWN_DRAFTS = True
INSTALL = "pip install 'pytest-lmbehave[llamacpp]'   (or: pip install llama-cpp-python; it builds llama.cpp)"
# llama.cpp's AMX kernels, which a build for an Intel CPU with AMX (Sapphire Rapids and later) turns on, crash the
# process in ggml_backend_amx_mul_mat on the first batch of more than one token (seen here on 0.3.36;
# ggml-org/llama.cpp#20824, closed without a fix). The Makefile builds without them; a build with them is refused
# before it can take the test process down.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
AMX_CRASHES = (
    "this llama-cpp-python was built with llama.cpp's AMX kernels (AMX_INT8 = 1 in its system info), which crash "
    "the process on any batch of more than one token (ggml-org/llama.cpp#20824). Rebuild it without them: "
    f"CFLAGS='{NO_AMX}' CXXFLAGS='{NO_AMX}' pip install --force-reinstall --no-cache-dir --no-binary "
    "llama-cpp-python llama-cpp-python   (in this repository: rm -r .venv/wheels .venv/.lmbehave-llamacpp; make "
    "llamacpp)"
)


def check(settings: Settings, resolve: Callable[[str], ModelSource]) -> None:
    """Before any test: llama-cpp-python is installed, and the session's model is a GGUF file it can read."""
    __tracebackhide__ = True
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        raise SettingsError(f"--lm-engine={ENGINE} needs llama-cpp-python, which is not installed: {INSTALL}")
    if settings.model.startswith(("http://", "https://")):
        raise SettingsError(
            f"--lm-engine={ENGINE} computes a model in this process, and {settings.model!r} is served; drop one of "
            "them (a llama.cpp server is tested with --lm-server, as any OpenAI-compatible server)"
        )
    source = resolve(settings.model)
    if not source.is_gguf:
        raise SettingsError(_not_gguf(source))


def numerics(settings: Settings) -> str:
    """The header's words for what computes: llama.cpp's version and threads (the GGUF's own types, no dtype)."""
    from importlib import metadata

    try:
        version = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        version = "absent"
    return f"engine=llama.cpp {version} (the GGUF's own quantized kernels) threads={settings.threads}"


def by_level(environment: Mapping[str, str]) -> bool:
    """Always: llama.cpp's quantized kernels compute other numbers on each SIMD level (AVX-512 against AVX2: 0.007
    apart in a probability, other greedy texts), so its sets are kept per level (embedded@llama.cpp is AVX2's)."""
    return True


def _not_gguf(source: ModelSource) -> str:
    return (
        f"--lm-engine={ENGINE} runs GGUF files, and {source.spec!r} is a {source.kind} model ({source.path}); "
        f"pass a .gguf file (or 'embedded'), or drop --lm-engine to run it with transformers"
    )


def open(
    source: ModelSource,
    settings: Settings,
    announce: Callable[[str], None] | None = None,
    timings: dict[str, tuple[float, float]] | None = None,
) -> Backend:
    """The GGUF file loaded by llama.cpp (its import and its load timed apart, in ``timings``). Under --lm-cache, a
    model this machine has loaded before with this llama.cpp is known by its facts and not loaded until a question
    misses the cache (``backends/lazy.py``)."""
    __tracebackhide__ = True
    if not source.is_gguf:  # a model named by a marker or a kept set: the session's own model was checked first
        raise BackendUnavailable(_not_gguf(source))
    started = time.perf_counter()
    try:
        import llama_cpp
    except ImportError:
        raise ModelLoadError(
            f"--lm-engine={ENGINE} needs llama-cpp-python, which is not installed: {INSTALL}"
        ) from None
    imported = time.perf_counter()
    from .backend import amx_kernels

    if amx_kernels(llama_cpp):
        raise ModelLoadError(AMX_CRASHES)
    if settings.observation_cache:
        from ..lazy import LazyBackend

        known = _facts(source, settings, llama_cpp)
        if known is not None:
            return LazyBackend(known, lambda: _load(source, settings, llama_cpp, timings, started), ENGINE)
    return _load(source, settings, llama_cpp, timings, started, imported)


def _identity(source: ModelSource, settings: Settings, llama_cpp: Any) -> dict[str, Any]:
    """All a llama.cpp model's fingerprint follows from: the file, llama.cpp's build and version, the threads and
    this plugin's versions."""
    from ...config import environment
    from ...config.facts import file_sha256

    return {
        "fact": "llama.cpp model",
        "model": source.spec,
        "model_name": source.name,
        "sha256": file_sha256(source.path, settings.cache_dir),
        "llama_cpp": str(llama_cpp.__version__),
        "system": llama_cpp.llama_print_system_info().decode("utf-8", errors="replace"),
        "threads": settings.threads,
        "software": environment.software(),
    }


def _facts(source: ModelSource, settings: Settings, llama_cpp: Any) -> ModelFacts | None:
    """The model's fingerprint, vocabulary and context as its last load here left them; None when not known."""
    from ...config.facts import recall
    from ..lazy import ModelFacts
    from ..vocabulary import Vocabulary, stored_at
    from .backend import CONTEXT, vocabulary_key

    found = recall(settings.cache_dir, _identity(source, settings, llama_cpp))
    if not isinstance(found, dict):
        return None
    vocabulary = Vocabulary.load(*stored_at(settings.cache_dir, vocabulary_key(found)))
    return None if vocabulary is None else ModelFacts(dict(found), vocabulary, CONTEXT)


def _load(
    source: ModelSource,
    settings: Settings,
    llama_cpp: Any,
    timings: dict[str, tuple[float, float]] | None,
    started: float,
    imported: float | None = None,
) -> Backend:
    from ...config.facts import remembered
    from .backend import LlamaCppBackend

    imported = time.perf_counter() if imported is None else imported
    try:
        backend = LlamaCppBackend(source, settings, llama_cpp)
    except LMBehaveError:
        raise
    except Exception as error:
        raise ModelLoadError(
            f"llama.cpp could not load {source.spec!r} ({source.path}): {type(error).__name__}: {error}"
        ) from None
    if timings is not None:
        timings[source.spec] = (round(imported - started, 3), round(time.perf_counter() - imported, 3))
    remembered(settings.cache_dir, _identity(source, settings, llama_cpp), backend.fingerprint)
    return backend
