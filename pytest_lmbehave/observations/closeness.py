"""How close two scored texts are, judged by a profile: llama.cpp's ``--kl-divergence`` statistics (mean and p99 KL
divergence, same top token %) against thresholds written down with where they come from, and never below the noise
floor measured on this machine (a threshold the noise alone would cross is refused, as NeMo's checkpoint tests do).

The floor is learned by comparing the reference with itself: run twice, and under the simulated-hardware variables
(``make portability`` and ``make llamacpp`` write it with ``lmbehave diff --save-floor``); ``--lm-noise-floor FILE``
hands it to ``assert_close``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends.protocol import ALTERNATIVES
from ..config.errors import InputError
from .scores import Scores, exact_kls, record, statistics

MEASURED = (
    "measured exactly (the full vocabulary, bench/kl_exact.py) on the document's 16 texts, 452 scored positions, "
    "against the embedded SmolLM2-135M Q4_1 on llama.cpp (AMD EPYC, AVX-512)"
)


@dataclass(frozen=True)
class Profile:
    name: str
    mean_kl: float  # at most, nats
    p99_kl: float  # at most, nats
    same_top: float  # at least, share of positions
    source: str  # where the thresholds come from

    def limits(self) -> str:
        return f"mean KL <= {self.mean_kl:g}, p99 KL <= {self.p99_kl:g}, same top >= {self.same_top:.0%}"


# Each threshold is about twice the largest measured where the profile should pass (the prose alone, 34 positions,
# measures higher than the 452), and a profile one step stricter fails the next row: Q3_K_M is 7x standard's mean.
PROFILES = {
    "strict": Profile(
        "strict",
        1e-4,
        1e-3,
        0.99,
        "numerical noise only (same weights, same engine; another CPU, thread count or library build): "
        f"{MEASURED}: llama.cpp loaded again 0; transformers under the simulated CPUs (reports' top candidates): "
        "mean 2.4e-11, p99 1.4e-10",
    ),
    "standard": Profile(
        "standard",
        0.02,
        0.05,
        0.85,
        "the same weights on another engine, or a near-lossless re-quantization: "
        f"{MEASURED}: transformers fp32 mean 0.0039, p99 0.015, same top 97%; Q8_0 mean 0.0065, p99 0.026, same "
        "top 98%; the prose alone: Q8_0 mean 0.0083, same top 94%",
    ),
    "relaxed": Profile(
        "relaxed",
        0.3,
        2.0,
        0.50,
        f"a coarser quantization: {MEASURED}: Q3_K_M mean 0.149, p99 0.65, same top 79%; the prose alone: mean "
        "0.195, p99 1.01, same top 59%",
    ),
}

_floor: dict[str, Any] | None = None  # this session's measured noise floor (--lm-noise-floor)


def use_floor(path: Path | None) -> None:
    """The noise floor ``assert_close`` holds every profile to (None: none measured)."""
    global _floor
    _floor = None if path is None else read_floor(path)


def read_floor(path: Path) -> dict[str, Any]:
    __tracebackhide__ = True
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        return {"mean_kl": float(found["mean_kl"]), "p99_kl": float(found["p99_kl"]), **found}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"the noise floor {path} cannot be read ({type(error).__name__}: {error}); measure it again with "
            "`lmbehave diff REFERENCE.json RERUN.json --save-floor PATH`"
        ) from None


def profile_of(profile: str | Profile) -> Profile:
    __tracebackhide__ = True
    if isinstance(profile, Profile):
        chosen = profile
    elif profile in PROFILES:
        chosen = PROFILES[profile]
    else:
        raise InputError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)} or a closeness.Profile")
    if _floor is not None and (chosen.mean_kl < _floor["mean_kl"] or chosen.p99_kl < _floor["p99_kl"]):
        raise InputError(
            f"the profile {chosen.name!r} ({chosen.limits()}) is below this machine's measured noise floor (mean KL "
            f"{_floor['mean_kl']:.3g}, p99 {_floor['p99_kl']:.3g}: {'; '.join(_floor.get('measured_by', []))}): "
            "noise alone would fail it; choose a looser profile, or measure the floor again"
        )
    return chosen


def judged(a: Scores, b: Scores, profile: str | Profile) -> tuple[dict[str, Any], list[str]]:
    """The statistics of ``b`` against ``a`` and, for each that the profile does not allow, one line saying so."""
    __tracebackhide__ = True
    chosen = profile_of(profile)
    if a.ids != b.ids:
        at = next((i for i, (x, y) in enumerate(zip(a.ids, b.ids)) if x != y), min(len(a.ids), len(b.ids)))
        raise InputError(
            f"the two scores read different ids (first at token {at}): their distributions cannot be compared "
            "position by position; the tokenizer differs, which is a change of its own"
        )
    exact = exact_kls(a, b)  # in process: both distributions are whole
    found = statistics([(record(a, ALTERNATIVES), record(b, ALTERNATIVES))], None if exact is None else [exact])
    over = []
    if found["mean_kl"] > chosen.mean_kl:
        over.append(f"mean KL {found['mean_kl']:.5f} > {chosen.mean_kl:g}")
    if found["p99_kl"] > chosen.p99_kl:
        over.append(f"p99 KL {found['p99_kl']:.5f} > {chosen.p99_kl:g}")
    if found["same_top"] < chosen.same_top:
        over.append(f"same top token {found['same_top']:.1%} < {chosen.same_top:.0%}")
    return found, over


def explanation(found: dict[str, Any], over: list[str], profile: Profile, text: str) -> str:
    """Why two scores are not close: what crossed the profile, by how much against the noise floor, the worst
    positions, and where the thresholds come from."""
    floor = _floor["mean_kl"] if _floor is not None else None
    if floor is None:
        verdict = "no noise floor measured here to tell noise from change (--lm-noise-floor FILE)"
    elif floor == 0:
        verdict = "a real change, not noise: the reference measured against itself moved by nothing"
    else:
        verdict = f"a real change, not noise: {found['mean_kl'] / floor:.3g}x the measured noise floor ({floor:.3g})"
    lines = [
        f"scores of {text[:50]!r} are not {profile.name}-close ({profile.limits()}): " + "; ".join(over),
        f"  mean KL {found['mean_kl']:.5f} nats ({found['over']}): {verdict}",
        *(f"  KL {w['kl']:.5f} at token {w['token']}" for w in found["worst"][:3]),
        f"  thresholds: {profile.source}",
    ]
    return "\n".join(lines)
