"""Examining tokenization behaviour: every tokenization the document shows (holds for every SmolLM2 size).

The document's ids are the text's own tokens. Whether the tokenizer also opens every text with a special token
(a BOS) is not the document's to say: transformers 4.57 loads the embedded GGUF's tokenizer with
``<|im_start|>`` (id 1) prepended, transformers 5 without (as the GGUF's ``add_bos_token = false`` says). That is
pinned per variant by the snapshot below, so an upgrade shows it as a tokenizer change.
"""

from __future__ import annotations

import pytest

from pytest_lmbehave import LM

# (text, ids, pieces) exactly as the document prints them.
DOCUMENT = [
    ("Shakespeare was a", [4370, 10735, 436, 253], ["Sh", "akespeare", " was", " a"]),
    (
        "i7245tf7238tvo",
        [89, 39, 34, 36, 37, 10543, 39, 34, 35, 40, 100, 16104],
        ["i", "7", "2", "4", "5", "tf", "7", "2", "3", "8", "t", "vo"],
    ),
    ("hello hello", [28120, 33662], None),
    ("hello     hello", [28120, 289, 33662], None),
    ("hello    hello", [28120, 333, 33662], None),
    ("hello       hello", [28120, 5013, 33662], None),
    (
        "Shakespeare was poet! Really.",
        [4370, 10735, 436, 5720, 17, 27434, 30],
        ["Sh", "akespeare", " was", " poet", "!", " Really", "."],
    ),
    (
        " Shakespeare was poet! Really.",
        [12081, 436, 5720, 17, 27434, 30],
        [" Shakespeare", " was", " poet", "!", " Really", "."],
    ),
    ("Shakespeare was a great", [4370, 10735, 436, 253, 1109], None),
]


@pytest.mark.fact("tokenizer")
@pytest.mark.parametrize(("text", "ids", "pieces"), DOCUMENT, ids=[repr(t) for t, _, _ in DOCUMENT])
def test_the_document_tokenization_is_reproduced(lm: LM, text: str, ids: list[int], pieces: list[str] | None) -> None:
    tokens = lm.tokenize(text)
    assert list(tokens.text_ids) == ids
    if pieces is not None:
        assert list(tokens.text_pieces) == pieces


def test_what_the_tokenizer_adds_around_a_text(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    tokens = lm.tokenize("Shakespeare was a")
    assert tokens.ids[len(tokens.ids) - len(tokens.text_ids) :] == tokens.text_ids  # anything added comes first
    assert tokens == lm_snapshot


@pytest.mark.fact("tokenizer")
def test_shakespeare_splits_into_sh_and_akespeare(lm: LM) -> None:
    assert lm.decode(4370) == "Sh" and lm.decode(10735) == "akespeare"


@pytest.mark.fact("tokenizer")
def test_runs_of_spaces_become_one_whitespace_token_whose_id_depends_on_the_length(lm: LM) -> None:
    middles = {n: lm.tokenize("hello" + " " * n + "hello").text_ids[1:-1] for n in (4, 5, 7)}
    assert {n: len(m) for n, m in middles.items()} == {4: 1, 5: 1, 7: 1}
    assert len({m for m in middles.values()}) == 3
    # The final space of a run joins the next word (" hello" is one token, 33662).
    assert [lm.decode(m[0]) for m in middles.values()] == ["   ", "    ", "      "]


@pytest.mark.fact("tokenizer")
def test_a_leading_space_makes_shakespeare_one_token(lm: LM) -> None:
    assert lm.tokenize("Shakespeare").text_pieces == ("Sh", "akespeare")
    assert lm.tokenize(" Shakespeare").text_pieces == (" Shakespeare",)
