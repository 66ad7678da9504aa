"""The draws kind: ``lm.draws`` recorded as counts, and two records compared as distributions, never as token ids.

A seed never transfers between engines or versions, so two runs' draws are held to each other by a test of
homogeneity: a G-test over a 2 x k table of counts (the tokens both records list, each kept as its own cell where
both runs together expect it ``MIN_EXPECTED`` times or more, the rest pooled), at ``ALPHA``. A real change of the
sampler or of the distribution it draws from is rejected; draws that differ only as two samples of one distribution
are not. The record holds counts (whole numbers), so the noise floor between two runs (``record_move``) never
measures sampling noise."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import statistics
from .conformance import ALPHA, MIN_EXPECTED, Draws
from .differences import DRAWN, Compared, Difference, Tolerances
from .rates import percent

ROWS = 50  # tokens a record lists at most, most drawn first; the rest are counted together ("others")
SHIFTS = 3  # the largest shifts a difference names


def record(observation: Draws, top: int) -> dict[str, Any]:
    """The settings and the counts: every token drawn at least ``MIN_EXPECTED`` times (up to ``ROWS``), as
    [piece, id, count] rows, and the draws left out of them. ``top`` is not used: a shorter list would only pool
    cells a test of homogeneity can tell apart."""
    counts = observation.counts
    order = sorted((int(t) for t in np.nonzero(counts >= MIN_EXPECTED)[0]), key=lambda t: (-int(counts[t]), t))
    name = observation.decode if observation.decode is not None else (lambda token: f"#{token}")
    rows: list[list[Any]] = [[name(t), t, int(counts[t])] for t in order[:ROWS]]
    knobs = observation.knobs
    return {
        "kind": "draws",
        "prompt": observation.prompt,
        "input_ids": list(observation.ids),
        "settings": {
            "temperature": knobs.temperature,
            "top_k": knobs.top_k,
            "top_p": knobs.top_p,
            "min_p": knobs.min_p,
        },
        "order": list(knobs.order),
        "n": len(observation.tokens),
        "counts": rows,
        "others": len(observation.tokens) - sum(int(row[2]) for row in rows),
    }


def table(old: dict[str, Any], new: dict[str, Any]) -> np.ndarray:
    """The 2 x k table the test reads: one cell per token both records list, where both runs together expect it
    ``MIN_EXPECTED`` times or more on each side; every other draw pooled in the last cell (dropped when empty)."""
    before = {int(row[1]): int(row[2]) for row in old.get("counts", [])}
    after = {int(row[1]): int(row[2]) for row in new.get("counts", [])}
    n_old, n_new = int(old.get("n", 0)), int(new.get("n", 0))
    share_old = n_old / max(1, n_old + n_new)
    cells = []
    for token in (t for t in before if t in after):
        both = before[token] + after[token]
        if min(both * share_old, both * (1 - share_old)) >= MIN_EXPECTED:
            cells.append((before[token], after[token]))
    rest = (n_old - sum(a for a, _ in cells), n_new - sum(b for _, b in cells))
    if sum(rest) > 0:
        cells.append(rest)
    return np.array(cells, dtype=np.int64).reshape(-1, 2).T


def homogeneity(old: dict[str, Any], new: dict[str, Any]) -> tuple[float, float, int] | None:
    """The G-test of homogeneity of the two records' counts: (statistic, p-value, degrees of freedom); None when
    there is nothing to test (every draw of both runs one token)."""
    counts = table(old, new)
    if counts.shape[1] < 2:
        return None
    return statistics.g_homogeneity(counts)


def shares(record: dict[str, Any]) -> dict[int, tuple[str, float]]:
    n = max(1, int(record.get("n", 0)))
    return {int(row[1]): (str(row[0]), int(row[2]) / n) for row in record.get("counts", [])}


def shifts(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The tokens whose share moved most, in standard errors: "' great' 12.1 % -> 4.0 %"."""
    before, after = shares(old), shares(new)
    n_old, n_new = max(1, int(old.get("n", 0))), max(1, int(new.get("n", 0)))

    def standardised(token: int) -> float:
        a, b = before.get(token, ("", 0.0))[1], after.get(token, ("", 0.0))[1]
        pooled = (a * n_old + b * n_new) / (n_old + n_new)
        return abs(b - a) / math.sqrt(max(pooled * (1 - pooled) * (1 / n_old + 1 / n_new), 1e-12))

    moved = sorted(set(before) | set(after), key=lambda t: (-standardised(t), t))[:SHIFTS]
    lines = []
    for token in moved:
        piece = before.get(token, after.get(token, ("?", 0.0)))[0]
        a, b = before.get(token, ("", None))[1], after.get(token, ("", None))[1]
        lines.append(f"{piece!r} {_share(a, old)} -> {_share(b, new)}")
    return lines


