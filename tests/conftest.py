"""A tiny randomly initialised Llama with a small BPE tokenizer, built once per session, keeps plugin tests fast."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_lmbehave.config.settings import default_cache_dir

# pytester points HOME at a temporary folder; keep inner runs on the real conversion cache.
os.environ.setdefault("LMBEHAVE_CACHE", str(default_cache_dir()))

CORPUS = [
    "Shakespeare was a great writer, but he was also a great actor.",
    "The best places to visit in Boston are the museums and the parks.",
    "hello hello world, the model predicts the next token.",
    "Review: good game. Decision: good. Review: bad game. Decision: bad.",
]


def build_tiny_model(folder: Path, *, seed: int = 0, context: int = 64, bos: bool = False) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<|endoftext|>"],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    if bos:  # like tokenizers that open every text with a special token
        from tokenizers import processors

        eos = raw.token_to_id("<|endoftext|>")
        raw.post_processor = processors.TemplateProcessing(
            single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", eos)]
        )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    config = LlamaConfig(
        vocab_size=raw.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
        initializer_range=0.5,  # spread-out logits: few near-ties between the top candidates
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def document() -> Any:
    """The document's prompts, ``specs/document.py``, as a module."""
    import importlib.util
    import sys

    specs = Path(__file__).resolve().parent.parent / "specs"
    spec = importlib.util.spec_from_file_location("document", specs / "document.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("document", module)
    spec.loader.exec_module(module)
    return module


def document_prompts() -> list[str]:
    """Every prompt the document gives a model."""
    doc = document()
    return [
        doc.SHAKESPEARE,
        doc.JOB_PROMPT,
        *doc.ONE_TOKEN_PROMPTS,
        "Shakespeare's job was",
        doc.BOSTON_CONVERSATION,
        doc.BOSTON_PLACES,
        doc.BOSTON_VISIT,
        doc.FANEUIL,
        doc.comment_prompt(doc.REVIEWS[0]),
        doc.sentiment_prompt(doc.REVIEWS[0]),
        *[doc.classify_prompt(r) for r in doc.REVIEWS],
        *[doc.few_shot_prompt(r) for r in doc.REVIEWS],
    ]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a tiny random causal LM (context of 64 tokens)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(autouse=True)
def _installed_packages_stay_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    # pytester restores sys.modules after each test, dropping every module the test imported first. Many of torch's
    # cannot be imported twice in one process (their kernels register once), so the next import of transformers
    # would fail. Modules of installed packages stay; those of the test's own folder still go.
    import site
    import sys

    from _pytest.pytester import SysModulesSnapshot

    installed = tuple(site.getsitepackages())
    restore = SysModulesSnapshot.restore

    def keeping_installed(self: SysModulesSnapshot) -> None:
        kept = {k: m for k, m in sys.modules.items() if str(getattr(m, "__file__", "") or "").startswith(installed)}
        restore(self)
        sys.modules.update(kept)

    monkeypatch.setattr(SysModulesSnapshot, "restore", keeping_installed)


@pytest.fixture(autouse=True)
def _inner_runs_are_top_level(monkeypatch: pytest.MonkeyPatch) -> None:
    # When this suite itself runs under xdist, inner pytester runs would inherit the worker's variables and
    # believe they are xdist workers too (syrupy then locks snapshot files as a worker would).
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run_with_tiny(pytester: pytest.Pytester, tiny_model: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run pytest in-process over the given test source, with the tiny model and an isolated cache."""

    def run(source: str, *args: str) -> pytest.RunResult:
        pytester.makepyfile(source)
        return pytester.runpytest(
            "-p", "no:randomly", "-W", "ignore::pytest.PytestAssertRewriteWarning", f"--lm-model={tiny_model}", *args
        )

    return run


def tiny_backend_of(folder: Path, cache: Path):  # type: ignore[no-untyped-def]
    """The tests' backend: a tiny random transformers model behind the same protocol as every backend."""
    from pytest_lmbehave.backends.transformers.inprocess import TransformersBackend
    from pytest_lmbehave.backends.transformers.loading import load, resolve
    from pytest_lmbehave.config.settings import Settings

    return TransformersBackend(load(resolve(str(folder)), Settings(cache_dir=cache)), cache)


@pytest.fixture(scope="session")
def tiny_backend(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The tiny model loaded through the plugin's own loader, behind the backend protocol."""
    return tiny_backend_of(tiny_model, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_runtime(tiny_backend):  # type: ignore[no-untyped-def]
    """A runtime over the tiny backend, for tests of the LM API without pytester."""
    from pytest_lmbehave.runtime.runtime import Runtime

    return Runtime(tiny_backend)


def write_wrong_step(specs: Path, record: Path, ids: list[int], wrong: int, at: int = 10) -> None:
    """A recorded generation after "Shakespeare was a" (``ids``, in the snapshot file ``record``) with ``wrong`` at
    step ``at``, and every draft of that prompt in ``specs``'s plan with it too: wrong wherever a run takes drafts."""
    tampered = [*ids[:at], wrong, *ids[at + 1 :]]
    record.write_text(record.read_text().replace(str(ids), str(tampered), 1))
    plan = json.loads((specs / "lmbehave-plan.json").read_text())
    drafted = 0
    for entries in plan["tests"].values():
        for entry in entries:
            if entry.get("prompt") == "Shakespeare was a" and entry.get("draft"):
                entry["draft"] = tampered[: len(entry["draft"])]
                drafted += 1
    assert drafted, "the plan drafts no generation of the tampered prompt"
    (specs / "lmbehave-plan.json").write_text(json.dumps(plan))


@pytest.fixture(scope="session")
def smollm2_folder() -> Path:
    """The embedded model converted (cached as every run converts it): its SmolLM2 tokenizer for the matrix."""
    from pytest_lmbehave.backends.transformers.conversion import converted_entry
    from pytest_lmbehave.backends.transformers.loading import content_hash, resolve
    from pytest_lmbehave.config.settings import Settings

    settings = Settings(cache_dir=default_cache_dir())
    source = resolve("embedded")
    return Path(converted_entry(source.path, content_hash(source, settings.cache_dir), settings.cache_dir, None))


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory, smollm2_folder: Path):  # type: ignore[no-untyped-def]
    """The matrix's models (tests/architectures.py), each built on first use: ``matrix(name)`` is its folder."""
    from tests.architectures import build

    root = tmp_path_factory.mktemp("matrix")
    return lambda name: build(name, root / name, smollm2_folder)


@pytest.fixture(scope="session")
def matrix_backend(matrix, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A matrix model loaded through the plugin's own loader: ``matrix_backend(name)``, once per session."""
    loaded: dict[str, Any] = {}
    cache = tmp_path_factory.mktemp("matrix-cache")

    def backend(name: str) -> Any:
        if name not in loaded:
            loaded[name] = tiny_backend_of(matrix(name), cache)
        return loaded[name]

    return backend
