"""Baseline (a): every operation the document performs, as one plain transformers script, top to bottom.

Loads the embedded model from the warm conversion cache (as the plugin does), fp32, one thread, and counts
the observations the document displays. Prints one JSON line: {"observations": N, "load_s": ..., "peak_rss_mb": ...}.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "specs"))
from document import (
    BOSTON_CONVERSATION,
    BOSTON_PLACES,
    BOSTON_VISIT,
    FANEUIL,
    JOB_PROMPT,
    REVIEWS,
    SHAKESPEARE,
    classify_prompt,
    comment_prompt,
    few_shot_prompt,
    sentiment_prompt,
)

from pytest_lmbehave.backends.transformers import conversion
from pytest_lmbehave.backends.transformers import loading as models
from pytest_lmbehave.config.settings import default_cache_dir


def main() -> None:
    torch.set_num_threads(1)
    started = time.perf_counter()
    source = models.resolve("embedded")
    folder = conversion.converted_entry(source.path, models.content_hash(source), default_cache_dir())
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    load_s = time.perf_counter() - started
    seen = 0

    def generate(prompt: str, n: int, **sampling: object) -> str:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        # As the document: top_k is not passed, so generate applies its default top-50, as the sampling specs do.
        options = {"do_sample": False} if not sampling else {"do_sample": True, **sampling}
        out = model.generate(ids, max_new_tokens=n, pad_token_id=tokenizer.eos_token_id, **options)
        return str(tokenizer.decode(out[0]))

    for text in [SHAKESPEARE, "i7245tf7238tvo", "Shakespeare was poet! Really.", " Shakespeare was poet! Really."]:
        ids = tokenizer(text)["input_ids"]
        _ = [tokenizer.decode(i) for i in ids]
        seen += 2  # ids, and the pieces
    for spaces in (1, 5, 4, 7):
        _ = tokenizer("hello" + " " * spaces + "hello")["input_ids"]
        seen += 1
    with torch.no_grad():
        for text in (SHAKESPEARE, SHAKESPEARE + " great"):
            logits = model(tokenizer(text, return_tensors="pt")["input_ids"]).logits
            predictions = torch.softmax(logits[0, -1], dim=0)
            _ = tokenizer.decode(int(torch.argmax(predictions)))
            seen += 4  # logits, their shape, the argmax, its piece
    torch.manual_seed(0)
    generate(SHAKESPEARE, 50)
    generate(SHAKESPEARE, 50, temperature=None, top_p=None)
    generate(SHAKESPEARE, 50, temperature=None, top_p=0.9)
    generate(SHAKESPEARE, 50, temperature=0.2, top_p=None)
    generate(SHAKESPEARE, 50, temperature=14.0, top_p=None)
    generate(SHAKESPEARE, 20)
    seen += 6
    for prompt, n in [(JOB_PROMPT, 20), (JOB_PROMPT, 1), ("Shakespeare's job was", 10), (SHAKESPEARE, 1)]:
        generate(prompt, n)
        seen += 1
    for prompt in ["Shakespeare's occupation was as a", "Shakespeare's worked as a"]:
        generate(prompt, 1)
        seen += 1
    generate(BOSTON_CONVERSATION, 40)
    generate(BOSTON_PLACES, 20)
    seen += 2
    for _ in range(10):
        generate(BOSTON_VISIT, 20, temperature=None, top_p=None)
        seen += 1
    generate(FANEUIL, 20)
    generate(comment_prompt(REVIEWS[0]), 20)
    generate(sentiment_prompt(REVIEWS[0]), 20)
    seen += 3
    for review in REVIEWS:
        generate(classify_prompt(review), 5)
        generate(few_shot_prompt(review), 1)
        seen += 2
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"observations": seen, "load_s": round(load_s, 2), "peak_rss_mb": round(peak, 1)}))


if __name__ == "__main__":
    main()
