"""Verdicts in the dtype users run on a GPU: the numerics probe, a bfloat16 set that passes its own next run in every
mode, a wrong recording that still fails when the plan drafts it, and tolerances in the dtype's own units.

The mode checks run a small subset of the real specs on the embedded model in bfloat16 (the tests' tiny model is
invariant even in bfloat16: its sums are too short to round differently)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_lmbehave.observations.differences import StepCheck, Tolerances
from pytest_lmbehave.observations.verdict import compare

from .conftest import write_wrong_step

SPECS = Path(__file__).resolve().parent.parent / "specs"
SUBSET = ["test_generation.py", "test_scoring.py"]
BF16 = {"dtype": "bfloat16", "batch_invariant": "no", "noise": "0.25", "logit_scale": "16"}
FP32 = {"dtype": "float32", "batch_invariant": "yes", "noise": "1.1e-05", "logit_scale": "16"}


def env(fields: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in {"model_sha256": "b179c9523d0e6a0f", **fields}.items())


def generation(ids: list[int], margins: list[float], fields: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "generation",
        "prompt": "Shakespeare was a",
        "input_ids": [4370, 10735, 436, 253],
        "sampling": "greedy",
        "seed": None,
        "text": "".join(f"<{i}>" for i in ids),
        "ids": ids,
        "margins": margins,
        "env": env(fields),
    }


def teacher_reading_the_tie(prompt: str, ids: Any) -> list[StepCheck]:
    """Today's model under teacher forcing: the recorded token at step 1 is one bfloat16 step behind its rival."""
    return [
        StepCheck(t, t if i != 1 else 5, -0.1, 1 if i != 1 else 2, 0.0 if i != 1 else 0.125) for i, t in enumerate(ids)
    ]


def test_a_one_step_bfloat16_flip_at_a_true_tie_passes_with_a_warning_naming_the_step() -> None:
    old = generation([1, 2, 3], [1.0, 0.0, 1.0], BF16)
    new = generation([1, 5, 3], [1.0, 0.125, 1.0], BF16)
    tolerances = Tolerances().for_numerics(BF16)
    [diff] = compare(old, new, tolerances, teacher_reading_the_tie)
    assert diff.near_tie, diff.text
    assert "NEAR-TIE" in diff.text and "0.125 = 1 bfloat16 step at |logit| 16-32" in diff.text
    assert "within 0.25 (bfloat16's measured noise between batch layouts and paths, 2 steps at |logit| 16-32)" in (
        diff.text
    )


def test_the_same_flip_in_float32_is_a_real_change() -> None:
    old = generation([1, 2, 3], [1.0, 0.0, 1.0], FP32)
    new = generation([1, 5, 3], [1.0, 0.125, 1.0], FP32)
    tolerances = Tolerances().for_numerics(FP32)
    assert tolerances == Tolerances()  # float32's measured noise is below every tolerance: nothing changes
    [diff] = compare(old, new, tolerances, teacher_reading_the_tie)
    assert not diff.near_tie and "the new margin is clear, a real change of behaviour" in diff.text


def test_a_flip_to_a_token_today_ranks_a_nat_behind_is_never_a_near_tie_whatever_the_recording_says() -> None:
    def far_behind(prompt: str, ids: Any) -> list[StepCheck]:
        return [
            StepCheck(t, t if i != 1 else 5, -2.0, 1 if i != 1 else 40, 0.0 if i != 1 else 1.5)
            for i, t in enumerate(ids)
        ]

    old = generation([1, 2, 3], [1.0, 0.0, 1.0], BF16)  # a margin of 0 written by hand beside the wrong token
    new = generation([1, 5, 3], [1.0, 0.125, 1.0], BF16)
    [diff] = compare(old, new, Tolerances().for_numerics(BF16), far_behind)
    assert not diff.near_tie and "1.5000 nats behind today's top candidate (beyond the near-tie threshold" in diff.text


