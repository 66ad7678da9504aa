"""A model's vocabulary as a value: each id's piece (the id decoded alone) and each piece's id.

A piece names an id only when the tokenizer reads that piece back as exactly that one id, so ``prob(" great")``
asks about the token the model would read for " great" and nothing else. Observations carry the vocabulary
instead of a tokenizer, so they are plain data: they print, compare and pickle without a model at hand.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.errors import InputError
from ..config.files import write_atomically


@dataclass(frozen=True, eq=False)
class Vocabulary:
    pieces: tuple[str, ...]  # id -> piece
    ids: dict[str, int] = field(repr=False)  # piece -> id, for the pieces that read back as one id
    digest: str = ""  # what it was built from (model bytes and tokenizer versions): equal digests, equal values

    @property
    def size(self) -> int:
        return len(self.pieces)

    def __len__(self) -> int:
        return len(self.pieces)

    def piece(self, token: int) -> str:
        __tracebackhide__ = True
        self.check([token])
        return self.pieces[token]

    def id_of(self, piece: str) -> int:
        __tracebackhide__ = True
        if not isinstance(piece, str) or not piece:
            raise InputError(f"{piece!r} is empty; name a token piece such as ' great'")
        found = self.ids.get(piece)
        if found is None:
            raise InputError(
                f"{piece!r} is not a single token of this model's vocabulary; ask about one token piece "
                f"(lm.tokenize({piece!r}).text_pieces shows how it splits)"
            )
        return found

    def check(self, tokens: Sequence[int]) -> None:
        """Token ids must name entries of this vocabulary; a wrong one is an InputError, never a wrong answer."""
        __tracebackhide__ = True
        size = len(self.pieces)
        bad = [i for i in tokens if not (isinstance(i, int) and not isinstance(i, bool) and 0 <= i < size)]
        if bad:
            raise InputError(
                f"token id {bad[0]!r} is outside the vocabulary: ids run from 0 to {size - 1} for this "
                "model; take ids from lm.tokenize(text).ids"
            )

    @classmethod
    def from_pieces(cls, pieces: Sequence[str], read_back: Sequence[Sequence[int]], digest: str = "") -> Vocabulary:
        """``read_back[i]`` is how the tokenizer encodes ``pieces[i]``: a piece names id i when that is ``[i]``."""
        ids = {piece: i for i, (piece, back) in enumerate(zip(pieces, read_back)) if list(back) == [i]}
        return cls(tuple(pieces), ids, digest)

    def save(self, path: Path) -> None:
        document = {"digest": self.digest, "pieces": list(self.pieces), "ids": self.ids}
        write_atomically(path, json.dumps(document, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path, digest: str) -> Vocabulary | None:
        """The vocabulary saved at ``path`` when it was built from ``digest``; None when absent or unreadable."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document["digest"] != digest:
                return None
            return cls(tuple(document["pieces"]), {str(k): int(v) for k, v in document["ids"].items()}, digest)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None


def stored_at(cache_dir: Path, fingerprint: dict[str, str]) -> tuple[Path, str]:
    """Where a model's vocabulary is kept, and its digest: the model's bytes and the tokenizer versions decide it."""
    parts = " ".join(fingerprint.get(k, "") for k in ("model_sha256", "transformers", "tokenizers"))
    digest = hashlib.sha256(parts.encode()).hexdigest()[:24]
    return cache_dir / "vocabularies" / f"{digest}.json", digest


def built(tokenizer: Any, size: int, cache_dir: Path | None, fingerprint: dict[str, str]) -> Vocabulary:
    """A transformers tokenizer's vocabulary: each id decoded alone, and the pieces that read back as their id.
    Built once per model and tokenizer version (README: how long it takes), kept in the cache folder."""
    path, digest = stored_at(cache_dir or Path(), fingerprint)
    found = None if cache_dir is None else Vocabulary.load(path, digest)
    if found is None:
        pieces = [str(p) for p in tokenizer.batch_decode([[i] for i in range(size)])]
        found = Vocabulary.from_pieces(pieces, tokenizer(pieces, add_special_tokens=False)["input_ids"], digest)
        if cache_dir is not None:
            found.save(path)
    return found
