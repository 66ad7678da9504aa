"""How cost grows with the work (issue 49), in one run; prints numbers, asserts nothing.

1. **Tests.** `pytest bench/suite -n 2` cold, without a plan, at 1x, 2x and 4x its prompts (``LMBEHAVE_BENCH_SCALE``:
   50, 99 and 198 of the document's prefixes, two tests each): wall time, and time per test above the start-up
   (`pytest bench/suite --collect-only`, measured alone).
2. **Positions.** A random-weight model of the embedded model's shape (its own config: 30 layers, hidden 576), then
   with its hidden and MLP sizes doubled and quadrupled: seconds per position of one prompt of 64 to 512 tokens read
   in one pass (the last position's logits kept), the plugin's one thread, best of 2.
3. **Memory.** `lmbehave check` run serially on random-weight models of the embedded shape with output vocabularies
   of 49,152, 151,936 and 262,144 rows (SmolLM2's tokenizer; rows past its 49,152 tokens out of reach, as
   tests/architectures.py makes them): the peak RSS of the check, against the peak RSS of a process that only
   imports torch and transformers, loads the same model, reads the input embedding rows its tokenizer reaches and
   one 256-token prompt. The difference is what the plugin holds beyond the weights and one forward pass.

4. **Low precision.** `pytest specs/ -n 2` in float32 and in bfloat16 (`--lm-dtype bfloat16`, where every row reads
   alone, token by token: docs/explanation/low-precision.md): wall time, the forward passes, positions read in
   batched passes and one-position steps, and the seconds inside the model's forward (bench/meter.py), per test.

   With ``--device cuda`` the bfloat16 row runs on the GPU (``--lm-device cuda``): the cost per test of reading alone
   there.

    python bench/bench_scaling.py [--only tests|positions|memory|precision] [--device cuda]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import floor
from bench_specs import timed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
VOCABULARIES = (49152, 151936, 262144)
WIDTHS = (1, 2, 4)
LENGTHS = (64, 128, 256, 512)


def tests() -> None:
    startup = floor.startup_s("bench/suite")
    print(f"\n{'bench/suite -n 2, cold, no plan':<34}{'tests':>7}{'wall s':>8}{'s / test':>10}{'above start-up':>16}")
    for scale in (1, 2, 4):
        env = {**os.environ, "LMBEHAVE_BENCH_SCALE": str(scale)}
        command = [sys.executable, "-m", "pytest", "bench/suite", "-q", "-n", "2", "-p", "no:randomly"]
        wall, out = timed([*command, "--lm-plan=none"], env)
        count = passed(out)
        print(f"{f'{scale}x':<34}{count:>7}{wall:>8.1f}{wall / count:>10.3f}{(wall - startup) / count:>16.3f}")
    print(f"(start-up alone: {startup:.1f} s)")


def passed(stdout: str) -> int:
    """The passed tests that pytest's closing line counts ("96 passed, 30 skipped in 28.1s")."""
    words = stdout.strip().splitlines()[-1].split()
    return sum(int(count) for count, what in itertools.pairwise(words) if what.rstrip(",") == "passed")


def embedded_config() -> dict[str, Any]:
    """The converted embedded model's config (its folder beside: SmolLM2's tokenizer for the memory models)."""
    from pytest_lmbehave.backends.transformers.conversion import converted_entry
    from pytest_lmbehave.backends.transformers.loading import content_hash, resolve
    from pytest_lmbehave.config.settings import default_cache_dir

    source, cache = resolve("embedded"), default_cache_dir()
    folder = Path(converted_entry(source.path, content_hash(source, cache), cache, None))
    return {"folder": str(folder), **json.loads((folder / "config.json").read_text())}


def random_model(config: dict[str, Any], width: int = 1, vocab: int | None = None) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    fields = {k: v for k, v in config.items() if k != "folder"}
    fields["hidden_size"] *= width
    fields["intermediate_size"] *= width
    fields.pop("head_dim", None)  # hidden / heads, as the embedded model has it
    if vocab is not None and vocab != fields["vocab_size"]:
        fields["vocab_size"], fields["tie_word_embeddings"] = vocab, False
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(LlamaConfig(**fields), dtype=torch.float32)