def test_a_margin_that_moved_by_one_bfloat16_step_is_the_dtypes_resolution_not_a_change() -> None:
    old = generation([1, 2], [4.5, 1.0], BF16)
    new = generation([1, 2], [4.625, 1.0], BF16)
    assert compare(old, new, Tolerances().for_numerics(BF16)) == []
    moved = compare(old, generation([1, 2], [5.0, 1.0], BF16), Tolerances().for_numerics(BF16))
    assert [d.kind for d in moved] == ["margin"]  # 4 steps: beyond the measured noise
    assert "4.5 -> 5.0 (a move of 0.5 = 4 bfloat16 steps at |logit| 16-32; tolerance 0.251;" in moved[0].text
    assert [
        d.kind
        for d in compare(generation([1, 2], [4.5, 1.0], FP32), generation([1, 2], [4.625, 1.0], FP32), Tolerances())
    ] == ["margin"]


# -- the real model, in bfloat16 -------------------------------------------------------------------------------------
def test_the_probe_finds_float32_invariant_within_the_tolerance_and_bfloat16_not(tmp_path: Path) -> None:
    from pytest_lmbehave.backends.transformers import invariance
    from pytest_lmbehave.backends.transformers.inprocess import TransformersBackend
    from pytest_lmbehave.backends.transformers.loading import load, resolve
    from pytest_lmbehave.config.settings import Settings, default_cache_dir

    found = {}
    for dtype in ("float32", "bfloat16"):
        loaded = load(resolve("embedded"), Settings(cache_dir=default_cache_dir(), dtype=dtype))
        probed = invariance.probe(loaded.model, loaded.tokenizer)
        found[dtype] = (probed, loaded.fingerprint, TransformersBackend(loaded).alone)
    (fp32, fp32_print, fp32_alone), (bf16, bf16_print, bf16_alone) = found["float32"], found["bfloat16"]
    assert fp32["answer"] == fp32_print["batch_invariant"] == "yes" and not fp32_alone
    assert max(fp32["departures"].values()) <= invariance.BOUND < fp32["noise"] * 1000
    assert bf16["answer"] == bf16_print["batch_invariant"] == "no" and bf16_alone
    assert float(bf16_print["noise"]) >= 2**-3  # at least one bfloat16 step at the top logit (16-32): 0.125
    assert bf16_print["logit_scale"] == fp32_print["logit_scale"]


@pytest.mark.parametrize(("dtype", "answer", "noise"), [("bfloat16", "no", 0.25), ("float32", "yes", 2 * 16 * 2**-23)])
def test_a_16_bit_dtype_is_not_called_invariant_even_when_its_probe_readings_agree_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, dtype: str, answer: str, noise: float
) -> None:
    # Seen on an NVIDIA H200: bfloat16's probe readings were bit-identical, yet a generation decoded token by token
    # left the one a teacher-forced pass verified, at a tie one path read as a one-step margin.
    import torch

    from pytest_lmbehave.backends.transformers import invariance

    same = torch.log_softmax(torch.arange(50, dtype=torch.float32), dim=0)
    ways = ("alone", "in a padded batch", "teacher-forced", "token by token", "after a shared beginning")
    monkeypatch.setattr(
        invariance, "readings", lambda model, tokenizer: {"top logit": 20.0, **dict.fromkeys(ways, same)}
    )
    probed = invariance.probe(SimpleNamespace(dtype=getattr(torch, dtype)), None)
    assert max(probed["departures"].values()) == 0
    assert probed["answer"] == answer and probed["noise"] == pytest.approx(noise)  # two steps at |logit| 16-32


PLAN = "--lm-plan=specs/lmbehave-plan.json"  # the repository's plan (its drafts are float32's), copied


def pytest_in(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    quiet = ["-q", "-p", "no:cacheprovider", "--lm-dtype=bfloat16", "--lm-variant=mine", "-rA"]
    modules = [f"specs/{name}" for name in SUBSET]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *modules, *quiet, *args], cwd=root, capture_output=True, text=True
    )


