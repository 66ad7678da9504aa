"""The closeness profiles' numbers, measured exactly (issue 33): every text of the document (its prompts, reviews and
prose) scored in process on two models at once, each position's KL divergence taken over the full vocabulary, and
beside it what two reports' records give (the top 10 or 64 candidates, the rest pooled: a lower bound). Rows: the
reference (llama.cpp, Q4_1) against itself loaded again, transformers fp32 on the same weights, and llama.cpp's own
re-quantizations to Q8_0 and Q3_K_M (made here by tools/requantize.py, never committed). The thresholds of
`observations/closeness.PROFILES` come from this table. Not in `make test`: about a minute.

    python bench/kl_exact.py
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def texts() -> list[str]:
    sys.path.insert(0, str(ROOT / "specs"))
    import document  # specs/document.py: the document's prompts and texts

    found: list[str] = []
    for name, value in vars(document).items():
        values = value if isinstance(value, list) else [value]
        found += [v for v in values if isinstance(v, str) and not name.startswith("_") and v not in found]
    return found


def requantized(folder: Path) -> dict[str, Path]:
    from pytest_lmbehave.backends import resolve

    spec = importlib.util.spec_from_file_location("requantize", ROOT / "tools" / "requantize.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    source = resolve("embedded").path
    return {kind: tool.with_llama_cpp(source, folder / f"smol-{kind}.gguf", kind) for kind in ("Q8_0", "Q3_K_M")}


def scores(spec: str, engine: str, written: list[str]) -> list[Any]:
    from pytest_lmbehave.backends import open as open_backend
    from pytest_lmbehave.config.settings import Settings, default_cache_dir
    from pytest_lmbehave.runtime.runtime import Runtime

    runtime = Runtime(open_backend(spec, Settings(engine=engine, cache_dir=default_cache_dir())))
    return [runtime.score(text) for text in written]


def row(label: str, reference: list[Any], other: list[Any]) -> str:
    from pytest_lmbehave.observations.scores import exact_kls, record, statistics

    exact = [exact_kls(a, b) or [] for a, b in zip(reference, other)]
    found = statistics([(record(a, 10), record(b, 10)) for a, b in zip(reference, other)], exact)
    cells = [f"{found['positions']}", f"{found['mean_kl']:.3g}", f"{found['median_kl']:.3g}", f"{found['p99_kl']:.3g}"]
    cells += [f"{found['max_kl']:.3g}", f"{found['same_top']:.2%}"]
    for top in (10, 64):
        bound = statistics([(record(a, top), record(b, top)) for a, b in zip(reference, other)])
        cells += [
            f"{bound['mean_kl']:.3g} ({bound['mean_kl'] / found['mean_kl'] - 1:+.0%})" if found["mean_kl"] else "0"
        ]
        cells += [f"{bound['p99_kl']:.3g}"]
    return f"| {label} | " + " | ".join(cells) + " |"


def main() -> None:
    written = texts()
    reference = scores("embedded", "llama.cpp", written)
    print(f"{len(written)} texts of the document, {sum(len(s.ids) - 1 for s in reference)} scored positions")
    print(
        "| reference llama.cpp Q4_1 against | positions | mean KL | median | p99 | max | same top "
        "| mean, top 10 pooled | p99, top 10 | mean, top 64 pooled | p99, top 64 |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(row("itself, loaded again", reference, scores("embedded", "llama.cpp", written)))
    print(row("transformers fp32, same weights", reference, scores("embedded", "transformers", written)))
    with tempfile.TemporaryDirectory() as folder:
        for kind, path in requantized(Path(folder)).items():
            print(row(f"llama.cpp {kind}", reference, scores(str(path), "llama.cpp", written)))


if __name__ == "__main__":
    main()
