"""How long until the embedded model is ready: direct GGUF load against the conversion cache, in one run.

Each measurement runs in a fresh interpreter; imports are timed apart from the load itself. Prints numbers,
asserts nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent(
    """
    import json, sys, time
    started = time.perf_counter()
    import torch, transformers
    # Lazy submodules both paths need (Llama, the fast tokenizer) count as imports, not as loading.
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast
    from pytest_lmbehave.backends.transformers import loading as models
    from pytest_lmbehave.config.settings import Settings
    from pathlib import Path
    imported = time.perf_counter()
    torch.set_num_threads(1)
    source = models.resolve("embedded")
    if sys.argv[1] == "gguf":
        tok = transformers.AutoTokenizer.from_pretrained(source.path.parent, gguf_file=source.path.name)
        model = transformers.AutoModelForCausalLM.from_pretrained(source.path.parent, gguf_file=source.path.name, dtype=torch.float32)
    else:
        loaded = models.load(source, Settings(cache_dir=Path(sys.argv[2])))
    ready = time.perf_counter()
    print(json.dumps({"import_s": imported - started, "ready_s": ready - imported}))
    """
)


def measure(mode: str, cache: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, cache], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        direct = measure("gguf", cache)
        first = measure("cache", cache)  # builds the cache entry
        warm = [measure("cache", cache) for _ in range(3)]
    best = min(w["ready_s"] for w in warm)
    print(f"{'load':<34}{'model ready (s)':>16}{'imports (s)':>14}")
    print(f"{'GGUF directly (dequantize)':<34}{direct['ready_s']:>16.2f}{direct['import_s']:>14.2f}")
    print(f"{'first run: convert into cache':<34}{first['ready_s']:>16.2f}{first['import_s']:>14.2f}")
    for i, w in enumerate(warm, 1):
        print(f"{f'cached load #{i}':<34}{w['ready_s']:>16.2f}{w['import_s']:>14.2f}")
    print(
        f"cached / direct = {best / direct['ready_s']:.3f}  (best cached {best:.2f} s vs direct {direct['ready_s']:.2f} s)"
    )
    total = min(w["ready_s"] + w["import_s"] for w in warm)
    print(f"process start to model ready from the cache, imports included: {total:.2f} s")


if __name__ == "__main__":
    main()