def recorded(root: Path, *args: str) -> Path:
    """Two spec modules copied with the plan into ``root``, and a bfloat16 set of theirs (``embedded@mine``)
    recorded serially without the plan: the folder the runs start in."""
    (root / "specs").mkdir(parents=True)
    for name in [*SUBSET, "document.py", "conftest.py", "lmbehave-plan.json"]:
        shutil.copy(SPECS / name, root / "specs" / name)
    done = pytest_in(root, "-p", "no:xdist", "-p", "no:randomly", "--lm-plan=none", "--snapshot-update", *args)
    assert done.returncode == 0, done.stdout[-3000:]
    return root


MODES = {  # one test, so that one worker records the set once under -n 2
    "n2-with-plan": ["-n", "2", "-p", "no:randomly", PLAN],
    "serial-with-plan": ["-p", "no:xdist", "-p", "no:randomly", PLAN],
    "shuffled-n2": ["-n", "2", "-p", "randomly", "--randomly-seed=7", PLAN],
    "serial-no-plan-subset": [
        "-p",
        "no:xdist",
        "-p",
        "randomly",
        "--randomly-seed=3",
        "--lm-plan=none",
        "-k",
        "not prefix",
    ],
}


def test_a_bfloat16_set_passes_its_own_next_run_in_every_mode(tmp_path: Path) -> None:
    root = recorded(tmp_path)
    for mode, args in MODES.items():
        done = pytest_in(root, *args)
        assert done.returncode == 0, f"{mode}: {done.stdout[-3000:]}"
        last = done.stdout.strip().splitlines()[-1]
        assert re.search(r"\b[1-9]\d* snapshots? passed", done.stdout) and "failed" not in last, f"{mode}: {last}"


def test_a_wrong_bfloat16_recording_fails_even_when_the_plan_drafts_it(tmp_path: Path) -> None:
    root = recorded(tmp_path, "-k", "50_tokens")
    record = root / "specs" / "__lm_snapshots__" / "embedded@mine" / "test_generation.ambr"
    text = record.read_text()
    name = "test_greedy_generation_of_50_tokens[embedded]"
    block = text.split(f"# name: {name}\n", 1)[1].split("# ---", 1)[0]
    ids = json.loads(re.search(r"^  ids: (\[.*\])$", block, flags=re.M).group(1))  # type: ignore[union-attr]
    # A token the model ranks far below its top candidate at step 10: the one after the recorded token in the
    # vocabulary would do, but take one known to be >= 1 nat behind, read from the model itself.
    from pytest_lmbehave.backends.transformers.loading import load, resolve
    from pytest_lmbehave.config.settings import Settings, default_cache_dir

    loaded = load(resolve("embedded"), Settings(cache_dir=default_cache_dir(), dtype="bfloat16"))
    import torch

    with torch.no_grad():
        logits = loaded.model(torch.tensor([[4370, 10735, 436, 253, *ids[:10]]])).logits[0, -1].float()
    order = logits.argsort(descending=True).tolist()
    wrong = next(t for t in order if float(logits[order[0]] - logits[t]) >= 1.0)
    write_wrong_step(root / "specs", record, ids, wrong)
    done = pytest_in(root, "-n", "2", "-p", "no:randomly", PLAN, "-k", "50_tokens")
    assert done.returncode == 1, done.stdout[-3000:]
    assert f"first diverging token 10: recorded [{wrong}]" in done.stdout
    assert "a real change of behaviour" in done.stdout and "NEAR-TIE" not in done.stdout


# -- the property specs still fail on a real violation, at bfloat16's noise ------------------------------------------
class Noisy:
    """The LM API of the embedded model (float32), claiming bfloat16's measured noise (0.25 nats), with what the
    spec reads tampered beyond it: a property spec whose tolerance now comes from the dtype must still fail."""

    def __init__(self, lm: Any, tamper: Any) -> None:
        self.lm, self.tamper = lm, tamper

    noise = 0.25

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.lm, name)
        return self.tamper(name, found) if callable(found) else found


