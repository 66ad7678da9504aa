"""`lmbehave explore PROMPT`: tokens, the top next tokens as bars, and the greedy (or sampled) continuation.

The same model resolution, settings and LM API as the plugin, for poking at a model and finding values to assert.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..api.assertions import candidate_rows
from ..api.lm import LM
from ..backends import check
from ..backends.sampling import Sampling
from ..config import defaults
from ..config.errors import LMBehaveError
from ..config.options import BY_INI, Option
from ..config.parsing import for_argparse, whole
from ..config.settings import build_settings
from ..runtime.registry import Registry

MODEL_OPTIONS = ("lm_model", "lm_dtype", "lm_device", "lm_threads", "lm_attention")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the text to explore, e.g. 'Shakespeare was a'")
    for ini in MODEL_OPTIONS:  # the plugin's own options, without the --lm- prefix
        option = BY_INI[ini]
        parser.add_argument("--" + option.flag.removeprefix("--lm-"), dest=option.ini, help=option.help)
    parser.add_argument(
        "--top",
        type=for_argparse(whole(1), "--top"),
        default=defaults.EXPLORE_TOP,
        help=f"how many next-token candidates to show (default {defaults.EXPLORE_TOP})",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=for_argparse(whole(1), "--max-new-tokens"),
        default=20,
        help="length of each continuation (default 20)",
    )
    parser.add_argument("--sample", action="store_true", help="also show sampled continuations")
    parser.add_argument("--temperature", type=float, help="sampling temperature (implies --sample)")
    parser.add_argument("--top-p", type=float, help="nucleus sampling threshold (implies --sample)")
    parser.add_argument("--top-k", type=int, help="top-k sampling (implies --sample)")
    parser.add_argument(
        "--samples",
        type=for_argparse(whole(1), "--samples"),
        default=3,
        help="how many sampled continuations (default 3)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first sample; each next one adds 1 (default 0)"
    )


def run(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout

    def lookup(option: Option) -> Any:
        return getattr(args, option.ini, None) or (os.environ.get(option.env) if option.env else None)

    try:
        settings = build_settings(lookup)
        check(settings)
        runtime = Registry(settings, lambda message: print(message, file=sys.stderr)).runtime(settings.model)
        lm = LM(runtime)
        tokens = lm.tokenize(args.prompt)
        dist = lm.next_token(args.prompt)
        greedy = lm.generate(args.prompt, max_new_tokens=args.max_new_tokens)
        sampling = None
        if args.sample or args.temperature is not None or args.top_p is not None or args.top_k is not None:
            sampling = Sampling(args.temperature, args.top_p, args.top_k)
        samples = (
            [
                LM(runtime, sampling, args.seed + i).generate(args.prompt, max_new_tokens=args.max_new_tokens)
                for i in range(args.samples)
            ]
            if sampling
            else []
        )
    except LMBehaveError as error:
        print(f"lmbehave explore: {error}", file=sys.stderr)
        return 2
    fingerprint = runtime.fingerprint
    print(
        f"model: {fingerprint['model_name']} (sha256 {fingerprint['model_sha256']}, {fingerprint['dtype']}, {fingerprint['threads']} thread(s))",
        file=out,
    )
    print(f"\ntokens ({len(tokens.ids)}):", file=out)
    for token, piece in zip(tokens.ids, tokens.pieces):
        print(f"  {token:>6}  {piece!r}", file=out)
    print(f"\nnext token, top {args.top} of {dist.vocab_size} (margin {dist.margin:.3f} nats):", file=out)
    for row in candidate_rows(dist, args.top):
        print(row, file=out)
    print(f"\ngreedy, {len(greedy.ids)} new tokens:\n  {greedy.text!r}", file=out)
    for i, sample in enumerate(samples):
        print(f"\n{sample.sampling}, --seed {args.seed + i}:\n  {sample.text!r}", file=out)

    return 0
