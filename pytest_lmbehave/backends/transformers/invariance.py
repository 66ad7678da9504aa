"""Whether this model's numerics are batch- and path-invariant here: a prompt's next-token numbers the same
whatever it is read with (alone, in a padded batch beside a longer row, after a beginning shared with another row)
and however it is read (one pass, a teacher-forced pass, or token by token on a KV cache).

The speed machinery rests on it: the plan batches requests from different tests, prompts sharing a beginning are
read on their common cache, and a recorded generation is verified by one teacher-forced pass instead of being
decoded. So the probe runs once per model, numerics and machine, is kept as a fact (a warm ``--lm-cache`` re-run
knows it without loading the model), and is part of the fingerprint (``batch_invariant=yes|no``). When it says no,
the backend reads every request alone and decodes every generation token by token, with no drafts: a request's
numbers then depend on the request alone, so a run gives the same results serially, under ``-n 2``, in any order,
with or without the plan.

Bit for bit, float32 on these CPUs is not invariant either: the four readings depart from the prompt read alone by
2.1e-5 to 2.7e-5 (measured on the embedded model, AVX-512), as a sum over another shape rounds otherwise. That is a
fortieth of the verdict's tolerance, and below the 4 decimals a record keeps. So "invariant" means: every reading
within ``BOUND`` (a tenth of the tolerance) of the prompt read alone. bfloat16 departs by up to 0.56 and float16 by
0.047 there: not invariant.

A 16-bit dtype is never called invariant, and its noise is at least ``STEPS`` of its own rounding step at the top
logit. One step of bfloat16 at |logit| 16-32 is 0.125, a thousand times ``BOUND``, so identical readings of one
probe prompt are luck of kernel choice, not invariance: on an NVIDIA H200 (torch 2.11, CUDA 13) the probe's readings
of bfloat16 were bit-identical, yet a greedy generation decoded token by token left the one verified by a
teacher-forced pass at its 12th token, where one path read a tie and the other a margin of one step.
"""

from __future__ import annotations

import math
from typing import Any

from ...config import defaults, facts
from ...config.environment import INVARIANT, LOGIT_SCALE, NOISE, numerics_variables, software
from ...config.settings import Settings
from ..protocol import PREFIX
from . import prefill

TOP = 20  # the top candidates whose moves make the noise floor (records keep the top 10, with margins)
BOUND = defaults.TOLERANCE / 10  # a reading this close to the prompt read alone is the same to every verdict
STEPS = 2  # the least noise of a dtype, in its steps at the top logit: two readings may each round a step apart
TEXT = "Shakespeare was a great writer, and his plays are still read and performed all over the world today because"


def identity(digest: str, settings: Settings) -> dict[str, Any]:
    """What the answer depends on: the weights, the numerics asked for, the libraries and this machine."""
    numerics = {"dtype": settings.dtype, "device": settings.device, "threads": settings.threads}
    return {
        "fact": INVARIANT,
        "probe": 5,
        "model": digest,
        **numerics,
        "attention": settings.attention,
        **software(),
        **facts.torch_build(),
        "flags": facts.flags_digest(),
        "variables": numerics_variables(),
    }


def learned(digest: str, settings: Settings) -> dict[str, str] | None:
    """The fingerprint's fields when this model was probed here with these numerics; None when it never was."""
    found = facts.recall(settings.cache_dir, identity(digest, settings))
    return fields(found) if isinstance(found, dict) else None


def learn(model: Any, tokenizer: Any, digest: str, settings: Settings) -> dict[str, str]:
    """The probe's fields, probed now unless they are known already (the fact keeps each reading's departure)."""
    return fields(facts.remembered(settings.cache_dir, identity(digest, settings), lambda: probe(model, tokenizer)))


def fields(found: dict[str, Any]) -> dict[str, str]:
    """What the fingerprint holds of a probe: whether the numerics are invariant, the noise between readings (the
    largest move of a top candidate's log-probability, in nats: the dtype's measured noise floor) and the power of
    two at or below the top logit (where the dtype's step is read, e.g. 0.125 for bfloat16 at 16-32)."""
    scale = power_of_two_below(float(found["top_logit"]))
    return {INVARIANT: str(found["answer"]), NOISE: f"{float(found['noise']):.2g}", LOGIT_SCALE: f"{scale:g}"}


def power_of_two_below(logit: float) -> float:
    """The power of two at or below a logit's magnitude: where a dtype's step is read."""
    return float(2.0 ** math.floor(math.log2(max(logit, 1e-30))))


def readings(model: Any, tokenizer: Any) -> dict[str, Any]:
    """The next-token log-probabilities after one prompt, read in each way the backend reads prompts."""
    import torch

    ids = list(tokenizer(TEXT, add_special_tokens=False)["input_ids"])
    ids = (ids * (PREFIX // max(len(ids), 1) + 2))[: PREFIX + 4]  # past the shared-beginning length
    longer = [*ids[::-1][:8], *ids]  # a longer row beside it: padding, and other numbers in the batch
    sibling = [*ids[:-1], ids[0]]  # shares all but the last token
    pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    argument = prefill.cache_argument(model)
    with torch.no_grad():
        # The prompt alone, as prefill.last_logprobs reads it; its logits also give the top logit's magnitude.
        logits = model(torch.tensor([ids], device=model.device), logits_to_keep=1).logits[0, -1].float().cpu()
        out = model(torch.tensor([ids[:-1]], device=model.device), use_cache=True, logits_to_keep=1)
        step = model(torch.tensor([ids[-1:]], device=model.device), use_cache=True, **{argument: prefill.cache_of(out)})
        return {
            "alone": torch.log_softmax(logits, dim=-1),
            "top logit": abs(float(logits.max())),  # margins are read between the top logits
            "in a padded batch": prefill.forced(model, [ids, longer], [len(ids) - 1, len(longer) - 1], pad_id)[0][0],
            "teacher-forced": prefill.forced(model, [ids], [len(ids) - 2], pad_id)[0][1],
            "token by token": torch.log_softmax(step.logits[0, -1].float().cpu(), dim=-1),
            "after a shared beginning": prefill.shared_beginning(model, [ids, sibling], pad_id, argument)[0],
        }


def probe(model: Any, tokenizer: Any) -> dict[str, Any]:
    """Each reading's largest departure from the prompt read alone, over the whole vocabulary and over the top
    candidates (what records keep); the answer, 'yes' when every departure is within ``BOUND``; the top logit."""
    import torch

    found = readings(model, tokenizer)
    alone, logit = found.pop("alone"), found.pop("top logit")
    top = alone.topk(TOP).indices
    departures = {way: float((numbers - alone).abs().max()) for way, numbers in found.items()}
    resolution = torch.finfo(model.dtype).eps * power_of_two_below(logit)  # one step of the dtype there
    noise = max(max(float((numbers[top] - alone[top]).abs().max()) for numbers in found.values()), STEPS * resolution)
    answer = "yes" if max(departures.values()) <= BOUND and resolution <= BOUND else "no"
    return {"answer": answer, "departures": departures, "noise": noise, "top_logit": logit}