@pytest.fixture(scope="module")
def embedded_lm() -> Any:
    from pytest_lmbehave import LM
    from pytest_lmbehave.backends import open as open_backend
    from pytest_lmbehave.config.settings import Settings, default_cache_dir
    from pytest_lmbehave.runtime.runtime import Runtime

    sys.path.insert(0, str(SPECS))  # the specs import their document module
    return LM(Runtime(open_backend("embedded", Settings(cache_dir=default_cache_dir()))))


def untouched(name: str, verb: Any) -> Any:
    return verb


def far_below(dist: Any, rank: int) -> int:
    return int(dist.top(rank)[-1].id)


def test_the_chain_of_argmaxes_still_fails_on_a_token_a_nat_behind(embedded_lm: Any) -> None:
    import dataclasses

    import test_generation as spec  # specs/test_generation.py

    def tamper(name: str, verb: Any) -> Any:
        if name != "generate":
            return verb

        def generate(*args: Any, **kwargs: Any) -> Any:
            found = verb(*args, **kwargs)
            step = embedded_lm.steps(found)[5]
            ids = (*found.ids[:5], far_below(step, 30), *found.ids[6:])
            return dataclasses.replace(found, ids=ids)

        return generate

    spec.test_greedy_generation_is_the_chain_of_argmaxes(Noisy(embedded_lm, untouched))
    with pytest.raises(AssertionError, match=r"step 5: .* nats behind the argmax"):
        spec.test_greedy_generation_is_the_chain_of_argmaxes(Noisy(embedded_lm, tamper))


def test_the_score_against_the_next_token_question_still_fails_beyond_the_noise(embedded_lm: Any) -> None:
    import dataclasses

    import test_scoring as spec  # specs/test_scoring.py

    def tamper(name: str, verb: Any) -> Any:
        if name != "score":
            return verb
        found = verb
        return lambda text: dataclasses.replace(
            found(text), logprobs=tuple(v - 0.5 * (i == 0) for i, v in enumerate(found(text).logprobs))
        )

    spec.test_every_token_after_the_first_is_scored_given_the_ones_before_it(Noisy(embedded_lm, untouched))
    with pytest.raises(AssertionError):
        spec.test_every_token_after_the_first_is_scored_given_the_ones_before_it(Noisy(embedded_lm, tamper))


def test_a_sampled_token_outside_the_top_50_still_fails_at_the_noise(embedded_lm: Any) -> None:
    import dataclasses

    import test_sampling as spec  # specs/test_sampling.py

    def tamper(name: str, verb: Any) -> Any:
        if name != "with_sampling":
            return verb

        def with_sampling(**knobs: Any) -> Any:
            sampler = verb(**knobs)
            hot = knobs.get("temperature") == 14.0

            def generate(*args: Any, **kwargs: Any) -> Any:
                found = sampler.generate(*args, **kwargs)
                if not hot:
                    return found
                step = embedded_lm.steps(found)[3]
                return dataclasses.replace(found, ids=(*found.ids[:3], far_below(step, 400), *found.ids[4:]))

            return type("Sampler", (), {"generate": staticmethod(generate)})()

        return with_sampling

    spec.test_temperature_0_2_stays_close_to_greedy_while_14_is_far_more_diverse(Noisy(embedded_lm, untouched))
    with pytest.raises(AssertionError, match="where False = all"):  # every hot token within the top 50
        spec.test_temperature_0_2_stays_close_to_greedy_while_14_is_far_more_diverse(Noisy(embedded_lm, tamper))


