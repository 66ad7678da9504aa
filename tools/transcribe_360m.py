"""Writes the expectations for HuggingFaceTB/SmolLM2-360M, transcribed from the document (not recorded here).

The document prints texts, labels and a few ids (the tokenization, " great" 1109, " writer" 6535), so each record
holds just those keys; the snapshot extension compares
the keys a record has. Run from the repository root: python tools/transcribe_360m.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from syrupy.data import Snapshot, SnapshotCollection
from syrupy.extensions.amber import AmberDataSerializer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "specs"))

from document import (  # noqa: E402
    BOSTON_CONVERSATION,
    BOSTON_PLACES,
    FANEUIL,
    JOB_PROMPT,
    ONE_TOKEN_PROMPTS,
    REVIEWS,
    SHAKESPEARE,
    classify_prompt,
    comment_prompt,
    few_shot_prompt,
    sentiment_prompt,
)

from pytest_lmbehave.plugin.snapshots import SETS_DIRNAME, render_records  # noqa: E402

SLUG = "HuggingFaceTB--SmolLM2-360M"
LABELS = [" good", " bad"]


def next_token(prompt: str, argmax: str, argmax_id: int) -> dict[str, object]:
    return {"kind": "next_token", "prompt": prompt, "argmax": argmax, "argmax_id": argmax_id}


def tokenization(text: str, ids: list[int], pieces: list[str]) -> dict[str, object]:
    return {"kind": "tokenization", "text": text, "ids": ids, "pieces": pieces}


def generation(prompt: str, text: str) -> dict[str, object]:
    return {"kind": "generation", "prompt": prompt, "text": text}


def choice(prompt: str, best: str) -> dict[str, object]:
    return {"kind": "choice", "prompt": prompt, "options": LABELS, "best": best}


GREEDY_50 = (
    " great writer, but he was also a great actor. He was a great actor because he was a great writer. He was a great"
    " writer because he was a great actor. He was a great actor because he was a great writer. He was a"
)
# The document prints six classifications and then a stray " good"; the six belong to the six reviews.
CLASSIFIED = [
    " positive.\n\nI",
    " positive.\n\nI",
    " positive. It's a",
    " positive.\n\nI",
    " negative.\n\nThe",
    " positive.\n\nI",
]
FEW_SHOT = [" good", " bad", " good", " good", " good", " good"]

FILES = {
    # The document's tokenizer (the hub's, through AutoTokenizer) adds nothing around a text.
    "test_tokenization": {
        "test_what_the_tokenizer_adds_around_a_text": tokenization(
            SHAKESPEARE, [4370, 10735, 436, 253], ["Sh", "akespeare", " was", " a"]
        ),
    },
    "test_forward_pass": {
        "test_the_model_predicts_the_next_token_after_shakespeare_was_a": next_token(SHAKESPEARE, " great", 1109),
        "test_the_model_predicts_the_next_token_after_shakespeare_was_a_great": next_token(
            SHAKESPEARE + " great", " writer", 6535
        ),
    },
    "test_generation": {
        "test_greedy_generation_of_50_tokens": generation(SHAKESPEARE, GREEDY_50),
        "test_the_generate_text_helper_gives_20_new_tokens": generation(
            SHAKESPEARE, " great writer, but he was also a great actor. He was a great actor because he was a"
        ),
    },
    "test_zero_shot": {
        "test_the_job_prompt_in_20_tokens": generation(
            JOB_PROMPT, " I have a friend who is a doctor.\n\nMe: What kind of doctor?\n\n"
        ),
        "test_the_job_prompt_in_1_token": generation(JOB_PROMPT, " I"),
        "test_shakespeares_job_in_10_tokens": generation(
            "Shakespeare's job was", " to write plays, and he did that very well"
        ),
        "test_one_token_answers_about_shakespeare": (
            [generation(p, t) for p, t in zip(ONE_TOKEN_PROMPTS, [" great", " playwright", " playwright"], strict=True)]
        ),
        "test_the_boston_conversation_in_40_tokens": generation(
            BOSTON_CONVERSATION,
            " Boston is a great city. I would recommend the Boston Museum of Fine Arts, the Boston Public Library, the Boston"
            " Public Garden, the Boston Public Market, the Boston Public Aquarium, the Boston Public Library",
        ),
        "test_the_best_places_to_visit_in_boston": generation(
            BOSTON_PLACES,
            " the Boston Museum of Science, the Boston Public Library, the Boston Public Garden, the Boston Public Market",
        ),
        "test_the_faneuil_hall_sample_continued_greedily": generation(
            FANEUIL, "'s Farewell\n\nFanny's Farewell\n\nFanny's Farewell"
        ),
    },
    "test_sentiment": {
        "test_what_the_first_comment_is": generation(
            comment_prompt(REVIEWS[0]), " a joke.\n\nI don't think Blizzard gets enough hate. I think they get too"
        ),
        "test_the_sentiment_of_the_first_comment": generation(
            sentiment_prompt(REVIEWS[0]),
            " that Blizzard is a company that has been around for a long time and has been around for a",
        ),
        "test_zero_shot_positive_or_negative_for_all_six_reviews": (
            [generation(classify_prompt(r), t) for r, t in zip(REVIEWS, CLASSIFIED, strict=True)]
        ),
    },
    "test_few_shot": {
        "test_the_few_shot_decisions_for_all_six_reviews": (
            [generation(few_shot_prompt(r), t) for r, t in zip(REVIEWS, FEW_SHOT, strict=True)]
        ),
        # With one-token labels the greedy token beats the other label, so the document's labels are the choices.
        "test_choosing_between_the_labels_by_log_likelihood": (
            [choice(few_shot_prompt(r), t) for r, t in zip(REVIEWS, FEW_SHOT, strict=True)]
        ),
    },
}


def main() -> None:
    folder = ROOT / "specs" / SETS_DIRNAME / SLUG
    folder.mkdir(parents=True, exist_ok=True)
    for module, entries in FILES.items():
        collection = SnapshotCollection(location=str(folder / f"{module}.ambr"))
        for test, data in entries.items():
            records = data if isinstance(data, list) else [data]
            collection.add(Snapshot(name=f"{test}[{SLUG}]", data=render_records(records)))
        AmberDataSerializer.write_file(collection, merge=False)
    print(f"wrote {sum(len(e) for e in FILES.values())} expectations to {folder}")


if __name__ == "__main__":
    main()
