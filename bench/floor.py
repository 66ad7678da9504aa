"""The floor a run's wall time is measured against (issue 49): the model's work its questions need, read the ideal
way, spread over the cores, plus one start-up.

- **The ideal work** (``ideal``): every sequence the run's questions need read (``bench/meter.py`` records them in
  each process) goes into one prefix tree, so a shared beginning counts once across every request and process.
  Each position of the tree is of one regime: a prompt position (read in a batch, only its last logits kept), a
  forced position (teacher-forced, every position's logits kept: a scored continuation, or a generated token
  verified against a draft) or a generated position decoded one row, one step at a time (a run without drafts). The
  draws of one question (its ids, policy and count) count once.
- **The rates** (``rates``, in a child process per engine, one thread as the plugin runs by default): seconds per
  position of each regime, timed through the engine's own backend on the embedded model in the same bench run: 8
  prompts of 32 tokens read as a batch; 8 forced continuations of 32 after 8; one row decoding 32 tokens; 8 rows
  verifying 32-token drafts; 1,000 draws from one distribution. Each the best of 3.
- **The start-up**: ``pytest FOLDER --collect-only`` (python, pytest, the plugin, the specs' imports), plus the
  engine's imports and the model's load as the child measures them. A run none of whose questions reaches the
  engine (a warm ``--lm-cache`` re-run with nothing re-read past the cache) has the first part alone for its floor.

``floor = start-up + (prompt x its rate + forced x its rate + generated x its rate + draws x its rate) / cores``

    python bench/floor.py rates ENGINE      # prints the rates as JSON
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("prompt", "forced", "generated")  # a position needed in several ways is read the cheapest way first
ROWS, LENGTH = 8, 32


def metered(folder: Path) -> list[dict[str, Any]]:
    """Every process's record under ``folder`` (bench/meter.py)."""
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def ideal(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Positions of each regime in the prefix tree of every sequence asked, and the distinct draws."""
    root: dict[int, Any] = {}
    kinds: dict[int, str] = {}  # id(node) -> its cheapest regime
    draws: set[tuple[str, str, int]] = set()
    for record in records:
        for ids, prompt_length, kind in record["questions"]:
            node = root
            for depth, token in enumerate(ids):
                node = node.setdefault(token, {})
                need = "prompt" if depth < prompt_length else kind
                have = kinds.get(id(node))
                if have is None or KINDS.index(need) < KINDS.index(have):
                    kinds[id(node)] = need
        draws.update((json.dumps(ids), policy, n) for ids, policy, n in record["draws"])
    counts = {kind: 0 for kind in KINDS}
    for kind in kinds.values():
        counts[kind] += 1
    counts["draws"] = sum(n for _, _, n in draws)
    return counts


def read(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """What the processes read: positions in batched passes (real and padded), one-position steps, forward seconds,
    and whether any imported torch, transformers, scipy or llama_cpp."""
    total: dict[str, Any] = {"batched": 0, "padded": 0, "steps": 0, "passes": 0, "forward_s": 0.0, "imported": set()}
    for record in records:
        for key in ("batched", "padded", "steps", "passes", "forward_s"):
            total[key] += record["read"][key]
        total["imported"] |= {name for name, yes in record["imported"].items() if yes}
    return total


def work_s(counts: dict[str, int], rates: dict[str, float], drafts: bool) -> float:
    """Seconds of model work for the ideal counts: generated positions verified (a run with drafts) or decoded."""
    generated = rates["verify_s"] if drafts else rates["decode_s"]
    return (
        counts["prompt"] * rates["prompt_s"]
        + counts["forced"] * rates["forced_s"]
        + counts["generated"] * generated
        + counts["draws"] * rates["draw_s"]
    )


def startup_s(folder: str) -> float:
    """Wall seconds of ``pytest FOLDER --collect-only``: python, pytest, the plugin and the tests' own imports."""
    command = [sys.executable, "-m", "pytest", folder, "--collect-only", "-q", "-p", "no:xdist", "-p", "no:randomly"]
    return best_s(lambda: subprocess.run(command, cwd=ROOT, capture_output=True, check=True))


def metering(meter: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a pytest run given ``-p meter``: bench/ importable, and the records written under ``meter``."""
    found = dict(os.environ if env is None else env)
    found["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "bench"), found.get("PYTHONPATH")]))
    found["LMBEHAVE_METER"] = str(meter)
    return found


def rates(engine: str) -> dict[str, float]:
    """The engine's rates and start-up, measured in a fresh process (``python bench/floor.py rates ENGINE``)."""
    done = subprocess.run(
        [sys.executable, __file__, "rates", engine], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def best_s(call: Any, times: int = 3) -> float:
    """The shortest wall time of ``times`` calls."""
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def _measure(engine: str) -> dict[str, float]:
    started = time.perf_counter()
    from pytest_lmbehave.backends.sampling import GREEDY, Policy, Sampling
    from pytest_lmbehave.config.settings import Settings, default_cache_dir
    from pytest_lmbehave.runtime.registry import Registry

    backend = Registry(Settings(cache_dir=default_cache_dir(), engine=engine)).runtime("embedded").backend
    ready = time.perf_counter() - started
    text = (ROOT.parent / "shared" / "seed" / "intro-to-language-models.txt").read_text()
    ids = backend.tokenize(text, special=False)
    rows = [ids[i * 97 : i * 97 + LENGTH] for i in range(ROWS)]  # distinct beginnings: nothing shared
    backend.next_logprobs(rows)  # warm
    prompt = best_s(lambda: backend.next_logprobs(rows)) / (ROWS * LENGTH)
    forced = [(r[:8], ids[i * 97 + 8 : i * 97 + 8 + LENGTH]) for i, r in enumerate(rows)]
    forced_s = best_s(lambda: backend.forced_logprobs(forced)) / (ROWS * (8 + LENGTH - 1))
    one = best_s(lambda: backend.generate([rows[0]], LENGTH, [GREEDY]))
    decode = max(one - LENGTH * prompt, 0.0) / LENGTH
    drafts = [list(d.ids) for d in backend.generate(rows, LENGTH, [GREEDY] * ROWS)]
    verified = best_s(lambda: backend.generate(rows, LENGTH, [GREEDY] * ROWS, drafts))
    verify = max(verified - ROWS * LENGTH * prompt, 0.0) / (ROWS * LENGTH)
    policy = Policy(Sampling(temperature=1.0), 7)
    many = best_s(lambda: backend.draws(rows[0], policy, 1001))
    single = best_s(lambda: backend.draws(rows[0], policy, 1))
    return {
        "ready_s": ready,
        "prompt_s": prompt,
        "forced_s": forced_s,
        "decode_s": decode,
        "verify_s": verify,
        "draw_s": max(many - single, 0.0) / 1000,
    }


if __name__ == "__main__":
    if sys.argv[1:2] != ["rates"] or len(sys.argv) != 3:
        sys.exit(__doc__)
    print(json.dumps(_measure(sys.argv[2])))
