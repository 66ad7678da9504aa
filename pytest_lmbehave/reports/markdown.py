"""The drift as GitHub-flavoured markdown: ``lmbehave diff --markdown`` for a pull request's comment, and the run
summary the plugin appends to ``$GITHUB_STEP_SUMMARY``. One renderer for both, so they read alike.

The verdict is the first line, above any ``<details>``; then the changes, worst first; then, folded, the rest. A
comment is cut to ``COMMENT_BYTES``: the least severe sections go first, and a line says so and where the rest is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .drift import SEVERITIES, Change

COMMENT_BYTES = 60_000  # GitHub takes 65,536 characters a comment; a margin for the marker and a link
SUMMARY_BYTES = 1_000_000  # a job summary takes 1 MiB
ROWS = 50  # changes in the table; the rest are counted


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...]
    rank: int  # lower is kept longer when the text must be cut


def verdict_line(changes: Sequence[Change], causes: Sequence[str]) -> str:
    """'3 changes, 1 root cause: the dtype float32 → bfloat16 (...)', or 'no change beyond the noise floor'."""
    if not changes:
        return "no change beyond the noise floor"
    counts = {severity: sum(1 for c in changes if c.severity == severity) for severity in SEVERITIES}
    kinds = ", ".join(f"{n} {severity}" for severity, n in counts.items() if n)
    named = [cause.rsplit(": ", 1)[0] if cause.endswith("change(s)") else cause for cause in causes]
    where = ""
    if named:
        noun = "root cause" if len(named) == 1 else "root causes"
        where = f", {len(named)} {noun}: " + "; ".join(named)
    noun = "change" if len(changes) == 1 else "changes"
    return f"{len(changes)} {noun} ({kinds}){where}"


def _cell(text: str, width: int = 160) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def changes_table(changes: Sequence[Change], rows: int = ROWS) -> list[str]:
    lines = ["| severity | kind | test | what changed |", "| --- | --- | --- | --- |"]
    for change in changes[:rows]:
        test = change.test.rsplit("/", 1)[-1]
        lines.append(
            f"| {change.severity} | {change.kind} | {_code(_cell(test, 90))} #{change.index} | {_cell(change.summary)} |"
        )
    if len(changes) > rows:
        lines.append(f"\n{len(changes) - rows} more change(s), the least severe; the HTML artifact lists them all.")
    return lines


def sections(
    changes: Sequence[Change],
    summaries: Sequence[str],
    environments: Sequence[tuple[str, str, str]],
) -> list[Section]:
    """The folded parts, most telling first."""
    flips = [c for c in changes if c.kind in ("top-1 flip", "generation", "label", "tokenization", "chat")]
    moved = [c for c in changes if c.kind in ("probabilities", "scores", "margin")]
    rates = [c for c in changes if c.kind in ("failure rate", "draws")]
    differing = [(what, a, b) for what, a, b in environments if a != b]
    found = []
    if flips:
        found.append(
            Section(
                f"Flips ({len(flips)})", tuple(f"- **{c.severity}** {_code(c.test)}: {c.summary}" for c in flips), 1
            )
        )
    if rates:
        found.append(
            Section(
                f"Capability rates and draws ({len(rates)})", tuple(f"- {_code(c.test)}: {c.summary}" for c in rates), 2
            )
        )
    if summaries:
        found.append(Section("Distributions", ("```text", *summaries, "```"), 3))
    if moved:
        found.append(
            Section(
                f"Moved probabilities, scores and margins ({len(moved)})",
                tuple(f"- {_code(c.test)}: {c.summary}" for c in moved),
                4,
            )
        )
    if differing:
        table = (
            "| field | old | new |",
            "| --- | --- | --- |",
            *(f"| {what} | {_cell(a, 60)} | {_cell(b, 60)} |" for what, a, b in differing),
        )
        found.append(Section(f"The environments differ in {len(differing)} field(s)", table, 5))
    return found  # fmt: skip


def render(
    title: str,
    changes: Sequence[Change],
    causes: Sequence[str],
    summaries: Sequence[str],
    environments: Sequence[tuple[str, str, str]],
    limit: int = COMMENT_BYTES,
    rest: str = "the HTML artifact",
    footer: Sequence[str] = (),
) -> str:
    """The whole markdown, under ``limit`` bytes: the verdict, the table, the folded sections; past the limit the
    least telling sections are cut, and a line says which and that ``rest`` holds them."""
    head = [f"**{title}: {verdict_line(changes, causes)}**", ""]
    if causes:
        head += ["Where the changes come from:", *(f"- {cause}" for cause in causes), ""]
    if changes:
        head += [*changes_table(changes), ""]
    parts = sections(changes, summaries, environments)
    return _fit(head, parts, limit, rest, ["", *footer] if footer else [])


def run_summary(
    counts: dict[str, int],
    sets: dict[str, str],
    failures: Sequence[tuple[str, str, str]],
    near_ties: Sequence[tuple[str, str]],
    rates: Sequence[tuple[str, str]],
    limit: int = SUMMARY_BYTES,
) -> str:
    """A pytest run as a job summary: the verdict first (the outcome and the root causes of its failures), the sets
    compared against, each failure with its kind and root cause, then, folded, the near ties and the capability
    rates; under ``limit`` bytes, the folded parts cut first."""
    outcome = ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "no test ran"
    if near_ties:
        outcome += f", {len(near_ties)} near tie(s) within the noise"
    causes = sorted({cause for _, _, cause in failures if cause.startswith("root cause: ")})
    named = "; ".join(cause.removeprefix("root cause: ") for cause in causes)
    if causes:
        noun = "root cause" if len(causes) == 1 else "root causes"
        first = f"**pytest-lmbehave: {outcome}; {len(causes)} {noun}: {_cell(named, 400)}**"
    else:
        first = f"**pytest-lmbehave: {outcome}**"
    head = [first, ""]
    if sets:
        head += [
            "Compared against:",
            *(f"- `{where}`" + (f" ({why})" if why else "") for where, why in sorted(sets.items())),
            "",
        ]
    if failures:
        head += ["| test | kind | verdict |", "| --- | --- | --- |"]
        head += [f"| {_code(_cell(test, 120))} | {kind} | {_cell(cause, 300)} |" for test, kind, cause in failures]
        head.append("")
    parts = []
    if near_ties:
        lines = tuple(f"- {_code(test)}: {_cell(note, 600)}" for test, note in near_ties)
        parts.append(Section(f"{len(near_ties)} near tie(s): flips within the noise, not failures", lines, 1))
    if rates:
        lines = tuple(f"- {_cell(line, 400)} ({_code(test.split('::')[-1])})" for test, line in sorted(rates))
        parts.append(Section(f"Behaviour under change: {len(rates)} failure rate(s), 99 % Clopper-Pearson", lines, 2))
    return _fit(head, parts, limit, "the test log")


def _head_of(section: Section, fits: Callable[[Section], bool]) -> Section | None:
    """The section with as many of its first lines as ``fits`` allows (a code block keeps its closing fence), and a
    line counting the rest; None when not one line fits."""
    fenced = bool(section.lines) and section.lines[0].startswith("```")
    body = list(section.lines[1:-1] if fenced else section.lines)

    def trial(count: int) -> Section:
        lines = body[:count]
        if fenced:
            lines = [section.lines[0], *lines, section.lines[-1]]
        more = f"… and {len(body) - count} more" if count < len(body) else ""
        title = f"{section.title}, the first {count}" if more else section.title
        return Section(title, (*lines, *([more] if more else [])), section.rank)

    low, high = 0, len(body)  # the most lines that fit, by bisection: fitting shrinks as lines grow
    while low < high:
        middle = (low + high + 1) // 2
        if fits(trial(middle)):
            low = middle
        else:
            high = middle - 1
    return trial(low) if low > 0 else None


def _fit(head: list[str], parts: list[Section], limit: int, rest: str, tail: Sequence[str] = ()) -> str:
    """``head``, then each part folded in ``<details>``; the parts least telling cut first to stay under ``limit``
    bytes, with a line saying which and where the rest is."""

    def text(kept: list[Section], cut: list[Section]) -> str:
        body = [*head]
        for section in kept:
            body += ["<details>", f"<summary>{section.title}</summary>", "", *section.lines, "", "</details>", ""]
        if cut:
            body.append(
                f"_Cut short or left out to stay under {limit:,} bytes: {', '.join(s.title for s in cut)}; {rest} has them._"
            )
        return "\n".join([*body, *tail]).rstrip() + "\n"

    kept: list[Section] = list(parts)
    cut: list[Section] = []
    while len(text(kept, cut).encode()) > limit and kept:
        least = max(kept, key=lambda s: s.rank)
        kept.remove(least)
        cut.insert(0, least)
    for section in sorted(cut, key=lambda s: s.rank):  # the most telling of the cut, its first lines, where they fit
        shown = _head_of(section, lambda trial: len(text([*kept, trial], cut).encode()) <= limit)
        if shown is not None:
            kept.append(shown)
    kept.sort(key=lambda s: s.rank)
    found = text(kept, cut)
    if len(found.encode()) > limit:  # the head alone is too long: its lines kept while they fit
        lines, size = [], 0
        note = f"_Cut at {limit:,} bytes; {rest} has the rest._"
        for line in found.splitlines():
            if size + len(line.encode()) + 1 > limit - len(note.encode()) - 2:
                break
            lines.append(line)
            size += len(line.encode()) + 1
        found = "\n".join([*lines, "", note]) + "\n"
    return found
