"""The teacher's answers for the embedded model (SmolLM2-135M-Instruct, Q4_1), recorded from a real run.

`make test` fills every blank from here (`pytest exercises/ --lm-answer-key`), so an exercise can never rot into
one that cannot be solved; `pytest exercises/ --lm-reveal` shows them.
"""

ANSWERS = {
    "test_token_ids": [4370, 10735, 436, 253],
    "test_the_split_of_shakespeare": ["Sh", "akespeare"],
    "test_a_run_of_spaces_is_one_token": 289,
    "test_a_leading_space_changes_the_tokens": 1,
    "test_the_shape_of_the_logits": (1, 4, 49152),
    "test_the_vocabulary_size": 49152,
    "test_softmax_makes_probabilities": 1.0,
    "test_the_argmax_is_the_prediction": " master",
    "test_continuing_the_sequence": " writer",
    "test_greedy_generation": " master of subtlety.",
    "test_temperature": 14.0,
    "test_top_p": 16,
    "test_how_often_master_comes_first": 1363,
    "test_zero_shot_is_not_a_label": False,
    "test_few_shot_label": " good",
    "test_near_tie": 1,
    "test_the_change_that_breaks_invariance": 3,
}
