"""Which observations of two reports `lmbehave diff` compares: the kinds asked for (``--only``), and never a
sampled path across two engines, since each engine has its own sampler (vLLM's draws are not transformers')."""

from __future__ import annotations

from typing import Any

from ..config import environment
from ..config.engines import DEFAULT
from ..config.naming import slug
from ..observations import selected_as


def engines(report: dict[str, Any]) -> dict[str, str]:
    """Each model's engine, by the model's slug (a served copy of ``embedded`` is ``embedded`` served)."""
    return {slug(m): str(env.get("engine", DEFAULT)) for m, env in report.get("environments", {}).items()}


def comparable(
    old: dict[str, Any], new: dict[str, Any], only: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Both reports with only the observations to compare, and one line for each kind of observation left out."""
    before, after = engines(old), engines(new)
    other = {name for name in set(before) & set(after) if before[name] != after[name]}
    skipped = {**old.get("skipped", {}), **new.get("skipped", {})}
    notes: list[str] = []
    left_out = {"engine": 0, "follow": 0, "kind": 0}

    def keep(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept, sampled = [], []
        for record in records:
            if selected_as(record) == "sampled" and slug(str(record.get("model", ""))) in other:
                left_out["engine"] += 1
                sampled.append(str(record.get("prompt", "")))
            elif record.get("kind") == "next_token" and any(_extends(record, p) for p in sampled):
                left_out["follow"] += 1  # a question about the text that sampled path made
            elif only and selected_as(record) not in only:
                left_out["kind"] += 1
            else:
                kept.append(record)
        return kept

    def select(report: dict[str, Any]) -> dict[str, Any]:
        observations = {t: keep(records) for t, records in report["observations"].items() if t not in skipped}
        return {**report, "observations": {test: records for test, records in observations.items() if records}}

    chosen = select(old), select(new)
    if skipped:
        first = next(iter(sorted(skipped.items())))
        notes.append(
            f"{len(skipped)} test(s) skipped in either run are not compared (first: {first[0]}: {first[1][:140]})"
        )
    if left_out["engine"]:
        pairs = ", ".join(f"{name}: {before[name]} -> {after[name]}" for name in sorted(other))
        notes.append(
            f"{left_out['engine']} sampled observation(s), and {left_out['follow']} question(s) about the text they "
            f"made, not compared: each engine has its own sampler ({pairs}); sampled behaviour is held to the "
            "sampling specs' properties instead"
        )
    if left_out["kind"]:
        notes.append(f"{left_out['kind']} observation(s) left out by --only {','.join(only)}")
    return chosen[0], chosen[1], notes


def _extends(record: dict[str, Any], prompt: str) -> bool:
    asked = str(record.get("prompt", ""))
    return bool(prompt) and asked.startswith(prompt) and len(asked) > len(prompt)


def paired_environments(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Each model's environment in both reports: a model paired with its served copy by their common slug, and by
    role, old run against new, when each report holds one model the other does not (new weights under another
    name, held to the old set with --lm-expect)."""
    a_envs = {slug(m): env for m, env in old.get("environments", {}).items()}
    b_envs = {slug(m): env for m, env in new.get("environments", {}).items()}
    only_a, only_b = sorted(set(a_envs) - set(b_envs)), sorted(set(b_envs) - set(a_envs))
    pairs = [(model, a_envs[model], b_envs[model]) for model in sorted(set(a_envs) & set(b_envs))]
    if len(only_a) == 1 and len(only_b) == 1:
        pairs.append((f"{only_a[0]} -> {only_b[0]}", a_envs[only_a[0]], b_envs[only_b[0]]))
    else:
        pairs += [(m, a_envs[m], {}) for m in only_a] + [(m, {}, b_envs[m]) for m in only_b]
    return sorted(pairs, key=lambda pair: pair[0])


def environments_side_by_side(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The paired environments as table rows: (model: field, old, new)."""
    return [
        (f"{model}: {key}", str(a.get(key, "-")), str(b.get(key, "-")))
        for model, a, b in paired_environments(old, new)
        for key in sorted(set(a) | set(b))
    ]


def paired_weights(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, str] | None:
    """The weights' hashes, old and new, when the reports' paired model moved to other weights (one pair only)."""
    moved = [pair for _, a, b in paired_environments(old, new) if (pair := environment.weights_moved(a, b))]
    return moved[0] if len(moved) == 1 else None
