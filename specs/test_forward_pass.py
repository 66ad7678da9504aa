"""Simple model inference, softmax and argmax, continuing the sequence, shapes of inputs and outputs."""

from __future__ import annotations

import pytest
import torch
from document import SHAKESPEARE

from pytest_lmbehave import LM

VOCABULARY = 49152


@pytest.mark.fact("model")
def test_the_logits_have_a_row_per_token_and_a_column_per_vocabulary_entry(lm: LM) -> None:
    # The document's [1, 4, 49152] and [1, 5, 49152]: one row per token the model reads (a BOS, where the
    # tokenizer adds one, is a row too; see test_tokenization.py).
    for text, own in ((SHAKESPEARE, 4), (SHAKESPEARE + " great", 5)):
        tokens = lm.tokenize(text)
        assert len(tokens.text_ids) == own
        assert tuple(lm.logits(text).shape) == (1, len(tokens.ids), VOCABULARY)


@pytest.mark.fact("model")
def test_softmax_of_the_last_row_is_a_probability_distribution(lm: LM) -> None:
    predictions = torch.softmax(lm.logits(SHAKESPEARE)[0, -1], dim=0)
    assert predictions.shape == (VOCABULARY,)
    # A float32 sum of n positive terms is exact to (n - 1) * eps / 2 relative, in any order of adding (Higham,
    # "Accuracy and Stability of Numerical Algorithms", 4.2): 49151 * 2**-24 = 2.9e-3. Each CPU adds in its own
    # order (measured 1.3e-5 off on an AVX2 machine, less on others), so no tighter bound holds everywhere;
    # a softmax over the wrong axis would sum to 4, one that forgot to normalise to ~e**20.
    bound = (VOCABULARY - 1) * torch.finfo(torch.float32).eps / 2
    assert abs(float(predictions.sum()) - 1) <= bound
    # The same numbers as the next-token distribution the API reports (another forward pass of the same ids, which
    # keeps only the last row): measured 7e-7 apart at most here, on both transformers versions; 1e-5 is a hundred
    # times the measured gap and a hundred times below --lm-tolerance. A softmax over another row would miss by ~0.2.
    reported = lm.next_token(SHAKESPEARE).logprobs.exp()
    assert float((predictions - reported).abs().max()) < 1e-5


@pytest.mark.invariant
def test_the_argmax_of_the_softmax_is_the_predicted_next_token(lm: LM) -> None:
    predictions = torch.softmax(lm.logits(SHAKESPEARE)[0, -1], dim=0)
    prediction = lm.next_token(SHAKESPEARE)
    assert int(torch.argmax(predictions)) == prediction.argmax_id
    # top(k) is the softmax sorted: each candidate's probability, rank and piece agree with the distribution. A rank
    # counts the candidates strictly above, so an exact tie (common in bfloat16, whose logits move in steps of 0.125
    # at |logit| 16-32; seen on a GPU) shares the better rank, while top(k) orders the tied by id.
    top = prediction.top(5)
    assert [c.prob for c in top] == sorted((c.prob for c in top), reverse=True)
    for candidate in top:
        above = sum(other.prob > candidate.prob for other in top)
        assert prediction.rank(candidate.id) == above + 1 and prediction.prob(candidate.piece) == candidate.prob
        assert abs(float(predictions[candidate.id]) - candidate.prob) < 1e-5


def test_the_model_predicts_the_next_token_after_shakespeare_was_a(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.next_token(SHAKESPEARE) == lm_snapshot


def test_the_model_predicts_the_next_token_after_shakespeare_was_a_great(lm: LM, lm_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert lm.next_token(SHAKESPEARE + " great") == lm_snapshot


@pytest.mark.invariant
def test_appending_the_prediction_and_predicting_again_continues_the_sequence(lm: LM) -> None:
    first = lm.next_token(SHAKESPEARE)
    second = lm.next_token([*lm.tokenize(SHAKESPEARE).ids, first.argmax_id])
    assert lm.generate(SHAKESPEARE, max_new_tokens=2).ids == (first.argmax_id, second.argmax_id)
