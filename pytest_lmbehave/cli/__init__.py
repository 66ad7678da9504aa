"""The `lmbehave` command, argparse over the commands: `diff OLD.json NEW.json` (``reports.diff``), `check --model
MODEL`, `init specs|exercises|ci`, `comment` and `explore PROMPT` (this package's modules); also
`python -m pytest_lmbehave ...`."""

from __future__ import annotations

import argparse
import sys

from ..config import defaults
from ..config.parsing import for_argparse, non_negative, whole
from ..observations import selectable
from ..reports.diff import run as run_diff
from ..reports.drift import SEVERITIES
from .check import add_arguments as add_check_arguments
from .check import run as run_check
from .comment import add_arguments as add_comment_arguments
from .comment import run as run_comment
from .explore import add_arguments as add_explore_arguments
from .explore import run as run_explore
from .init import add_arguments as add_init_arguments
from .init import run as run_init


def _kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in selectable()]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"{text!r}: the kinds are {', '.join(selectable())}")
    return kinds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmbehave", description="pytest-lmbehave tools")
    commands = parser.add_subparsers(dest="command", required=True)
    diff = commands.add_parser("diff", help="compare two --lm-report files and say what drifted")
    diff.add_argument("old", help="report of the baseline run")
    diff.add_argument("new", help="report of the run to judge")
    for flag, default, meaning in (
        ("--near-tie", defaults.NEAR_TIE, "a flip is a near-tie when both its margins are below this many nats"),
        ("--prob", defaults.DRIFT_PROB, "largest probability change still counted as none"),
        ("--kl", defaults.DRIFT_KL, "largest KL divergence (nats) still counted as none"),
        ("--score", defaults.DRIFT_SCORE, "largest change of a score or margin (nats) still counted as none"),
    ):
        diff.add_argument(
            flag, type=for_argparse(non_negative, flag), default=default, help=f"{meaning} (default {default})"
        )
    diff.add_argument(
        "--max-change",
        type=for_argparse(non_negative, "--max-change"),
        default=None,
        metavar="X",
        help="also exit 1 when any recorded number moved by more than X (e.g. to hold a noise floor)",
    )
    diff.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default="minor",
        help="exit 1 when a change this severe or worse exists (default minor: any)",
    )
    diff.add_argument(
        "--only",
        type=_kinds,
        metavar="KIND[,KIND]",
        help=f"compare only these kinds of observation: {', '.join(selectable())} (e.g. greedy,next_token,choice to hold "
        "a served copy of a model to the in-process one)",
    )
    diff.add_argument(
        "--save-floor",
        metavar="PATH",
        help="the two reports are the reference against itself (a rerun, simulated CPUs): raise the noise floor at "
        "PATH to their scored texts' KL statistics (for --lm-noise-floor)",
    )
    diff.add_argument(
        "--limit", type=for_argparse(whole(1), "--limit"), default=40, help="how many changes to list (default 40)"
    )
    diff.add_argument("--html", metavar="PATH", help="also write one self-contained HTML page with charts")
    diff.add_argument(
        "--markdown",
        metavar="PATH",
        help="also write the diff as GitHub-flavoured markdown for a pull request: the verdict first, the changes "
        "worst first, the rest folded; under 60,000 bytes whatever the diff",
    )
    diff.set_defaults(run=run_diff)
    explore = commands.add_parser("explore", help="show a prompt's tokens, top next tokens and continuations")
    add_explore_arguments(explore)
    explore.set_defaults(run=run_explore)
    check = commands.add_parser(
        "check", help="run the document's behaviour specs on any model: which behaviours hold, and a report"
    )
    add_check_arguments(check)
    check.set_defaults(run=run_check)
    init = commands.add_parser("init", help="write the document's specs or the exercises into your project")
    add_init_arguments(init)
    init.set_defaults(run=run_init)
    comment = commands.add_parser(
        "comment", help="post or update the one drift comment on a pull request (GitHub Actions' workflow_run)"
    )
    add_comment_arguments(comment)
    comment.set_defaults(run=run_comment)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
