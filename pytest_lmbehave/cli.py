"""The `lmbehave` command: `diff OLD.json NEW.json`, `check --model MODEL`, `init specs|exercises` and `explore
PROMPT` (also `python -m pytest_lmbehave ...`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .config import defaults
from .config.arguments import non_negative, positive
from .config.files import path_problem
from .observations.drift import (
    SEVERITIES,
    Thresholds,
    compare_reports,
    largest_move,
    pair_tests,
    root_causes,
    summaries,
    summary_table,
)
from .reports.report_format import ReportError, load_report
from .reports.selection import KINDS, comparable, environments_side_by_side, weights_moved
from .teaching.check import add_arguments as add_check_arguments
from .teaching.check import run as run_check
from .teaching.explore import add_arguments as add_explore_arguments
from .teaching.explore import run as run_explore
from .teaching.scaffold import add_arguments as add_init_arguments
from .teaching.scaffold import run as run_init

EXIT_OK, EXIT_DRIFT, EXIT_UNUSABLE = 0, 1, 2


def _diff(args: argparse.Namespace) -> int:
    if args.html and path_problem(Path(args.html)) is not None:
        print(
            f"lmbehave diff: --html {args.html}: {path_problem(Path(args.html))}; pass a file path such as drift.html",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    try:
        old, new = load_report(Path(args.old)), load_report(Path(args.new))
    except ReportError as error:
        print(f"lmbehave diff: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    thresholds = Thresholds(near_tie=args.near_tie, prob=args.prob, kl=args.kl, score=args.score)
    environments = environments_side_by_side(old, new)
    weights = weights_moved(old, new)
    old, new, notes = comparable(old, new, tuple(args.only or ()))
    changes, compared = compare_reports(old, new, thresholds)
    table = summary_table(changes)
    moved, where = largest_move(old, new)
    print(f"lmbehave diff: {compared} observations compared, {len(changes)} changes ({args.old} -> {args.new})\n")
    for note in notes:
        print(f"note: {note}")
    if notes:
        print()
    causes = root_causes(changes, weights)
    if causes:
        tokenizer = sum(1 for line in causes if line.startswith("the tokenizer"))
        heading = "root causes:" if weights else "where the changes come from:"
        print(f"root causes ({tokenizer} in the tokenizer):" if tokenizer else heading)
        for line in causes:
            print(f"  {line}")
        print()
    across = [(a, b) for a, b in pair_tests(old, new) if a and b and a != b]
    if across:
        print(f"{len(across)} test(s) paired across models by node id without the model parameter, e.g.")
        for a, b in across[:3]:
            print(f"  {a}  <->  {b}")
        print()
    print(f"{'severity':<10}{'kind':<16}{'count':>6}")
    for severity, kind, count in table or [("-", "no changes", 0)]:
        print(f"{severity:<10}{kind:<16}{count:>6}")
    for line in summaries(old, new):
        print(f"\n{line}" if not line.startswith("  ") else line)
    label = max([36, *(len(what) + 2 for what, _, _ in environments)])
    print(f"\n{'environment':<{label}}{'old':<46}{'new':<46}")
    for what, a, b in environments:
        print(f"{what:<{label}}{a:<46}{b:<46}{'<- differs' if a != b else ''}")
    print(f"\nlargest change of any recorded number: {moved:.2g}" + (f" ({where})" if where else ""))
    if args.save_floor:
        if not _save_floor(Path(args.save_floor), old, new, f"{args.old} vs {args.new}"):
            return EXIT_UNUSABLE
    if changes:
        print("\nchanges, worst first:")
        for change in changes[: args.limit]:
            print(f"  [{change.severity}] {change.kind}: {change.test} #{change.index}\n      {change.summary}")
        if len(changes) > args.limit:
            print(f"  ... {len(changes) - args.limit} more (raise --limit)")
    if args.html:
        from .config.files import write_atomically
        from .reports.html import render_html

        write_atomically(
            Path(args.html), render_html(args.old, args.new, changes, table, environments, compared, causes)
        )
        print(f"\nwrote {args.html}")
    failing = SEVERITIES[: SEVERITIES.index(args.fail_on) + 1]
    if args.max_change is not None and moved > args.max_change:
        print(f"\nlmbehave diff: a recorded number moved by {moved:.2g}, more than --max-change {args.max_change}")
        return EXIT_DRIFT
    return EXIT_DRIFT if any(c.severity in failing for c in changes) else EXIT_OK


def _save_floor(path: Path, old: dict[str, Any], new: dict[str, Any], label: str) -> bool:
    """The reference against itself (rerun, simulated CPUs): its score statistics raise the noise floor at ``path``."""
    from .observations.closeness import save_floor
    from .observations.drift import paired
    from .observations.scores import statistics

    found = statistics(paired(old, new, "scores"))
    if not found.get("positions"):
        print("lmbehave diff: --save-floor: neither report holds a scored text (lm.score) to measure", file=sys.stderr)
        return False
    floor = save_floor(path, found, label)
    print(f"\nnoise floor {path}: mean KL {floor['mean_kl']:.3g}, p99 {floor['p99_kl']:.3g} nats ({label})")
    return True


def _kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"{text!r}: the kinds are {', '.join(KINDS)}")
    return kinds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmbehave", description="pytest-lmbehave tools")
    commands = parser.add_subparsers(dest="command", required=True)
    diff = commands.add_parser("diff", help="compare two --lm-report files and say what drifted")
    diff.add_argument("old", help="report of the baseline run")
    diff.add_argument("new", help="report of the run to judge")
    diff.add_argument(
        "--near-tie",
        type=non_negative,
        default=defaults.NEAR_TIE,
        help=f"a flip is a near-tie when both its margins are below this many nats (default {defaults.NEAR_TIE})",
    )
    diff.add_argument(
        "--prob",
        type=non_negative,
        default=defaults.DRIFT_PROB,
        help=f"largest probability change still counted as none (default {defaults.DRIFT_PROB})",
    )
    diff.add_argument(
        "--kl",
        type=non_negative,
        default=defaults.DRIFT_KL,
        help=f"largest KL divergence (nats) still counted as none (default {defaults.DRIFT_KL})",
    )
    diff.add_argument(
        "--score",
        type=non_negative,
        default=defaults.DRIFT_SCORE,
        help=f"largest change of a score or margin (nats) still counted as none (default {defaults.DRIFT_SCORE})",
    )
    diff.add_argument(
        "--max-change",
        type=non_negative,
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
        help=f"compare only these kinds of observation: {', '.join(KINDS)} (e.g. greedy,next_token,choice to hold "
        "a served copy of a model to the in-process one)",
    )
    diff.add_argument(
        "--save-floor",
        metavar="PATH",
        help="the two reports are the reference against itself (a rerun, simulated CPUs): raise the noise floor at "
        "PATH to their scored texts' KL statistics (for --lm-noise-floor)",
    )
    diff.add_argument("--limit", type=positive, default=40, help="how many changes to list (default 40)")
    diff.add_argument("--html", metavar="PATH", help="also write one self-contained HTML page with charts")
    diff.set_defaults(run=_diff)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
