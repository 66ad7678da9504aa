"""The few numbers the verdicts take from ``scipy.stats``, each a pure function of counts and probabilities, kept
beside ``--lm-cache``'s observations: a warm re-run reads its intervals and p-values back with its counts, and
imports scipy only when a question misses (scipy.stats alone takes about a second to import).

A result is kept under its function, its arguments (an array by its bytes) and scipy's installed version, in one
file written whole (``config.files.write_keyed``, as --lm-cache's observations are), so a re-run never reads a number another scipy computed, and a damaged
file is a miss. Without ``--lm-cache`` nothing is kept on disk (the simulations in the docs call these thousands of
times); within a process each result is computed once either way."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..config.files import read_keyed, write_keyed

Result = TypeVar("Result")

FOLDER: list[Path] = []  # where results are kept (the plugin's --lm-cache), else none
SEEN: dict[str, Any] = {}  # this process's results, by key


def keep_in(folder: Path | None) -> None:
    """Keep results in ``folder`` from now on (None: in this process only)."""
    FOLDER[:] = [] if folder is None else [folder]


def _part(value: Any) -> str:
    if hasattr(value, "dtype") and hasattr(value, "tobytes"):  # a numpy array or scalar, by its bytes
        return f"array[{value.dtype}{getattr(value, 'shape', ())}:{hashlib.sha256(value.tobytes()).hexdigest()}]"
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(_part(v) for v in value) + ")"
    return repr(value)


@functools.cache
def _scipy_version() -> str:
    from importlib.metadata import version

    return version("scipy")


def kept(function: Callable[..., Result]) -> Callable[..., Result]:
    """``function``'s result for the same arguments, computed once and kept (on disk under --lm-cache)."""

    @functools.wraps(function)
    def wrapper(*args: Any) -> Result:
        key = f"{function.__qualname__}({','.join(_part(a) for a in args)}) scipy {_scipy_version()}"
        if key in SEEN:
            return SEEN[key]  # type: ignore[no-any-return]
        path = FOLDER[0] / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.pkl" if FOLDER else None
        value = None if path is None else read_keyed(path, key)  # absent or damaged: a miss, rewritten whole
        if value is None:
            value = function(*args)
            if path is not None:
                write_keyed(path, key, value)
        SEEN[key] = value
        return value

    return wrapper


@kept
def beta_ppf(q: float, a: float, b: float) -> float:
    from scipy.stats import beta

    return float(beta.ppf(q, a, b))


@kept
def normal_ppf(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


@kept
def normal_sf(x: float) -> float:
    from scipy.stats import norm

    return float(norm.sf(x))


@kept
def fisher_p(table: Sequence[Sequence[int]]) -> float:
    """Fisher's exact test of a 2x2 table, two-sided: its p-value."""
    from scipy.stats import fisher_exact

    return float(fisher_exact(table).pvalue)


@kept
def binomial_p(k: int, n: int, p: float) -> float:
    """The exact binomial test of ``k`` in ``n`` at ``p``, two-sided: its p-value."""
    from scipy.stats import binomtest

    return float(binomtest(k, n, p).pvalue)


@kept
def g_test(observed: Sequence[float], expected: Sequence[float]) -> tuple[float, float]:
    """The G-test of goodness of fit: (statistic, p-value)."""
    from scipy.stats import power_divergence

    result = power_divergence(observed, expected, lambda_="log-likelihood")
    return float(result.statistic), float(result.pvalue)


@kept
def g_homogeneity(counts: Any) -> tuple[float, float, int]:
    """The G-test of homogeneity of a contingency table's rows: (statistic, p-value, degrees of freedom)."""
    from scipy.stats import chi2_contingency

    result = chi2_contingency(counts, correction=False, lambda_="log-likelihood")
    return float(result.statistic), float(result.pvalue), int(result.dof)
