"""The LM snapshot extension: readable records, tolerant numbers, explained failures, one set per model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_lmbehave.observations.verdict import Tolerances, compare
from pytest_lmbehave.plugin.snapshots import parse, render

SOURCE = """
def test_next(lm, lm_snapshot):
    assert lm.next_token("hello hello") == lm_snapshot

def test_generation(lm, lm_snapshot):
    assert lm.generate("hello", max_new_tokens=6) == lm_snapshot
"""


@pytest.fixture
def recorded(run_with_tiny, pytester: pytest.Pytester) -> Path:  # type: ignore[no-untyped-def]
    """A test module with its tiny-model set recorded; returns the set's file."""
    result = run_with_tiny(SOURCE, "--snapshot-update")
    result.assert_outcomes(passed=2)
    path = pytester.path / "__lm_snapshots__" / "tiny-llama" / "test_snapshots_fixture.ambr"
    if not path.exists():
        path = next((pytester.path / "__lm_snapshots__" / "tiny-llama").glob("*.ambr"))
    return path


def edit(path: Path, pattern: str, replacement: str, count: int = 1) -> None:
    text = path.read_text()
    changed = re.sub(pattern, lambda _: replacement, text, count=count, flags=re.M)
    assert changed != text, f"{pattern!r} not found in\n{text}"
    path.write_text(changed)


def flip_top_token(path: Path, margin: float | None = None) -> None:
    """Record " altered" as the next token's argmax, optionally with the margin the recording claims for it."""
    edit(path, r'^  argmax: ".*"$', '  argmax: " altered"')
    if margin is not None:
        edit(path, r"^  margin: .*$", f"  margin: {margin}")


def test_a_recorded_set_is_readable_and_passes_on_the_same_model(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    text = recorded.read_text()
    assert (
        'kind: "next_token"' in text
        and 'kind: "generation"' in text
        and "top: [" in text
        and 'env: "model_sha256=' in text
    )
    run_with_tiny(SOURCE).assert_outcomes(passed=2)


def test_a_hand_altered_top_token_fails_with_a_message_naming_the_token(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    flip_top_token(recorded, margin=2.5)
    result = run_with_tiny(SOURCE)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 difference(s) from the tiny-llama snapshot:*",
            "*top-1 after 'hello hello': ' altered' -> * (margin 2.5000 recorded, * now: recorded with a clear margin, a real change of behaviour)*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*to accept the new behaviour: pytest --snapshot-update (rewrites only the tiny-llama set)*"]
    )


def test_a_hand_altered_generation_names_the_first_diverging_token(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    edit(recorded, r"^  ids: \[\d+", "  ids: [7")
    result = run_with_tiny(SOURCE)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*generation after 'hello': first diverging token 0: recorded [[]7] vs now [[]*", "*recorded: *", "*now: *"]
    )


def test_a_probability_moving_within_the_tolerance_passes_and_beyond_it_fails(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    match = re.search(r'^  top: \[(".*?"), (\d+), ([\d.]+)\]$', recorded.read_text(), flags=re.M)
    assert match is not None
    piece, token, prob = match.group(1), match.group(2), float(match.group(3))
    edit(recorded, re.escape(match.group(0)), f"  top: [{piece}, {token}, {prob + 0.0005:.6f}]")
    run_with_tiny(SOURCE).assert_outcomes(passed=2)
    result = run_with_tiny(SOURCE, "--lm-tolerance=0.0001")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [f"*probability of * ({token}): {round(prob + 0.0005, 6)} -> {prob}* (tolerance 0.0001)*"]
    )


def test_a_flip_recorded_on_a_near_tie_fails_when_the_new_margin_is_clear(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    flip_top_token(recorded, margin=0.002)  # the tiny model's real top-2 margin here is ~0.34 nats
    result = run_with_tiny(SOURCE)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*margin 0.0020 recorded, 0.3* now: the new margin is clear, a real change of behaviour*"]
    )


def test_a_near_tie_flip_passes_with_a_warning_and_fails_under_strict(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    flip_top_token(recorded, margin=0.002)
    result = run_with_tiny(SOURCE, "--lm-near-tie=0.5")  # both margins (0.002 recorded, ~0.34 now) lie below it
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*1 near-tie flip(s) (not failures; --lm-strict makes them fail)*",
            "*test_next*: top-1 after 'hello hello': ' altered' -> * (NEAR-TIE: margin 0.0020 recorded, 0.3* now, both < 0.5*",
        ]
    )
    strict = run_with_tiny(SOURCE, "--lm-near-tie=0.5", "--lm-strict")
    strict.assert_outcomes(passed=1, failed=1)
    strict.stdout.fnmatch_lines(
        ["*1 difference(s) from the tiny-llama snapshot (1 near-tie flip(s), failing under --lm-strict):*"]
    )


