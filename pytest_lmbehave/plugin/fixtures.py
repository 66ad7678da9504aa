"""The fixtures a spec uses: ``lm`` (and the raw ``model`` and ``tokenizer`` behind it), ``lm_snapshot``,
``lm_settings``, ``lm_model_spec`` and ``exercise``; each asks the session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..api.lm import LM
from ..config import environment
from ..config.naming import slug
from ..config.settings import Settings
from ..observations.verdict import Teacher
from ..teaching.exercises import Exercise, exercise_for
from .session import Session
from .snapshot_sets import choose_variant, weights_variant
from .snapshots import LMSnapshotExtension, extension_for

SESSION = pytest.StashKey[Session]()


@pytest.fixture(scope="session")
def lm_settings(pytestconfig: pytest.Config) -> Settings:
    """The validated session settings (model, dtype, device, threads, attention, base seed)."""
    return pytestconfig.stash[SESSION].settings


@pytest.fixture
def lm_model_spec(request: pytest.FixtureRequest, lm_settings: Settings) -> str:
    """The model this test runs against: a parametrized value, the closest lm_model marker, or --lm-model."""
    param = getattr(request, "param", None)
    return (
        str(param)
        if param is not None
        else request.config.stash[SESSION].marks(request.node).model_or(lm_settings.model)
    )


@pytest.fixture
def lm(request: pytest.FixtureRequest, lm_model_spec: str) -> LM:
    """The test's handle on the model (loaded once per process per model): greedy unless marked sampled."""
    __tracebackhide__ = True
    return request.config.stash[SESSION].lm(request, lm_model_spec)


@pytest.fixture
def model(lm: LM) -> Any:
    """The raw transformers model behind ``lm``."""
    return lm.model


@pytest.fixture
def tokenizer(lm: LM) -> Any:
    """The raw transformers tokenizer behind ``lm``."""
    return lm.tokenizer


@pytest.fixture
def lm_snapshot(
    request: pytest.FixtureRequest, snapshot: Any, lm: LM, lm_model_spec: str, lm_settings: Settings
) -> Any:
    """syrupy's ``snapshot``, storing LM observations in this model's own set (``__lm_snapshots__/<model>/``), or
    in the set it is held to (--lm-expect, ``lm_model(expect=...)``)."""
    marks = request.config.stash[SESSION].marks(request.node)
    expected = marks.expected_set(lm_model_spec, lm_settings.model, lm_settings.expect)
    extension = extension_for_test(
        Path(str(request.node.path)).parent,
        slug(expected or lm_model_spec),
        lm.fingerprint,
        lm_settings,
        lm.runtime.teacher_force,
        updating=bool(request.config.getoption("update_snapshots", False)),
        held=expected is not None,
        notes=request.config.stash[SESSION].near_ties.pending,
        chosen=request.config.stash[SESSION].chosen_sets,
    )
    return snapshot.use_extension(extension)


@pytest.fixture
def exercise(request: pytest.FixtureRequest) -> Exercise:
    """A teaching exercise: ``exercise.check(actual, ___, hint=...)``; see ``pytest_lmbehave.teaching.exercises``."""
    return exercise_for(request)


def extension_for_test(
    folder: Path,
    slug: str,
    fingerprint: dict[str, str],
    settings: Settings,
    teacher: Teacher,
    updating: bool,
    held: bool = False,
    notes: list[str] | None = None,
    chosen: dict[tuple[Path, str, str, str | None], tuple[str, str]] | None = None,
) -> type[LMSnapshotExtension]:
    """The extension of one test's set: the variant closest to this run (or --lm-variant's). A model ``held`` to
    another model's set (--lm-expect) records its new weights as a variant of that set, never over it."""
    variant = settings.variant
    if held and updating and variant is None:
        variant = weights_variant(folder, slug, fingerprint)
    chosen = {} if chosen is None else chosen  # once per model and module: the session's (Session.chosen_sets)
    key = (folder, slug, environment.line(fingerprint), variant)
    if key not in chosen:
        chosen[key] = choose_variant(folder, slug, fingerprint, variant)
    set_name, reason = chosen[key]
    return extension_for(
        slug,
        environment.line(fingerprint),
        settings.tolerance,
        settings.near_tie,
        settings.strict,
        settings.top_shown,
        teacher=teacher,
        set_name=set_name,
        variant_reason=reason,
        updating=updating,
        accept=f"pytest --snapshot-update --lm-expect {slug} (records these weights as a variant of the {slug} set, "
        "beside the old weights' records)"
        if held
        else "",
        notes=notes,
    )