def _share(value: float | None, record: dict[str, Any]) -> str:
    """A token's share, or where a record does not list it, the most it can be: under ``MIN_EXPECTED`` draws, or,
    where the list was cut at ``ROWS``, no more than its least listed count."""
    if value is not None:
        return percent(value)
    rows = record.get("counts") or []
    n = max(1, int(record.get("n", 1)))
    if len(rows) >= ROWS:
        return f"<= {percent(min(int(row[2]) for row in rows) / n)}"
    return f"< {percent(MIN_EXPECTED / n)}"


def total_variation(old: dict[str, Any], new: dict[str, Any]) -> float:
    """Half the summed share differences over the tokens either record lists (the unlisted ones pooled)."""
    before, after = shares(old), shares(new)
    listed = sum(abs(after.get(t, ("", 0.0))[1] - before.get(t, ("", 0.0))[1]) for t in set(before) | set(after))
    rest = abs(1 - sum(s for _, s in after.values()) - (1 - sum(s for _, s in before.values())))
    return 0.5 * (listed + rest)


def compare(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Any = None) -> Compared:
    """The draws against the recorded ones as two samples: a difference when the G-test of homogeneity rejects
    them at α = 0.01 (which tokens a seed drew is never compared), or when they were asked with other settings."""
    handled = {"settings", "order", "n", "counts", "others"}
    if "settings" in old and old["settings"] != new.get("settings"):
        text = f"draws asked with {_settings(old)} recorded, {_settings(new)} now: other settings, not compared"
        return [Difference(DRAWN, text, "settings", old["settings"], new.get("settings"))], handled
    if "counts" not in old:
        return [], handled
    tested = homogeneity(old, new)
    if tested is None or tested[1] >= ALPHA:
        return [], handled
    statistic, p_value, dof = tested
    order = (
        ""
        if old.get("order") == new.get("order")
        else f"; the samplers' orders differ ({_order(old)} recorded, {_order(new)} now)"
    )
    text = (
        f"the draws after {str(old.get('prompt', ''))[-40:]!r} ({_settings(old)}) are not one distribution: "
        f"G = {statistic:.1f} on {dof} df, p = {p_value:.2g} < α = {ALPHA:g} ({old.get('n')} draws recorded, "
        f"{new.get('n')} now){order}\n  largest shifts: " + "; ".join(shifts(old, new))
    )
    return [Difference(DRAWN, text, "counts", size=total_variation(old, new))], handled


def _settings(record: dict[str, Any]) -> str:
    settings = record.get("settings") or {}
    shown = [f"T={settings.get('temperature', 1.0):g}"]
    shown += [f"{name}={settings[name]:g}" for name in ("top_k", "top_p", "min_p") if settings.get(name)]
    return ", ".join(shown)


def _order(record: dict[str, Any]) -> str:
    return " > ".join(record.get("order") or ["?"])


def drift(difference: Difference, old: dict[str, Any], new: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return difference.text.splitlines()[0], {"old": old.get("n"), "new": new.get("n")}


def summary(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    """`lmbehave diff`'s one table of sampled distributions, before and after: each side's most drawn token and
    its share, and the G-test of homogeneity."""
    if not pairs:
        return []
    rows = []
    for old, new in pairs:
        asked = f"{str(old.get('prompt', ''))[-24:]!r} {_settings(old)}"
        if old.get("settings") != new.get("settings"):
            verdict = "other settings"
        else:
            tested = homogeneity(old, new)
            verdict = "one token" if tested is None else f"{'yes' if tested[1] < ALPHA else 'no'} (G p={tested[1]:.3g})"
        rows.append((asked, _mode(old), _mode(new), verdict))
    width = max(len(r[0]) for r in rows)
    lines = [f"sampled distributions (G-test of homogeneity, α = {ALPHA:g}):"]
    lines.append(f"  {'draws':<{width}}  {'before':>26}  {'after':>26}  moved?")
    lines += [f"  {a:<{width}}  {b:>26}  {c:>26}  {d}" for a, b, c, d in rows]
    return lines


def _mode(record: dict[str, Any]) -> str:
    """'n=2000, ' great' 25.1 %': the count and the most drawn token's share."""
    rows = record.get("counts") or []
    top = f", {str(rows[0][0])!r} {percent(int(rows[0][2]) / max(1, int(record.get('n', 1))))}" if rows else ""
    return f"n={record.get('n')}{top}"


def explain(observation: Draws, expected: Any, k: int) -> list[str] | None:
    return None
