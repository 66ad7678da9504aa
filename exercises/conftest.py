"""Exercises: make each test pass by replacing ___ with what the model really does.

Run `pytest exercises/`; hints appear for every blank, and the last line says what to do next.
"""

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # A student's edit-run loop: what the model answered is kept on disk (--lm-cache, keyed by the whole
    # environment), so every run after the first reads it instead of loading the model.
    if config.getoption("lm_cache") is None:
        config.option.lm_cache = True
