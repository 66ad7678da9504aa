"""llama.cpp's drafts, shown exact on a larger suite than the specs (issue 34): every word prefix of the document's
texts and each review's four prompts, about two hundred greedy generations of 24 tokens, their next-token questions,
and as many sampled generations (top-k 50, a seed per prompt). Each greedy row is decoded token by token with no
draft, then verified with three drafts: its own ids (as a recorded llama.cpp set gives them), transformers' greedy ids
for the same prompt (as the plan gives them), and its own ids with one step replaced by another token (a wrong
draft). Each sampled row is drawn by llama.cpp's own loop (``llama_sampler_sample`` on the context's last logits,
then the token evaluated), then generated with no draft, its own ids and a wrong step. Every verified row must equal
the decoded one byte for byte (ids, log-probabilities, margins, argmaxes, best candidates), a greedy row's first step
the next-token question's numbers, and a sampled row's ids llama.cpp's own loop's. Prints the counts and times; exits
1 on any difference. Not in `make test`: about four minutes.

    python bench/drafts_exact.py
"""

from __future__ import annotations

import sys
import time
from dataclasses import astuple
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STEPS = 24


def prompts() -> list[str]:
    sys.path.insert(0, str(ROOT / "specs"))
    import document  # specs/document.py: the document's prompts and texts

    texts = [value for name, value in vars(document).items() if isinstance(value, str) and not name.startswith("_")]
    found = []
    for text in texts:
        words = text.split(" ")
        found += [" ".join(words[:i]) for i in range(2, len(words) + 1)]
    for review in document.REVIEWS:
        found += [make(review) for make in (document.comment_prompt, document.sentiment_prompt)]
        found += [document.classify_prompt(review), document.few_shot_prompt(review)]
    return list(dict.fromkeys(p for p in found if p.strip()))


def same(a: Any, b: Any) -> bool:
    return bool(astuple(a)[:5] == astuple(b)[:5])


def own_loop(llama: Any, row: list[int], policy: Any) -> list[int]:
    """A sampled row as llama.cpp's own loop draws it: llama_sampler_sample on the context's last logits."""
    from pytest_lmbehave.backends.llamacpp.sampler import Sampler

    sampler = Sampler(llama.api, policy.sampling, policy.seed)
    try:
        llama._read(row)
        ids: list[int] = []
        while len(ids) < STEPS and (not ids or ids[-1] not in llama.stop_ids):
            ids.append(sampler.draw(llama.llama.ctx))
            if len(ids) < STEPS and ids[-1] not in llama.stop_ids:
                llama.llama.eval(ids[-1:])
        return ids
    finally:
        sampler.close()


def main() -> int:
    from pytest_lmbehave.backends import open as open_backend
    from pytest_lmbehave.backends.sampling import GREEDY, Policy, Sampling
    from pytest_lmbehave.config.settings import Settings, default_cache_dir

    llama = open_backend("embedded", Settings(engine="llama.cpp", cache_dir=default_cache_dir()))
    transformers = open_backend("embedded", Settings(cache_dir=default_cache_dir()))
    rows = [llama.tokenize(p) for p in prompts()]
    theirs = [d.ids for d in transformers.generate(rows, STEPS, [GREEDY] * len(rows))]
    timings = {"decoded": 0.0, "own draft": 0.0}
    verified = {"own draft": 0, "transformers' draft": 0, "wrong draft": 0}
    differences: list[str] = []
    tokens = 0
    for row, other in zip(rows, theirs):
        started = time.perf_counter()
        [plain] = llama.generate([row], STEPS, [GREEDY])
        timings["decoded"] += time.perf_counter() - started
        tokens += len(plain.ids)
        wrong = list(plain.ids)
        wrong[len(wrong) // 2] = (wrong[len(wrong) // 2] + 1) % llama.vocab_size
        for name, draft in (("own draft", plain.ids), ("transformers' draft", other), ("wrong draft", wrong)):
            started = time.perf_counter()
            [found] = llama.generate([row], STEPS, [GREEDY], [draft])
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
            verified[name] += found.verified
            if not same(found, plain):
                differences.append(f"{name} after {llama.detokenize(row)[-40:]!r}")
        [numbers] = llama.next_logprobs([row])
        if float(numbers.values[plain.ids[0]]) != plain.logprobs[0]:
            differences.append(f"next-token question after {llama.detokenize(row)[-40:]!r}")
    sampled = 0
    for seed, row in enumerate(rows):
        policy = Policy(Sampling(top_k=50), seed=seed)
        drawn = own_loop(llama, row, policy)
        started = time.perf_counter()
        [plain] = llama.generate([row], STEPS, [policy])
        timings["sampled, decoded"] = timings.get("sampled, decoded", 0.0) + time.perf_counter() - started
        sampled += len(plain.ids)
        if list(plain.ids) != drawn:
            differences.append(f"sampled, not llama.cpp's own draws, after {llama.detokenize(row)[-40:]!r}")
        wrong = list(plain.ids)
        wrong[len(wrong) // 2] = (wrong[len(wrong) // 2] + 1) % llama.vocab_size
        for name, draft in (("sampled, own draft", plain.ids), ("sampled, wrong draft", wrong)):
            started = time.perf_counter()
            [found] = llama.generate([row], STEPS, [policy], [draft])
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
            verified[name] = verified.get(name, 0) + found.verified
            if not same(found, plain):
                differences.append(f"{name} after {llama.detokenize(row)[-40:]!r}")
    print(f"{len(rows)} prompts, {tokens} greedy and {sampled} sampled tokens, {STEPS} steps each (llama.cpp, Q4_1)")
    for name, count in verified.items():
        total = sampled if name.startswith("sampled") else tokens
        print(f"  {name:<20} verified {count:>5} of {total} tokens, {timings.get(name, 0.0):6.1f} s")
    print(f"  {'no draft':<20} decoded  {tokens:>5} tokens, {timings['decoded']:6.1f} s")
    print(f"  {'sampled, no draft':<20} decoded  {sampled:>5} tokens, {timings['sampled, decoded']:6.1f} s")
    print(f"differences from decoding: {len(differences)}", *differences[:10], sep="\n  ")
    return 1 if differences else 0


if __name__ == "__main__":
    raise SystemExit(main())
