"""Both sides of the transformers 4 -> 5 upgrade: each compares against the variant recorded in its own
environment, and without it fails naming the tokenizer change as the layer it comes from."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import transformers

SPECS = Path(__file__).resolve().parent.parent / "specs"
MAJOR = int(transformers.__version__.split(".")[0])


def test_each_side_compares_against_the_variant_recorded_in_its_environment() -> None:
    from pytest_lmbehave.plugin.snapshot_sets import choose_variant

    now = {"transformers": transformers.__version__, "torch": "2.13.0+cpu", "dtype": "float32", "device": "cpu"}
    assert choose_variant(SPECS, "embedded", now, None)[0] == ("embedded" if MAJOR >= 5 else "embedded@transformers-4")
    assert choose_variant(SPECS, "embedded", now, "transformers-4")[0] == "embedded@transformers-4"


def test_the_running_majors_variant_wins_and_a_minor_release_reads_as_information() -> None:
    """The rule, fed the versions: whatever transformers is installed today, a release within a set's major is held
    to that set and said as information; another major is the closest set's warning."""
    from pytest_lmbehave.plugin.snapshot_sets import SAME_MAJOR, choose_variant, recorded_environment

    for own in ("embedded", "embedded@transformers-4"):
        recorded = recorded_environment(SPECS / "__lm_snapshots__" / own)
        was = recorded["transformers"]
        major, minor, *_ = was.split(".")
        for running in (was, f"{major}.{minor}.99", f"{major}.{int(minor) + 1}.0"):
            name, reason = choose_variant(SPECS, "embedded", {**recorded, "transformers": running}, None)
            assert name == own, (running, reason)
            expected = "recorded in this run's environment" if running == was else SAME_MAJOR
            assert expected in reason and "differs" not in reason, reason
            if running != was:
                assert reason == f"recorded on transformers {was}, running {running}: {SAME_MAJOR}"
    plain = recorded_environment(SPECS / "__lm_snapshots__" / "embedded")
    major = int(plain["transformers"].split(".")[0])
    name, reason = choose_variant(SPECS, "embedded", {**plain, "transformers": f"{major + 1}.0.0"}, None)
    assert name == "embedded" and reason == "the recorded variant closest to this run; it differs in transformers"
    both = {**plain, "transformers": f"{major}.99.0", "torch": "2.99.0+cpu"}
    assert choose_variant(SPECS, "embedded", both, None)[1] == (
        f"recorded on transformers {plain['transformers']}, torch {plain['torch']}, "
        f"running transformers {major}.99.0, torch 2.99.0+cpu: {SAME_MAJOR}"
    )


def test_without_its_own_variant_a_run_fails_and_names_the_tokenizer_change(tmp_path: Path) -> None:
    copy = tmp_path / "specs"
    # float32's sets only: a bfloat16 set recorded on this major would be closer than the other major's float32 set
    shutil.copytree(SPECS, copy, ignore=shutil.ignore_patterns("__pycache__", "HuggingFaceTB--*", "embedded@bf16*"))
    own = copy / "__lm_snapshots__" / ("embedded" if MAJOR >= 5 else "embedded@transformers-4")
    shutil.rmtree(own)  # only the other side's recording is left
    modules = ["specs/test_tokenization.py", "specs/test_forward_pass.py"]
    quiet = ["-p", "no:xdist", "-p", "no:randomly", "-p", "no:cacheprovider", "--lm-plan=none", "-vv"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *modules, *quiet],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    out = done.stdout
    assert done.returncode == 1, out[-3000:]
    change = "no longer prepends" if MAJOR >= 5 else "now prepends"
    assert (
        "[tokenizer] 'Shakespeare was a' tokenizes as" in out and f"the tokenizer {change} '<|im_start|>' (id 1)" in out
    )
    assert f"[tokenizer] the input changed: 'Shakespeare was a' reads as the tokenizer {change} id 1" in out
    other = "embedded@transformers-4" if MAJOR >= 5 else "embedded"
    assert (
        f"compared against the set {other} (the recorded variant closest to this run; it differs in transformers" in out
    )
    assert "NEAR-TIE" not in out  # the input changed: no flip is numerical noise


def test_lmbehave_diff_attributes_each_change_to_its_layer_and_leads_with_the_root_cause() -> None:
    from pytest_lmbehave.reports.causes import root_causes
    from pytest_lmbehave.reports.drift import Thresholds, compare_reports

    def asked(prompt: str, ids: list[int], argmax: str, margin: float) -> dict:  # type: ignore[type-arg]
        row = [argmax, 7 if argmax == " x" else 8, 0.5]
        return {
            "kind": "next_token",
            "prompt": prompt,
            "input_ids": ids,
            "argmax": argmax,
            "margin": margin,
            "top": [row],
        }

    def generated(ids: list[int], margins: list[float], sampling: str = "greedy") -> dict:  # type: ignore[type-arg]
        text = "".join(f"<{i}>" for i in ids)
        return {
            "kind": "generation",
            "prompt": "g",
            "input_ids": [9],
            "sampling": sampling,
            "text": text,
            "ids": ids,
            "margins": margins,
        }

    old = {
        "t::tokens": [{"kind": "tokenization", "text": "p", "ids": [5, 6], "pieces": ["a", "b"]}],
        "t::input": [asked("p", [5, 6], " x", 2.0)],
        "t::model": [asked("q", [4], " x", 2.0)],
        "t::sampler": [generated([1, 2], [1.0, 0.5], "sampled()")],
        "t::follow": [generated([1, 2], [1.0, 2.0]), asked("g<1><2>", [9, 1, 2], " x", 2.0)],
    }
    new = {
        "t::tokens": [{"kind": "tokenization", "text": "p", "ids": [1, 5, 6], "pieces": ["<s>", "a", "b"]}],
        "t::input": [asked("p", [1, 5, 6], " y", 0.01)],
        "t::model": [asked("q", [4], " y", 0.01)],
        "t::sampler": [generated([1, 3], [1.0, 0.5], "sampled()")],
        "t::follow": [generated([1, 3], [1.0, 0.01]), asked("g<1><3>", [9, 1, 3], " x", 2.0)],
    }
    changes, _ = compare_reports({"observations": old}, {"observations": new}, Thresholds())
    layers = {(c.test, c.kind): c.layer for c in changes}
    assert layers[("t::tokens", "tokenization")] == "tokenizer"
    assert layers[("t::input", "input changed")] == "tokenizer"  # not a flip, and never a near-tie
    assert layers[("t::model", "top-1 flip")] == "model"
    assert layers[("t::sampler", "generation")] == "decoding"  # same margins, another draw
    assert layers[("t::follow", "generation")] == "model" and layers[("t::follow", "follow-on")] == "follow-on"
    assert not any(c.severity == "near-tie" for c in changes if c.test == "t::input")
    causes = root_causes(changes)
    assert causes[0] == "the tokenizer now prepends '<s>' (id 1): 2 observation(s) follow from it"
    assert any(line.startswith("decoding (the same numbers, other tokens chosen): 1") for line in causes)