# -- oneDNN's level: the kernels a 16-bit product runs on a CPU --------------------------------------------------------
ZEN4 = "sse4_1 avx2 avx512f avx512bw avx512vl avx512dq avx512_bf16"  # an AMD EPYC with AVX-512 (flags abridged)
SAPPHIRE_RAPIDS = f"{ZEN4} avx512_fp16 amx_tile amx_bf16 amx_int8"  # an Intel Xeon with AMX


@pytest.mark.parametrize(
    ("flags", "cap", "level"),
    [
        (ZEN4, None, "avx512_core_bf16"),
        (SAPPHIRE_RAPIDS, None, "avx512_core_amx"),
        (SAPPHIRE_RAPIDS, "AVX512_CORE_BF16", "avx512_core_bf16"),
        (SAPPHIRE_RAPIDS, "avx10_1_512", "avx512_core_fp16"),
        (ZEN4, "AVX2", "avx2"),
        (ZEN4, "AVX512_CORE_AMX", "avx512_core_bf16"),  # a cap above the CPU caps nothing
        (ZEN4, "ALL", "avx512_core_bf16"),
        ("sse4_1 avx2 avx512f avx512bw avx512vl", None, "avx2"),  # no avx512dq: not oneDNN's avx512_core
        ("sse4_1 avx2 avx512_bf16", None, "avx2"),  # a level needs every lower level's flags
    ],
)
def test_onednns_level_is_the_highest_the_cpus_flags_allow_at_most_its_variables_cap(
    flags: str, cap: str | None, level: str
) -> None:
    from pytest_lmbehave.backends.transformers.hardware import onednn_isa

    assert onednn_isa(set(flags.split()), cap) == level


def test_a_16_bit_fingerprint_on_the_cpu_names_onednns_level_and_a_float32_one_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_lmbehave.backends.transformers import hardware
    from pytest_lmbehave.config import facts

    monkeypatch.setattr(facts, "cpu_facts", lambda cache, variables, compute: {"cpu_capability": "AVX512"})
    monkeypatch.setattr(facts, "cpu_flags", lambda: SAPPHIRE_RAPIDS)
    monkeypatch.setattr(hardware.platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert hardware.hardware("cpu", None, "bfloat16")["onednn_isa"] == "avx512_core_amx"
    assert hardware.hardware("cpu", None, "float16")["onednn_isa"] == "avx512_core_amx"
    assert "onednn_isa" not in hardware.hardware("cpu", None, "float32")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert hardware.hardware("cpu", None, "bfloat16")["onednn_isa"] == "avx512_core_bf16"


def test_a_run_on_other_onednn_kernels_compares_against_the_closest_set_and_says_how_to_run_the_recorded_ones(
    tmp_path: Path,
) -> None:
    from pytest_lmbehave.plugin import snapshot_sets

    common = {**BF16, "device": "cpu", "engine": "transformers", "transformers": "5.24.0", "cpu_capability": "AVX512"}
    for name, fields in {
        "bf16": {**common, "onednn_isa": "avx512_core_bf16"},
        "bf16-avx2": {**common, "cpu_capability": "AVX2", "onednn_isa": "avx2"},
    }.items():
        folder = tmp_path / snapshot_sets.SETS_DIRNAME / f"embedded@{name}"
        folder.mkdir(parents=True)
        (folder / "test_x.ambr").write_text(f'# name: t\n  env: "{env(fields)}"\n# ---\n', encoding="utf-8")
    here = {**common, "model_sha256": "b179c9523d0e6a0f"}
    assert snapshot_sets.choose_variant(tmp_path, "embedded", {**here, "onednn_isa": "avx512_core_bf16"}, None) == (
        "embedded@bf16",
        "recorded in this run's environment",
    )
    chosen, why = snapshot_sets.choose_variant(tmp_path, "embedded", {**here, "onednn_isa": "avx512_core_amx"}, None)
    assert chosen == "embedded@bf16"
    assert why.startswith("the recorded variant closest to this run; it differs in onednn_isa")
    assert "ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 runs the recorded ones" in why
