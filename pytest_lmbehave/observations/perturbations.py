"""Cases for behaviour under change: a template expanded over lexicons (``expand``), and the changes made to a
prompt's text (``Change``), each deterministic by its seed and saying in words what it did.

A perturbation is a function of the text (and a seed) that returns a ``Change``: the base text, the variant, its
family and what changed. ``within`` keeps it inside one part of the prompt (the review of a few-shot prompt, not its
examples). Nothing here reads a model: the tokens a change causes are shown by the judgement (``changes``)."""

from __future__ import annotations

import itertools
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from ..config.errors import InputError

# The families of change, one word each: the test ids, the summary and the records use these.
TYPO, NAME, WHITESPACE, PUNCTUATION, CASE, ORDER, NEGATION = (
    "typo",
    "name",
    "whitespace",
    "punctuation",
    "case",
    "order",
    "negation",
)


@dataclass(frozen=True)
class Case:
    """One filling of a template: its text, the values it took, and its place among all the fillings."""

    text: str
    values: tuple[tuple[str, str], ...]
    index: int  # 1-based
    count: int

    @property
    def id(self) -> str:
        """A readable test id that shows how many cases there are: 'name=Amara,role=poet (3 of 12)'."""
        shown = ",".join(f"{k}={v.strip()}" for k, v in self.values)
        return f"{shown} ({self.index} of {self.count})"

    def __getitem__(self, field: str) -> str:
        return dict(self.values)[field]


def expand(template: str, **lexicons: Sequence[str]) -> list[Case]:
    """Every filling of ``template``'s ``{fields}`` from the lexicons, in a fixed order (the first field varies
    slowest): ``expand("{name} was a great {role}", name=NAMES, role=ROLES)``. Use the cases as
    ``pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])``, or hand them to a capability."""
    __tracebackhide__ = True
    fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    missing = sorted(set(fields) - set(lexicons))
    unused = sorted(set(lexicons) - set(fields))
    if missing or unused:
        raise InputError(
            f"expand({template!r}): "
            + "; ".join(
                part
                for part in (
                    f"no lexicon for {', '.join(missing)} (pass {missing[0]}=[...])" if missing else "",
                    f"{', '.join(unused)} is not a field of the template (write {{{unused[0]}}} in it)"
                    if unused
                    else "",
                )
                if part
            )
        )
    order = list(dict.fromkeys(fields))
    for name in order:
        values = lexicons[name]
        if isinstance(values, str) or not values or not all(isinstance(v, str) for v in values):
            raise InputError(f"expand: {name}= must be a non-empty list of strings, not {values!r:.60}")
    combos = list(itertools.product(*(lexicons[name] for name in order)))
    return [
        Case(template.format(**dict(zip(order, combo))), tuple(zip(order, combo)), i, len(combos))
        for i, combo in enumerate(combos, start=1)
    ]


@dataclass(frozen=True)
class Change:
    """A base text and its changed variant: the family of the change and what it did, in words."""

    base: str
    variant: str
    family: str
    detail: str

    @property
    def id(self) -> str:
        return f"{self.family}: {self.detail}"


def _span(text: str, within: str | None) -> tuple[int, int]:
    __tracebackhide__ = True
    if within is None:
        return 0, len(text)
    start = text.rfind(within)
    if not within or start < 0:
        raise InputError(f"within={within!r:.60} is not part of the text {text!r:.60}; pass a substring of it")
    return start, start + len(within)


def _words(text: str, span: tuple[int, int], pattern: str) -> list[re.Match[str]]:
    return [m for m in re.finditer(pattern, text) if span[0] <= m.start() and m.end() <= span[1]]


def _pick(found: Sequence[re.Match[str]], seed: int, what: str, text: str) -> re.Match[str]:
    __tracebackhide__ = True
    if not found:
        raise InputError(f"no {what} to change in {text!r:.60}; choose another perturbation or widen within=")
    return found[random.Random(seed).randrange(len(found))]


def typo(text: str, seed: int = 0, within: str | None = None) -> Change:
    """Two neighbouring letters swapped inside a word of four letters or more (never its first letter)."""
    __tracebackhide__ = True
    span = _span(text, within)
    word = _pick(_words(text, span, r"[A-Za-z]{4,}"), seed, "word of four letters or more", text)
    letters = word.group()
    spots = [i for i in range(1, len(letters) - 1) if letters[i] != letters[i + 1]]
    i = spots[random.Random(seed + 1).randrange(len(spots))]
    changed = letters[:i] + letters[i + 1] + letters[i] + letters[i + 2 :]
    return Change(text, text[: word.start()] + changed + text[word.end() :], TYPO, f"{letters!r} -> {changed!r}")


def swap(text: str, old: str, new: str) -> Change:
    """Every ``old`` (a name) replaced by ``new``."""
    __tracebackhide__ = True
    if not old or old not in text:
        raise InputError(f"swap: {old!r} does not occur in {text!r:.60}; pass a name the text holds")
    return Change(text, text.replace(old, new), NAME, f"{old.strip()!r} -> {new.strip()!r}")


