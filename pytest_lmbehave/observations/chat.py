"""A chat turn: the ``Chat`` observation (a ``Generation`` whose prompt is the model's chat template rendered over
the messages), its record (the messages, the rendered template and its ids, then the answer as a generation's) and
its comparison: the same messages rendered otherwise is a change of the tokenizer layer, named as such (a new BOS,
a role marker), and the answer is then not compared; else the answer compares as a generation does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from . import generation
from .differences import INPUT, TOKENIZER, Compared, Difference, StepCheck, Teacher, Tolerances, first_difference
from .generation import Generation

Turns = tuple[tuple[str, str], ...]  # (role, content) per message


@dataclass(frozen=True, eq=False)
class Chat(Generation):
    """``prompt`` is the rendered template, ``prompt_ids`` its ids; ``text`` the assistant's answer."""

    messages: Turns = ()

    @classmethod
    def answering(cls, messages: Sequence[dict[str, str]], template: str, answer: Generation) -> Chat:
        """The answer generated after the rendered ``template``, as the chat turn it answers."""
        found = {f.name: getattr(answer, f.name) for f in fields(Generation)}
        return cls(**found | {"prompt": template}, messages=tuple((m["role"], m["content"]) for m in messages))


def record(observation: Chat, top: int) -> dict[str, Any]:
    answer = generation.record(observation, top)
    return {
        "kind": "chat",
        "messages": [{"role": role, "content": content} for role, content in observation.messages],
        "template": observation.prompt,
        **{key: value for key, value in answer.items() if key not in ("kind", "prompt")},
    }


def template_change(old: dict[str, Any], new: dict[str, Any]) -> Difference | None:
    """The same messages rendered into another text (or other ids): the chat template, a tokenizer-layer cause."""
    before, after = old.get("template"), new.get("template")
    same_ids = "input_ids" not in old or old["input_ids"] == new.get("input_ids")
    if before is None or after is None or (before == after and same_ids):
        return None
    if before == after:
        where = "renders the same text, which now reads as other ids"
    else:
        at = first_difference(before, after)
        start = max(0, at - 20)
        where = (
            f"renders the same messages differently from character {at}:\n"
            f"      recorded: …{before[start : at + 30]!r}\n      now:      …{after[start : at + 30]!r}"
        )
    return Difference(
        INPUT,
        f"the chat template {where}\n      (recorded {len(old.get('input_ids') or [])} ids, now "
        f"{len(new.get('input_ids') or [])}): the model reads another prompt, so its answer is not compared",
        "template",
        before,
        after,
        layer=TOKENIZER,
    )


def compare(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Teacher | None) -> Compared:
    """The answer, as a generation after the rendered template (the template itself is compared first, by
    ``template_change``); a diverging answer is localised by teacher forcing after the recorded ids."""
    ids = list(old.get("input_ids") or [])
    forced: Teacher | None = None
    if teacher is not None and ids:
        ask = teacher

        def forced(_: str, continuation: Sequence[int]) -> Sequence[StepCheck]:
            return ask(ids, continuation)  # type: ignore[arg-type]  # the engine reads ids as a prompt too

    last = _last_message(old)
    found, keys = generation.compare({**old, "prompt": last}, {**new, "prompt": last}, tolerances, forced)
    return found, keys | {"messages", "template"}


def _last_message(record: dict[str, Any]) -> str:
    messages = record.get("messages") or [{}]
    return str(messages[-1].get("content", ""))


def explain(chat: Chat, expected: Any, k: int) -> list[str] | None:
    lines = generation.explain(chat, expected, k)
    if lines and chat.messages:
        lines[0] = f"chat answer to {chat.messages[-1][1]!r}:"
    return lines
