"""Model resolution and the GGUF conversion cache (built once, under a lock, renamed into place, rebuilt if broken)."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from pytest_lmbehave.backends.transformers import conversion
from pytest_lmbehave.backends.transformers import loading as models
from pytest_lmbehave.config.errors import ModelNotFoundError
from pytest_lmbehave.config.naming import slug

FAKE_GGUF = b"GGUF" + b"\x00" * 60


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "weights.gguf"
    path.write_bytes(FAKE_GGUF)
    return path


def fake_convert(gguf: Path, target: Path) -> None:
    """Stands in for the 20-second dequantization; counts its calls in a file beside the GGUF."""
    counter = gguf.parent / "conversions"
    with open(counter, "a") as handle:
        handle.write("x")
    time.sleep(0.3)
    (target / "model.safetensors").write_bytes(b"w" * 100)
    (target / "config.json").write_text("{}")


def conversions(gguf: Path) -> int:
    counter = gguf.parent / "conversions"
    return len(counter.read_text()) if counter.exists() else 0


@pytest.fixture(autouse=True)
def _fake_converter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversion, "_convert", fake_convert)


def test_a_gguf_is_converted_once_and_then_served_from_the_cache(gguf: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    messages: list[str] = []
    entry = conversion.converted_entry(gguf, "abc123", cache, messages.append)
    again = conversion.converted_entry(gguf, "abc123", cache, messages.append)
    assert entry == again and conversions(gguf) == 1
    assert messages == [f"pytest-lmbehave: converting weights.gguf to safetensors once (about 20 s); cached in {entry}"]
    manifest = json.loads((entry / conversion.MANIFEST).read_text())
    assert manifest["files"] == {"model.safetensors": 100, "config.json": 2}
    assert [p.name for p in cache.iterdir() if "building" in p.name] == []


def test_the_cache_key_holds_the_content_hash_and_the_torch_and_transformers_versions() -> None:
    import torch
    import transformers

    key = conversion.cache_key("f" * 64)
    assert key.startswith("f" * 20)
    assert torch.__version__.replace("+", "_") in key and transformers.__version__ in key


def test_an_entry_left_without_a_manifest_by_an_interrupted_build_is_rebuilt(gguf: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    entry = cache / conversion.cache_key("abc")
    entry.mkdir(parents=True)
    (entry / "model.safetensors").write_bytes(b"half")
    messages: list[str] = []
    assert conversion.converted_entry(gguf, "abc", cache, messages.append) == entry
    assert conversions(gguf) == 1
    assert "is broken (it has no manifest (an interrupted build)); rebuilding it" in messages[0]
    assert (entry / "model.safetensors").stat().st_size == 100


def test_an_entry_whose_file_was_truncated_is_detected_and_rebuilt(gguf: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    entry = conversion.converted_entry(gguf, "abc", cache, lambda _: None)
    (entry / "model.safetensors").write_bytes(b"w" * 10)
    messages: list[str] = []
    conversion.converted_entry(gguf, "abc", cache, messages.append)
    assert conversions(gguf) == 2
    assert "model.safetensors has 10 bytes, the manifest says 100" in messages[0]


def _convert_in_child(gguf: str, cache: str) -> None:
    conversion._convert = fake_convert  # type: ignore[assignment]
    conversion.converted_entry(Path(gguf), "abc", Path(cache), lambda _: None)


def test_concurrent_processes_wait_for_one_conversion_instead_of_racing(gguf: Path, tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_convert_in_child, args=(str(gguf), str(tmp_path / "cache"))) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
    assert [c.exitcode for c in children] == [0, 0, 0]
    assert conversions(gguf) == 1


def test_a_directory_without_config_json_is_rejected_with_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"is a directory but not a Hugging Face model: it has no config.json"):
        models.resolve(str(tmp_path))


def test_a_directory_holding_one_gguf_resolves_to_that_file(tmp_path: Path, gguf: Path) -> None:
    assert models.resolve(str(tmp_path)).path == gguf.resolve()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("embedded", "embedded"),
        ("HuggingFaceTB/SmolLM2-360M", "HuggingFaceTB--SmolLM2-360M"),
        ("/models/my-model", "my-model"),
        ("./x/SmolLM2.Q4.gguf", "SmolLM2.Q4"),
    ],
)
def test_each_model_spec_has_a_stable_file_system_safe_slug(spec: str, expected: str) -> None:
    assert slug(spec) == expected