WHERE = ("end", "start", "inside")  # where whitespace goes


def whitespace(text: str, where: str = "inside", seed: int = 0, within: str | None = None) -> Change:
    """One more space: at the end of the text (the document's trailing-space lesson), at its start, or doubled
    between two words inside it."""
    __tracebackhide__ = True
    if where == "end":
        return Change(text, text + " ", WHITESPACE, "a space at the end")
    if where == "start":
        return Change(text, " " + text, WHITESPACE, "a space at the start")
    if where != "inside":
        raise InputError(f"whitespace(where={where!r}): where is one of {', '.join(WHERE)}")
    gap = _pick(_words(text, _span(text, within), r"(?<=\S) (?=\S)"), seed, "space between words", text)
    after = text[: gap.start()].split()[-1]
    return Change(text, text[: gap.start()] + "  " + text[gap.end() :], WHITESPACE, f"a double space after {after!r}")


def punctuation(text: str, seed: int = 0, within: str | None = None) -> Change:
    """One punctuation mark removed (a comma, period, '!' or '?'); where there is none, a comma after a word."""
    __tracebackhide__ = True
    span = _span(text, within)
    marks = _words(text, span, r"[,.!?]")
    if marks:
        mark = _pick(marks, seed, "punctuation", text)
        before = text[: mark.start()].split()[-1] if text[: mark.start()].split() else ""
        return Change(
            text, text[: mark.start()] + text[mark.end() :], PUNCTUATION, f"{mark.group()!r} after {before!r} removed"
        )
    word = _pick(_words(text, span, r"[A-Za-z]+(?= )"), seed, "word", text)
    return Change(text, text[: word.end()] + "," + text[word.end() :], PUNCTUATION, f"',' after {word.group()!r}")


def case(text: str, seed: int = 0, within: str | None = None) -> Change:
    """One word's first letter in the other case ('Game' -> 'game', 'love' -> 'Love')."""
    __tracebackhide__ = True
    word = _pick(_words(text, _span(text, within), r"[A-Za-z]{2,}"), seed, "word", text)
    letters = word.group()
    changed = letters[0].swapcase() + letters[1:]
    return Change(text, text[: word.start()] + changed + text[word.end() :], CASE, f"{letters!r} -> {changed!r}")


def reorder(text: str, seed: int = 0, within: str | None = None, separator: str = "\n\n") -> Change:
    """The blocks of ``within`` (the few-shot examples, split at ``separator``) in another order, fixed by the
    seed; the text around them is kept."""
    __tracebackhide__ = True
    start, end = _span(text, within)
    part = text[start:end]
    lead = part[: len(part) - len(part.lstrip())]
    trail = part[len(part.rstrip()) :]
    blocks = part.strip().split(separator)
    if len(set(blocks)) < 2:
        raise InputError(
            f"reorder: {part!r:.60} holds fewer than two different blocks split at {separator!r}; pass the examples "
            "as within= and their separator"
        )
    order = list(range(len(blocks)))
    shuffler = random.Random(seed)
    while order == sorted(order) or [blocks[i] for i in order] == blocks:
        shuffler.shuffle(order)
    moved = lead + separator.join(blocks[i] for i in order) + trail
    shown = ",".join(str(i + 1) for i in order)
    return Change(text, text[:start] + moved + text[end:], ORDER, f"examples in the order {shown}")


# The rules of ``negate``, tried in turn: an auxiliary gains a "not", a verb in the past takes "did not".
_AUXILIARIES = ("is", "was", "are", "were", "can", "will", "would", "should", "could", "has", "have", "had")
_PAST = {"loved": "love", "liked": "like", "enjoyed": "enjoy", "hated": "hate", "recommended": "recommend"}


def negate(text: str, within: str | None = None) -> Change:
    """The first statement of ``within`` negated: 'it is fun' -> 'it is not fun', 'I loved it' -> 'I did not love
    it'; for a directional expectation (the other label should rise)."""
    __tracebackhide__ = True
    span = _span(text, within)
    words = _words(text, span, r"\b[A-Za-z]+\b")
    for word in words:
        lower = word.group().lower()
        if lower in _AUXILIARIES:
            rest = text[word.end() :]
            if rest.lstrip().lower().startswith(("not ", "n't")):
                continue
            changed = f"{word.group()} not"
            return Change(text, text[: word.start()] + changed + rest, NEGATION, f"{word.group()!r} -> {changed!r}")
        if lower in _PAST:
            changed = f"did not {_PAST[lower]}"
            return Change(
                text,
                text[: word.start()] + changed + text[word.end() :],
                NEGATION,
                f"{word.group()!r} -> {changed!r}",
            )
    raise InputError(
        f"negate: no auxiliary ({', '.join(_AUXILIARIES[:4])}, ...) or past verb ({', '.join(_PAST)}) in "
        f"{text[span[0] : span[1]]!r:.60}; write the negated text yourself as a Change(base, variant, 'negation', ...)"
    )
