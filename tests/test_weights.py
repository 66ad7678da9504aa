"""New weights, old expectations: a model held to another model's recorded set (--lm-expect) is compared against
that set, its failures name the weights as the root cause with both hashes (told apart from a tokenizer change),
--snapshot-update records it as a variant beside the old records, and `lmbehave diff` pairs the two runs by role."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import build_tiny_model

SPECS = """
def test_tokens(lm, lm_snapshot):
    assert lm.tokenize("hello world") == lm_snapshot

def test_next(lm, lm_snapshot):
    assert lm.next_token("hello hello") == lm_snapshot

def test_generation(lm, lm_snapshot):
    assert lm.generate("Review: good", max_new_tokens=6) == lm_snapshot
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The old weights, new weights with the same tokenizer, and new weights with a tokenizer that adds a BOS."""
    root = tmp_path_factory.mktemp("weights")
    return {
        "old": build_tiny_model(root / "old"),
        "new": build_tiny_model(root / "new", seed=1),
        "bos": build_tiny_model(root / "bos", seed=1, bos=True),
    }


@pytest.fixture
def recorded(pytester: pytest.Pytester, models: dict[str, Path]) -> Path:
    pytester.makepyfile(SPECS)
    pytester.runpytest("-p", "no:randomly", f"--lm-model={models['old']}", "--snapshot-update").assert_outcomes(
        passed=3
    )
    return pytester.path / "__lm_snapshots__" / "old"


def sha(folder: Path, pytester: pytest.Pytester) -> str:
    from pytest_lmbehave.backends.transformers import loading as models
    from pytest_lmbehave.config.settings import default_cache_dir

    return models.content_hash(models.resolve(str(folder)), default_cache_dir())[:7]


def test_new_weights_held_to_the_old_set_fail_with_the_weights_as_root_cause_and_both_hashes(
    pytester: pytest.Pytester, models: dict[str, Path], recorded: Path
) -> None:
    result = pytester.runpytest("-p", "no:randomly", f"--lm-model={models['new']}", "--lm-expect=old", "-vv")
    text = result.stdout.str()
    assert "does not exist" not in text
    result.assert_outcomes(passed=1, failed=2)  # the tokenizer is the same: its spec holds
    old, new = sha(models["old"], pytester), sha(models["new"], pytester)
    result.stdout.fnmatch_lines(
        [
            f"*compared against the set old (recorded with weights {old}…, now {new}…)*",
            f"*root cause: the weights changed (sha256 {old}… → {new}…, same tokenizer): * difference(s) follow from*",
            "*to accept the new behaviour: pytest --snapshot-update --lm-expect old (records these weights*",
        ]
    )
    assert "test_tokens" not in "".join(line for line in result.stdout.lines if line.startswith("FAILED"))


def test_new_weights_with_a_new_tokenizer_name_the_tokenizer_as_a_cause_of_its_own(
    pytester: pytest.Pytester, models: dict[str, Path], recorded: Path
) -> None:
    result = pytester.runpytest("-p", "no:randomly", f"--lm-model={models['bos']}", "--lm-expect=old")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*[[]tokenizer[]]*",
            "*root cause: the tokenizer: the model's files changed (sha256 *) and every difference is in how the "
            "text reaches the model (its tokenizer or chat template), a cause of its own; whether the weights moved "
            "too is not seen*",
        ]
    )
    assert "same tokenizer" not in result.stdout.str()


def test_recording_new_weights_with_lm_expect_makes_a_variant_and_never_touches_the_old_records(
    pytester: pytest.Pytester, models: dict[str, Path], recorded: Path
) -> None:
    before = {p.name: p.read_bytes() for p in recorded.glob("*.ambr")}
    args = ("-p", "no:randomly", f"--lm-model={models['new']}", "--lm-expect=old")
    pytester.runpytest(*args, "--snapshot-update").assert_outcomes(passed=3)
    [variant] = recorded.parent.glob("old@weights-*")
    assert variant.name.startswith(f"old@weights-{sha(models['new'], pytester)}")
    assert variant.is_dir() and sorted(p.name for p in variant.glob("*.ambr")) == sorted(before)
    assert {p.name: p.read_bytes() for p in recorded.glob("*.ambr")} == before  # the old weights' records
    pytester.runpytest(*args).assert_outcomes(passed=3)  # the new weights now pass against their variant
    again = pytester.runpytest("-p", "no:randomly", f"--lm-model={models['old']}")
    again.assert_outcomes(passed=3)  # and the old weights against theirs
    assert "recorded with weights" not in again.stdout.str()


def test_lmbehave_diff_pairs_the_two_runs_by_role_and_names_the_weights(
    pytester: pytest.Pytester, models: dict[str, Path], recorded: Path
) -> None:
    from pytest_lmbehave.cli import main

    pytester.runpytest("-p", "no:randomly", f"--lm-model={models['old']}", "--lm-report=old.json")
    pytester.runpytest("-p", "no:randomly", f"--lm-model={models['new']}", "--lm-expect=old", "--lm-report=new.json")
    assert json.loads((pytester.path / "new.json").read_text())["observations"]
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(["diff", str(pytester.path / "old.json"), str(pytester.path / "new.json")])
    text = printed.getvalue()
    old, new = sha(models["old"], pytester), sha(models["new"], pytester)
    assert f"the weights changed (sha256 {old}… → {new}…, same tokenizer): 2 observation(s) moved" in text
    rows = [line for line in text.splitlines() if ": model_sha256" in line]
    assert len(rows) == 1 and rows[0].startswith("old -> new: model_sha256") and rows[0].endswith("<- differs")
    assert not [line for line in text.splitlines() if line.rstrip().endswith(" -")]  # nothing unpaired
