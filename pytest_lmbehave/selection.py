"""Which observations of two reports `lmbehave diff` compares: the kinds asked for (``--only``), and never a
sampled path across two engines, since each engine has its own sampler (vLLM's draws are not transformers')."""

from __future__ import annotations

from typing import Any

from .models import slug

KINDS = ("tokenization", "next_token", "greedy", "sampled", "choice")
DEFAULT_ENGINE = "transformers"  # reports recorded before served models name no engine


def kind_of(record: dict[str, Any]) -> str:
    if record.get("kind") == "generation":
        return "greedy" if record.get("sampling", "greedy") == "greedy" else "sampled"
    return str(record.get("kind"))


def engines(report: dict[str, Any]) -> dict[str, str]:
    """Each model's engine, by the model's slug (a served copy of ``embedded`` is ``embedded`` served)."""
    return {slug(m): str(env.get("engine", DEFAULT_ENGINE)) for m, env in report.get("environments", {}).items()}


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
            if kind_of(record) == "sampled" and slug(str(record.get("model", ""))) in other:
                left_out["engine"] += 1
                sampled.append(str(record.get("prompt", "")))
            elif record.get("kind") == "next_token" and any(_extends(record, p) for p in sampled):
                left_out["follow"] += 1  # a question about the text that sampled path made
            elif only and kind_of(record) not in only:
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


def environments_side_by_side(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Each model's environment in both reports, a model paired with its served copy by their common slug."""
    a_envs = {slug(m): env for m, env in old.get("environments", {}).items()}
    b_envs = {slug(m): env for m, env in new.get("environments", {}).items()}
    rows = []
    for model in sorted(set(a_envs) | set(b_envs)):
        a, b = a_envs.get(model, {}), b_envs.get(model, {})
        for key in sorted(set(a) | set(b)):
            rows.append((f"{model}: {key}", str(a.get(key, "-")), str(b.get(key, "-"))))
    return rows
