"""A text as the model reads it: the ``Tokenization`` observation, its record, its comparison and how a failed
expectation about it is explained."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .differences import TOKENIZATION, TOKENIZER, Compared, Difference, Tolerances, tokenizer_change


@dataclass(frozen=True)
class Tokenization:
    """A text as the model reads it (``ids``, ``pieces``: with any special token its tokenizer adds, such as a
    BOS) and the text's own tokens (``text_ids``, ``text_pieces``: without them)."""

    text: str
    ids: tuple[int, ...]
    pieces: tuple[str, ...]
    text_ids: tuple[int, ...] = ()
    text_pieces: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)

    def __eq__(self, other: object) -> bool:
        # `assert lm.tokenize(t) == ["Sh", "akespeare"]` compares pieces; a list of ints compares ids.
        if isinstance(other, Tokenization):
            return (self.text, self.ids, self.pieces) == (other.text, other.ids, other.pieces)
        if isinstance(other, (list, tuple)):
            if all(isinstance(x, int) for x in other):
                return list(self.ids) == list(other)
            if all(isinstance(x, str) for x in other):
                return list(self.pieces) == list(other)
        return NotImplemented

    __hash__ = object.__hash__


def record(observation: Tokenization, top: int) -> dict[str, Any]:
    return {
        "kind": "tokenization",
        "text": observation.text,
        "ids": list(observation.ids),
        "pieces": list(observation.pieces),
    }


def compare(old: dict[str, Any], new: dict[str, Any], tolerances: Tolerances, teacher: Any) -> Compared:
    keys = {"ids", "pieces"} & set(old)
    if all(old[k] == new.get(k) for k in keys):
        return [], keys
    shown = "pieces" if "pieces" in keys else "ids"
    words = ""
    if "ids" in old and new.get("ids") is not None:
        names = dict(zip(new.get("ids", []), new.get("pieces", []))) | dict(zip(old["ids"], old.get("pieces", [])))
        words = f": {tokenizer_change(old['ids'], new['ids'], names)}"
    return [
        Difference(
            TOKENIZATION,
            f"{old.get('text')!r} tokenizes as {new.get(shown)} now, {old.get(shown)} recorded{words}",
            str(old.get("text")),
            old.get(shown),
            new.get(shown),
            layer=TOKENIZER,
            details={"old_ids": old.get("ids"), "new_ids": new.get("ids"), "names": names if words else {}},
        )
    ], keys


def explain(tok: Tokenization, expected: Any, k: int) -> list[str] | None:
    """Why ``tok == expected`` failed: expected and actual side by side (``expected``: pieces or ids)."""
    if not isinstance(expected, (list, tuple)):
        return None
    by_ids = bool(expected) and all(isinstance(x, int) for x in expected)
    actual: Sequence[Any] = tok.ids if by_ids else tok.pieces
    lines = [
        f"tokenization of {tok.text!r}: {len(actual)} tokens, expected {len(expected)}",
        f"   #  {'expected':<20}  {'actual':<20}  id",
    ]
    for i in range(max(len(actual), len(expected))):
        want = repr(expected[i]) if i < len(expected) else "-"
        got = repr(actual[i]) if i < len(actual) else "-"
        mark = "  " if i < len(actual) and i < len(expected) and actual[i] == expected[i] else "!="
        ident = str(tok.ids[i]) if i < len(tok.ids) else ""
        lines.append(f"  {i:>2}  {want:<20}{mark}{got:<20}  {ident}")
    return lines
