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


class Piece(str):
    """A token's text as the model names it (an argmax, a candidate, a generated piece), carrying its id: passed back
    to the API it means that id, never another that decodes alike (SentencePiece's byte fallback gives several ids
    the same text). It compares, hashes and prints as its text."""

    id: int

    def __new__(cls, text: str, token: int) -> Piece:
        made = super().__new__(cls, text)
        made.id = token
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (Piece, (str(self), self.id))


PADDING = "<padding row {}>"  # the name of an output row beyond the tokenizer's tokens


@dataclass(frozen=True, eq=False)
class Vocabulary:
    pieces: tuple[str, ...]  # id -> piece, one per output row
    ids: dict[str, int] = field(repr=False)  # piece -> id, for the pieces that read back as one id
    digest: str = ""  # what it was built from (model bytes and tokenizer versions): equal digests, equal values
    token_count: int = 0  # the tokenizer's own tokens; rows from here on are padding (0: every row is a token)
    tokenizer: str = ""  # which tokenizer: a digest of its tokens in id order ('' where the engine cannot say)

    @property
    def size(self) -> int:
        return len(self.pieces)

    @property
    def tokens(self) -> int:
        """How many rows the tokenizer has tokens for; the output rows beyond are padding."""
        return self.token_count or len(self.pieces)

    def is_padding(self, token: int) -> bool:
        return self.tokens <= token < len(self.pieces)

    def __len__(self) -> int:
        return len(self.pieces)

    def piece(self, token: int) -> Piece:
        __tracebackhide__ = True
        self.check([token])
        return Piece(self.pieces[token], token)

    def id_of(self, piece: str) -> int:
        __tracebackhide__ = True
        if not isinstance(piece, str) or not piece:
            raise InputError(f"{piece!r} is empty; name a token piece such as ' great'")
        if isinstance(piece, Piece) and 0 <= piece.id < len(self.pieces) and self.pieces[piece.id] == piece:
            return piece.id
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
        document = {
            "digest": self.digest,
            "pieces": list(self.pieces),
            "ids": self.ids,
            "tokens": self.token_count,
            "tokenizer": self.tokenizer,
        }
        write_atomically(path, json.dumps(document, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path, digest: str) -> Vocabulary | None:
        """The vocabulary saved at ``path`` when it was built from ``digest``; None when absent or unreadable."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document["digest"] != digest:
                return None
            pieces, ids = tuple(document["pieces"]), {str(k): int(v) for k, v in document["ids"].items()}
            return cls(pieces, ids, digest, int(document.get("tokens", 0)), str(document.get("tokenizer", "")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None


def stored_at(cache_dir: Path, fingerprint: dict[str, str]) -> tuple[Path, str]:
    """Where a model's vocabulary is kept, and its digest: the model's bytes and the tokenizer versions decide it."""
    # The leading 2: the stored form's version (it names the tokenizer and its padding rows since 2).
    parts = " ".join(["2", *(fingerprint.get(k, "") for k in ("model_sha256", "transformers", "tokenizers"))])
    digest = hashlib.sha256(parts.encode()).hexdigest()[:24]
    return cache_dir / "vocabularies" / f"{digest}.json", digest


def tokenizer_digest(tokenizer: Any) -> str:
    """A transformers tokenizer named by its tokens in id order (its vocabulary, specials included)."""
    tokens = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    return hashlib.sha256(json.dumps(tokens, ensure_ascii=False).encode()).hexdigest()[:16]


def built(tokenizer: Any, size: int, cache_dir: Path | None, fingerprint: dict[str, str]) -> Vocabulary:
    """A transformers tokenizer's vocabulary: each id decoded alone, and the pieces that read back as their id.
    Built once per model and tokenizer version, kept in the cache folder."""
    path, digest = stored_at(cache_dir or Path(), fingerprint)
    found = None if cache_dir is None else Vocabulary.load(path, digest)
    if found is None:
        tokens = min(size, len(tokenizer))  # a padded output layer has rows no token stands for
        pieces = [str(p) for p in tokenizer.batch_decode([[i] for i in range(tokens)])]
        read_back = tokenizer(pieces, add_special_tokens=False)["input_ids"]
        padding = [PADDING.format(i) for i in range(tokens, size)]
        found = Vocabulary.from_pieces(pieces + padding, read_back + [[]] * len(padding), digest)
        found = Vocabulary(found.pieces, found.ids, digest, tokens if padding else 0, tokenizer_digest(tokenizer))
        if cache_dir is not None:
            found.save(path)
    return found