def positions() -> None:
    import torch

    torch.set_num_threads(1)
    config = embedded_config()
    print(
        f"\n{'seconds per position, one pass':<34}" + "".join(f"{f'{n} tokens':>12}" for n in LENGTHS) + "  last/first"
    )
    for width in WIDTHS:
        model = random_model(config, width)
        per = []
        with torch.no_grad():
            for length in LENGTHS:
                ids = torch.arange(length).unsqueeze(0) + 100
                per.append(floor.best_s(functools.partial(model, ids, logits_to_keep=1), times=2) / length)
        hidden = config["hidden_size"] * width
        name = f"hidden {hidden} (x{width}), {sum(p.numel() for p in model.parameters()) / 1e6:.0f} M params"
        print(f"{name:<34}" + "".join(f"{p * 1000:>10.2f}ms" for p in per) + f"{per[-1] / per[0]:>12.2f}")
        del model


# The baseline: load the model, read every input embedding row a token of its tokenizer has (the weights a run of
# texts in that tokenizer has resident: safetensors are mapped from the file, and the kernel brings in each page
# around one a text touches, so a check's few thousand distinct tokens bring in nearly all 113 MB of those rows at
# 49,152 x 576), then one 256-token prompt. Without that read the baseline held 110 MB less at 262,144 rows.
CHILD = """
import sys, torch
from transformers import AutoModelForCausalLM
torch.set_num_threads(1)
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
with torch.no_grad():
    model.get_input_embeddings().weight[: int(sys.argv[2])].sum()
    model(torch.arange(256).unsqueeze(0) + 100, logits_to_keep=1)
"""

# The peak RSS of a command, read in a small wrapper: a process forked from this one (which has held the 4x model)
# would carry this one's high-water mark into its own ru_maxrss across exec.
CHECKED = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def memory() -> None:
    from architectures import _out_of_reach, smollm2_tokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()

    config = embedded_config()
    lmbehave = str(Path(sys.executable).with_name("lmbehave"))
    print(
        f"\n{'lmbehave check, serial':<26}{'weights MB':>11}{'load+read MB':>13}{'check peak MB':>14}{'beyond MB':>10}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for vocab in VOCABULARIES:
            folder = Path(scratch) / f"vocab-{vocab}"
            folder.mkdir()
            size, _ = smollm2_tokenizer(Path(config["folder"]), folder)
            model = random_model(config, vocab=vocab)
            if vocab > size:
                _out_of_reach(model, size)
            weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
            model.save_pretrained(folder)
            del model
            bare = peak_mb([sys.executable, "-c", CHILD, str(folder), str(size)])
            report = folder / "report.json"
            checked = peak_mb([lmbehave, "check", "--model", str(folder), "--report", str(report)], ok=("0", "1"))
            print(f"{f'vocabulary {vocab:,}':<26}{weights:>11.0f}{bare:>13.0f}{checked:>14.0f}{checked - bare:>10.0f}")


def peak_mb(command: list[str], ok: tuple[str, ...] = ("0",)) -> float:
    """The peak RSS of ``command`` in MB; exits naming it unless its status is in ``ok`` (lmbehave check exits 1 on
    a random model, whose facts and behaviours fail, as they should)."""
    code, peak = subprocess.run(
        [sys.executable, "-c", CHECKED, *command], capture_output=True, text=True, check=True
    ).stdout.split()
    if code not in ok:
        sys.exit(f"{' '.join(command)} could not run (exit {code})")
    return int(peak) / 1024


def precision(device: str = "cpu") -> None:
    print(
        f"\n{'pytest specs/ -n 2':<20}{'wall s':>8}{'tests':>7}{'passes':>8}{'batched':>9}{'steps':>7}{'forward s':>10}"
        f"{'passes/test':>12}{'forward s/pass':>15}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for dtype in ("float32", "bfloat16"):
            meter = Path(scratch) / dtype
            command = [sys.executable, "-m", "pytest", "specs", "-q", "-n", "2", "-p", "no:randomly", "-p", "meter"]
            if dtype == "bfloat16":
                command.append(f"--lm-device={device}")
            wall, out = timed([*command, f"--lm-dtype={dtype}"], floor.metering(meter))
            tests = passed(out)
            read = floor.read(floor.metered(meter))
            print(
                f"{dtype:<20}{wall:>8.1f}{tests:>7}{read['passes']:>8}{read['batched']:>9}{read['steps']:>7}"
                f"{read['forward_s']:>10.1f}{read['passes'] / tests:>12.1f}{read['forward_s'] / max(read['passes'], 1):>15.4f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("tests", "positions", "memory", "precision"))
    parser.add_argument("--device", default="cpu", help="where the bfloat16 row of the precision part runs (cpu, cuda)")
    args = parser.parse_args()
    parts = {"tests": tests, "positions": positions, "memory": memory, "precision": lambda: precision(args.device)}
    for name, part in parts.items():
        if args.only in (None, name):
            part()


if __name__ == "__main__":
    main()
