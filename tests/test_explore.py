"""`lmbehave explore`: tokens, top next tokens, greedy and sampled continuations, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_lmbehave.cli import main


def test_explore_shows_tokens_top_candidates_and_the_greedy_continuation(
    tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explore", "hello hello", "--model", str(tiny_model), "--top", "4", "--max-new-tokens", "5"]) == 0
    out = capsys.readouterr().out
    assert "tokens (" in out and "next token, top 4 of" in out and "greedy, 5 new tokens:" in out
    assert "   4. " in out and "   5. " not in out
    assert "sampled" not in out


def test_a_temperature_or_top_p_adds_reproducible_samples(tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["explore", "hello", "--model", str(tiny_model), "--temperature", "1.5", "--samples", "2", "--seed", "7"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "sampled(temperature=1.5), --seed 7:" in first and "sampled(temperature=1.5), --seed 8:" in first
    assert main(args) == 0
    assert capsys.readouterr().out == first


def test_a_bad_model_or_setting_is_a_clear_error_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explore", "hello", "--model", str(tmp_path / "nope")]) == 2
    assert "lmbehave explore: unknown model" in capsys.readouterr().err
    assert main(["explore", "hello", "--dtype", "float8"]) == 2
    assert "--lm-dtype='float8' is not supported" in capsys.readouterr().err