def test_near_tie_flips_are_listed_from_xdist_workers_too(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    flip_top_token(recorded, margin=0.002)
    result = run_with_tiny(SOURCE, "--lm-near-tie=0.5", "-n", "2")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*1 near-tie flip(s) (not failures*", "*test_next*: top-1 after 'hello hello'*"])


def test_the_deprecated_accept_near_ties_flag_says_what_replaced_it(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny(SOURCE, "--lm-accept-near-ties")
    result.assert_outcomes(passed=2)
    result.stderr.fnmatch_lines(["*--lm-accept-near-ties is deprecated*pass --lm-strict to make them fail*"])


def test_a_token_entering_the_recorded_top_rows_fails(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    rows = re.findall(r'^  top: \[".*?", (\d+), [\d.e-]+\]$', recorded.read_text(), flags=re.M)
    second = rows[1]
    edit(recorded, rf'^(  top: \[".*?", ){second}(, [\d.e-]+\])$', "REPLACED")
    text = recorded.read_text().replace("REPLACED", '  top: ["never", 299, 0.000001]')
    recorded.write_text(text)
    result = run_with_tiny(SOURCE)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*({second}) entered the top 5 with p=*; the last recorded row had p=*"])


def _generation_ids(path: Path) -> list[int]:
    match = re.search(r"^  ids: (\[.*\])$", path.read_text().split('kind: "generation"')[1], flags=re.M)
    assert match is not None
    return [int(i) for i in match.group(1).strip("[]").split(", ")]


def _record_generation(path: Path, ids: list[int], margins: list[float]) -> None:
    block = path.read_text().split('kind: "generation"')
    block[1] = re.sub(r"^  ids: .*$", f"  ids: {ids}", block[1], count=1, flags=re.M)
    block[1] = re.sub(r"^  margins: .*$", f"  margins: {margins}", block[1], count=1, flags=re.M)
    path.write_text('kind: "generation"'.join(block))


def _other_token(ids: list[int], step: int) -> int:
    return next(t for t in (5, 6, 7) if t != ids[step])


def test_teacher_forcing_says_when_only_the_diverging_step_changed(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    ids = _generation_ids(recorded)
    last = len(ids) - 1
    _record_generation(recorded, [*ids[:last], _other_token(ids, last)], [0.01] * len(ids))
    result = run_with_tiny(SOURCE)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*first diverging token {last}*",
            f"*teacher-forced: at step {last} the recorded token * now has p=* at rank *; only this step changed: the rest of the recorded continuation still follows*",
        ]
    )
    # With a threshold above both margins it is a near-tie: it passes, and is listed.
    tie = run_with_tiny(SOURCE, "--lm-near-tie=20")
    tie.assert_outcomes(passed=2)
    tie.stdout.fnmatch_lines(["*1 near-tie flip(s)*", f"*test_generation*first diverging token {last}*NEAR-TIE*"])


def test_teacher_forcing_names_the_later_steps_that_change_too(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    ids = _generation_ids(recorded)
    changed = list(ids)
    changed[1], changed[3] = _other_token(ids, 1), _other_token(ids, 3)
    margins = [0.01] * len(ids)
    margins[3] = 30.0  # recorded with a margin clear of the threshold (20): a flip there is no near-tie
    _record_generation(recorded, changed, margins)
    result = run_with_tiny(SOURCE, "--lm-near-tie=20")
    result.assert_outcomes(passed=1, failed=1)  # the first step is a near-tie, but the rest does not follow
    result.stdout.fnmatch_lines(
        ["*first diverging token 1*", "*the rest of the recorded continuation also changes at steps 3*"]
    )


def test_a_failure_says_how_the_environment_differs_from_the_recording(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    flip_top_token(recorded)
    edit(recorded, r"dtype=float32 device=cpu threads=1", "dtype=bfloat16 device=cpu threads=2", count=0)
    result = run_with_tiny(SOURCE)
    result.stdout.fnmatch_lines(["*environment differs from the recording: dtype bfloat16 -> float32, threads 2 -> 1*"])


def test_a_failure_names_a_changed_cpu_capability_and_fields_not_recorded(run_with_tiny, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    flip_top_token(recorded, margin=2.5)
    # Recorded on the other kind of machine than this one (AVX-512 and AVX2 machines both run this suite).
    here = re.search(r" cpu_capability=(\w+)", recorded.read_text()).group(1)  # type: ignore[union-attr]
    other = "AVX2" if here == "AVX512" else "AVX512"
    edit(recorded, r" cpu_capability=\w+", f" cpu_capability={other}", count=0)
    edit(recorded, r" tokenizers=[^ ]+", "", count=0)
    result = run_with_tiny(SOURCE)
    result.stdout.fnmatch_lines(
        [f"*environment differs from the recording: cpu_capability {other} -> {here}; not recorded then: tokenizers*"]
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_update_rewrites_only_the_running_models_set(
    run_with_tiny, recorded: Path, pytester: pytest.Pytester, workers: list[str]
) -> None:  # type: ignore[no-untyped-def]
    other = pytester.path / "__lm_snapshots__" / "HuggingFaceTB--SmolLM2-360M" / recorded.name
    other.parent.mkdir(parents=True)
    other.write_bytes(
        recorded.read_bytes().replace(b"[tiny-llama]", b"[HuggingFaceTB--SmolLM2-360M]")
        + b'# name: test_gone[HuggingFaceTB--SmolLM2-360M]\n  kind: "generation"\n# ---\n'
    )
    before = other.read_bytes()
    flip_top_token(recorded, margin=2.5)
    result = run_with_tiny(SOURCE, "--snapshot-update", "-rs", *workers)

    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*expectations for HuggingFaceTB/SmolLM2-360M are kept, but the model is not available here*hf download HuggingFaceTB/SmolLM2-360M*"
        ]
    )
    assert other.read_bytes() == before
    assert " altered" not in recorded.read_text()
    assert sorted(p.name for p in recorded.parent.iterdir()) == [recorded.name]  # no .tmp or .lock left behind


def test_a_transcribed_record_is_compared_on_the_keys_it_holds() -> None:
    full = parse(render_generation())[0]
    transcribed = {"kind": "generation", "prompt": full["prompt"], "text": full["text"]}
    assert compare(transcribed, full, Tolerances()) == []
    wrong = dict(transcribed, text=full["text"] + "!")
    [difference] = compare(wrong, full, Tolerances())
    assert "texts part at character" in difference.text


def render_generation() -> str:
    from pytest_lmbehave.observations.generation import Generation

    generation = Generation("p", " a b", (1, 2), "p a b", (9,), (" a", " b"), (-0.1, -0.2), (1.0, 0.5))
    return render(generation, "model_sha256=x")


def test_lm_snapshot_rejects_something_that_is_not_an_observation(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny(
        "def test_wrong(lm, lm_snapshot):\n    assert {'a': 1} == lm_snapshot\n", "--snapshot-update"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*lm_snapshot takes observations from the lm fixture (tokenize, next_token, generate, choose) or a list of them, not dict*"
        ]
    )


def test_a_missing_snapshot_says_there_is_none_yet_and_how_to_record_one(run_with_tiny) -> None:  # type: ignore[no-untyped-def]
    result = run_with_tiny("def test_next(lm, lm_snapshot):\n    assert lm.next_token('hello') == lm_snapshot\n")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*no snapshot yet: the tiny-llama set holds no recording of this observation*",
         "*to record one: pytest --snapshot-update (writes only the tiny-llama set)*"]
    )  # fmt: skip
    text = result.stdout.str()
    assert "difference(s)" not in text and "transcribed by hand" not in text
