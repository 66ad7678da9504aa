"""`lmbehave diff OLD.json NEW.json`: two reports compared (``drift``), what they leave out (``selection``), where
the changes come from (``causes``), printed as text and, with --html, as one page (``html``); and the noise floor
two runs of the reference measure (--save-floor), saved for ``observations.closeness`` to read."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..config.files import path_problem, write_atomically
from ..observations.closeness import read_floor
from ..observations.scores import statistics
from .causes import root_causes
from .drift import SEVERITIES, Thresholds, compare_reports, largest_move, pair_tests, paired, summaries, summary_table
from .report_format import ReportError, load_report
from .selection import comparable, environments_side_by_side, paired_environments, paired_weights

EXIT_OK, EXIT_DRIFT, EXIT_UNUSABLE = 0, 1, 2


def run(args: argparse.Namespace) -> int:
    """The diff the parsed command line asks for; its exit status (EXIT_OK, EXIT_DRIFT or EXIT_UNUSABLE)."""
    for flag, path, example in (("--html", args.html, "drift.html"), ("--markdown", args.markdown, "drift.md")):
        if path and path_problem(Path(path)) is not None:
            print(
                f"lmbehave diff: {flag} {path}: {path_problem(Path(path))}; pass a file path such as {example}",
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
    weights = paired_weights(old, new)
    both = [(a, b) for _, a, b in paired_environments(old, new) if a and b]
    pair = both[0] if len(both) == 1 else None  # what moved is told of one model's two environments
    old, new, notes = comparable(old, new, tuple(args.only or ()))
    changes, compared = compare_reports(old, new, thresholds)
    table = summary_table(changes)
    moved, where = largest_move(old, new)
    print(f"lmbehave diff: {compared} observations compared, {len(changes)} changes ({args.old} -> {args.new})\n")
    for note in notes:
        print(f"note: {note}")
    if notes:
        print()
    causes = root_causes(changes, weights, pair)
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
        if not _measure_floor(Path(args.save_floor), old, new, f"{args.old} vs {args.new}"):
            return EXIT_UNUSABLE
    if changes:
        print("\nchanges, worst first:")
        for change in changes[: args.limit]:
            print(f"  [{change.severity}] {change.kind}: {change.test} #{change.index}\n      {change.summary}")
        if len(changes) > args.limit:
            print(f"  ... {len(changes) - args.limit} more (raise --limit)")
    if args.html:
        from .html import render_html

        write_atomically(
            Path(args.html), render_html(args.old, args.new, changes, table, environments, compared, causes)
        )
        print(f"\nwrote {args.html}")
    if args.markdown:
        from .markdown import render

        reproduce = f"Reproduce: `lmbehave diff {Path(args.old).name} {Path(args.new).name}`"
        text = render("lmbehave diff", changes, causes, summaries(old, new), environments, footer=[reproduce])
        write_atomically(Path(args.markdown), text)
        print(f"\nwrote {args.markdown} ({len(text.encode()):,} bytes)")
    failing = SEVERITIES[: SEVERITIES.index(args.fail_on) + 1]
    if args.max_change is not None and moved > args.max_change:
        print(f"\nlmbehave diff: a recorded number moved by {moved:.2g}, more than --max-change {args.max_change}")
        return EXIT_DRIFT
    return EXIT_DRIFT if any(c.severity in failing for c in changes) else EXIT_OK


def _measure_floor(path: Path, old: dict[str, Any], new: dict[str, Any], label: str) -> bool:
    """The reference against itself (rerun, simulated CPUs): its score statistics raise the noise floor at ``path``."""
    found = statistics(paired(old, new, "scores"))
    if not found.get("positions"):
        print("lmbehave diff: --save-floor: neither report holds a scored text (lm.score) to measure", file=sys.stderr)
        return False
    floor = save_floor(path, found, label)
    print(
        f"\nnoise floor {path}: mean KL {floor['mean_kl']:.3g}, p99 {floor['p99_kl']:.3g} nats ({label}; KL "
        f"{found['over']})"
    )
    return True


def save_floor(path: Path, found: dict[str, Any], label: str) -> dict[str, Any]:
    """The floor at ``path`` raised to ``found`` where it is higher (each comparison of the reference with itself
    adds to it), written whole or not at all."""
    floor: dict[str, Any] = {"mean_kl": 0.0, "p99_kl": 0.0, "max_kl": 0.0, "same_top": 1.0, "measured_by": []}
    if path.is_file():
        floor.update(read_floor(path))
    for key in ("mean_kl", "p99_kl", "max_kl"):
        floor[key] = max(float(floor[key]), float(found.get(key, 0.0)))
    floor["same_top"] = min(float(floor["same_top"]), float(found.get("same_top", 1.0)))
    floor["measured_by"] = [
        *floor["measured_by"],
        f"{label}: {found.get('positions', 0)} positions, KL {found.get('over', 'over top candidates')}",
    ]
    write_atomically(path, json.dumps(floor, indent=1) + "\n")
    return floor
