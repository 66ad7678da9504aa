"""llama.cpp's own tokenizer, read from the GGUF: text to ids and back, each id's piece, and the ids that end a
generation (its end-of-generation set). The pieces are built from raw bytes, as a byte-level BPE decodes them:
a piece that is part of a UTF-8 character reads as U+FFFD, as it does in transformers."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from ..vocabulary import Vocabulary

PIECE = 256  # bytes a piece may take before the buffer is grown (llama.cpp says how many it needs)


class Tokens:
    def __init__(self, llama_cpp: Any, model: Any) -> None:
        self.api = llama_cpp
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        self.size = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self._buffer = ctypes.create_string_buffer(PIECE)

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        """The ids llama.cpp reads for ``text``: special tokens written in the text are parsed as such (as a
        transformers tokenizer does), and a BOS is added where the GGUF asks for one, unless not ``special``."""
        data = text.encode("utf-8")
        room = len(data) + 8
        while True:
            tokens = (self.api.llama_token * room)()
            count = self.api.llama_tokenize(self.vocab, data, len(data), tokens, room, special, True)
            if count >= 0:
                return [int(t) for t in tokens[:count]]
            room = -count

    def piece_bytes(self, token: int) -> bytes:
        count = self.api.llama_token_to_piece(self.vocab, token, self._buffer, len(self._buffer), 0, True)
        if count < 0:
            self._buffer = ctypes.create_string_buffer(-count)
            count = self.api.llama_token_to_piece(self.vocab, token, self._buffer, len(self._buffer), 0, True)
        return bytes(self._buffer.raw[:count])

    def detokenize(self, ids: Sequence[int]) -> str:
        return b"".join(self.piece_bytes(int(t)) for t in ids).decode("utf-8", errors="replace")

    def stop_ids(self) -> frozenset[int]:
        """The ids llama.cpp ends a generation at (EOS, EOT and the like, as the GGUF marks them)."""
        return frozenset(t for t in range(self.size) if self.api.llama_vocab_is_eog(self.vocab, t))

    def vocabulary(self, digest: str) -> Vocabulary:
        """Each id decoded alone, and the pieces that read back as their own id."""
        pieces = [self.detokenize([i]) for i in range(self.size)]
        return Vocabulary.from_pieces(pieces, [self.tokenize(p, special=False) for p in pieces], digest)
