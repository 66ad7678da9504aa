"""Draws per second through each in-process engine's own sampler (issue 32): ``lm.draws`` of the next token after
"Shakespeare was a", 2,000 at a time, under top-k 50 and top-p 0.9 (the sampling spec's settings). One forward pass
and the sampling loop per call; three calls after a warm-up, min / median / max. llama.cpp only when it is installed
(`make llamacpp`). Prints numbers, asserts nothing.

    python bench/bench_draws.py
"""

from __future__ import annotations

import importlib.util
import statistics
import time

N = 2000
PROMPT = "Shakespeare was a"


def rates(engine: str) -> list[float]:
    from pytest_lmbehave import LM, Sampling
    from pytest_lmbehave.config.settings import Settings, default_cache_dir
    from pytest_lmbehave.runtime.registry import Registry

    runtime = Registry(Settings(engine=engine, cache_dir=default_cache_dir())).runtime("embedded")
    found = []
    for seed in range(4):  # the first is the warm-up
        lm = LM(runtime, Sampling(top_k=50, top_p=0.9), seed=seed)
        started = time.perf_counter()
        lm.draws(PROMPT, n=N)
        found.append(N / (time.perf_counter() - started))
    return found[1:]


def main() -> None:
    engines = ["transformers"] + (["llama.cpp"] if importlib.util.find_spec("llama_cpp") else [])
    print(f"{'engine':<14}{'draws/s min':>12}{'median':>10}{'max':>10}   ({N} draws a call, top-k 50, top-p 0.9)")
    for engine in engines:
        found = rates(engine)
        print(f"{engine:<14}{min(found):>12.0f}{statistics.median(found):>10.0f}{max(found):>10.0f}")


if __name__ == "__main__":
    main()
