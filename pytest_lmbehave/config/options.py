"""The one table of options: flag, ini key, environment variable, default, parser and help of each.

``pytest_addoption`` registers it, ``settings.build_settings`` reads and checks it, and ``lmbehave explore`` takes
its model and numerics options from it, so a name, a default or a check is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import defaults, engines
from .parsing import boolean, model, non_negative, one_of, optional, text, variant, whole

DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("cpu", "cuda", "mps")
ATTENTION = ("sdpa", "eager")
HELP_DTYPE, HELP_ATTENTION = (
    "weights dtype: float32 (default), bfloat16 or float16",
    "attention: sdpa (default) or eager",
)


@dataclass(frozen=True)
class Option:
    flag: str  # on the command line
    ini: str  # the ini key, and the option's dest
    help: str
    setting: str | None = None  # the Settings field it fills (None: read where it is used)
    env: str | None = None
    default: str | None = None  # as text, parsed like a given value
    parse: Callable[[str, str], Any] = text
    switch: bool = False  # a flag that takes no value
    in_ini: bool = True  # also an ini key
    metavar: str | None = None


OPTIONS: tuple[Option, ...] = (
    Option(
        "--lm-model",
        "lm_model",
        "model to test: 'embedded' (default), a directory, a .gguf file or a cached hub id",
        "model",
        "LMBEHAVE_MODEL",
        "embedded",
        model,
    ),
    Option(
        "--lm-server",
        "lm_server",
        "an OpenAI-compatible server (vLLM, SGLang, llama.cpp) to test instead of loading the model: its base URL, "
        "e.g. http://127.0.0.1:8000/v1; --lm-model names the served model (the same weights here give its "
        "tokenizer and snapshot set). One spelling for both, also in @pytest.mark.lm_model: URL#NAME",
        "server",
        "LMBEHAVE_SERVER",
        "",
        text,
        metavar="URL",
    ),
    Option(
        "--lm-server-timeout",
        "lm_server_timeout",
        "seconds a served model may take to answer one request before it is retried, then given up (default 300)",
        "server_timeout",
        None,
        "300",
        non_negative,
        metavar="SECONDS",
    ),
    Option("--lm-dtype", "lm_dtype", HELP_DTYPE, "dtype", None, "float32", one_of(DTYPES)),
    Option("--lm-device", "lm_device", "device: cpu (default), cuda or mps", "device", None, "cpu", one_of(DEVICES)),
    Option(
        "--lm-threads",
        "lm_threads",
        "torch threads per process, pinned before loading (default 1)",
        "threads",
        None,
        "1",
        whole(1),
    ),
    Option(
        "--lm-engine",
        "lm_engine",
        "what computes a model in this process: "
        + "; ".join(f"{e.name}, {e.help}" for e in engines.ENGINES.values())
        + ". Each engine's expectations are kept in their own variant, e.g. __lm_snapshots__/embedded@<engine>",
        "engine",
        "LMBEHAVE_ENGINE",
        engines.DEFAULT,
        one_of(engines.ENGINES),
    ),
    Option("--lm-attention", "lm_attention", HELP_ATTENTION, "attention", None, "sdpa", one_of(ATTENTION)),
    Option(
        "--lm-seed",
        "lm_seed",
        "base seed of sampled tests; each test adds a hash of its node id (default 0)",
        "seed",
        None,
        "0",
        whole(0),
    ),
    Option(
        "--lm-top",
        "lm_top",
        f"how many candidates a failure shows and a snapshot records (default {defaults.TOP})",
        "top_shown",
        None,
        str(defaults.TOP),
        whole(1),
    ),
    Option(
        "--lm-tolerance",
        "lm_tolerance",
        f"how far a snapshot's probabilities, scores and margins may move (default {defaults.TOLERANCE})",
        "tolerance",
        None,
        str(defaults.TOLERANCE),
        non_negative,
    ),
    Option(
        "--lm-near-tie",
        "lm_near_tie",
        "a flip is a near-tie (numerical noise: it warns, and passes) when its recorded and its new margin are "
        f"both below this many nats (default {defaults.NEAR_TIE})",
        "near_tie",
        None,
        str(defaults.NEAR_TIE),
        non_negative,
    ),
    Option(
        "--lm-variant",
        "lm_variant",
        "the recorded snapshot variant to compare against and update: __lm_snapshots__/<model>@NAME ('default' for "
        "the plain set); a new variant is recorded with --snapshot-update --lm-variant NAME. Without it a run "
        "compares against the variant recorded in the environment closest to its own",
        "variant",
        None,
        "",
        variant,
    ),
    Option(
        "--lm-expect",
        "lm_expect",
        "hold the model to another model's recorded snapshot set, e.g. --lm-expect embedded for new weights of the "
        "embedded model (a re-quantized GGUF, a fine-tune): failures name the weights as the root cause, and "
        "--snapshot-update records the new weights as a variant of that set (<set>@weights-<sha>), never over it",
        "expect",
        "LMBEHAVE_EXPECT",
        "",
        variant,
        metavar="SET",
    ),
    Option(
        "--lm-noise-floor",
        "lm_noise_floor",
        "the noise floor measured on this machine (lmbehave diff REFERENCE RERUN --save-floor FILE): assert_close "
        "refuses a profile whose thresholds lie below it",
        metavar="FILE",
    ),
    Option(
        "--lm-plan",
        "lm_plan",
        "request plan: what each test asked last time, batched up front (default lmbehave-plan.json in the "
        "rootdir; 'none' computes every request when it is asked)",
    ),
    Option(
        "--lm-drafts",
        "lm_drafts",
        "verify each generation's ids from the last run (the plan's, else a recorded snapshot's) by teacher forcing "
        "instead of decoding them token by token: the same results, faster (default true; false decodes all)",
        "drafts",
        None,
        "true",
        boolean,
        metavar="true|false",
    ),
    Option(
        "--lm-strict",
        "lm_strict",
        "near-tie flips fail too (by default a snapshot whose only differences are near-tie flips passes, and the "
        "terminal summary lists them)",
        "strict",
        None,
        "false",
        boolean,
        switch=True,
    ),
    Option(
        "--lm-accept-near-ties",
        "lm_accept_near_ties",
        "deprecated: near-tie flips pass by default now; --lm-strict makes them fail",
        switch=True,
        parse=boolean,
    ),
    Option(
        "--lm-cache",
        "lm_cache",
        "keep observations on disk ($LMBEHAVE_CACHE/observations), keyed by the environment fingerprint, "
        "so an unchanged re-run reads instead of computing",
        "observation_cache",
        None,
        "false",
        boolean,
        switch=True,
    ),
    Option(
        "--lm-plan-update",
        "lm_plan_update",
        "record each test's requests in the plan (--lm-plan) at the end of the run; --snapshot-update does too",
        switch=True,
        parse=boolean,
    ),
    Option(
        "--lm-report",
        "lm_report",
        "write every observation the run made (per test, with the environment) to PATH.json; compare two with "
        "`lmbehave diff`",
        in_ini=False,
        metavar="PATH.json",
    ),
    Option(
        "--lm-report-top",
        "lm_report_top",
        f"how many candidates the report keeps per distribution (default {defaults.REPORT_TOP}): a KL divergence "
        "two reports give is taken over them with the rest pooled, a lower bound that more candidates tighten",
        "report_top",
        None,
        str(defaults.REPORT_TOP),
        whole(1),
        metavar="N",
    ),
    Option(
        "--lm-summary",
        "lm_summary",
        "where $GITHUB_STEP_SUMMARY is set (GitHub Actions), append the run's summary to it: the sets compared "
        "against, failures with their root causes, near ties, capability rates; on (default) or off",
        "summary",
        None,
        "on",
        one_of(("on", "off")),
    ),
    Option(
        "--lm-reference",
        "lm_reference",
        "an engine to check this run's engine against on the same weights ("
        + ", ".join(engines.ENGINES)
        + "): the report keeps each next-token and scored position's exact KL divergence from it, over the full "
        "vocabulary, computed as the run goes (no logits written)",
        "reference",
        None,
        "",
        optional(one_of(engines.ENGINES)),
        metavar="ENGINE",
    ),
    Option(
        "--lm-reveal", "lm_reveal", "exercises: show the teacher's answer beside each blank", switch=True, in_ini=False
    ),
    Option(
        "--lm-answer-key",
        "lm_answer_key",
        "exercises: fill every blank from answer_key.py beside the exercises (proves each one solvable)",
        switch=True,
        in_ini=False,
    ),
)

BY_INI = {option.ini: option for option in OPTIONS}

Lookup = Callable[[Option], Any]  # an option's given value (command line, then ini, then environment) or None


def given(lookup: Lookup, ini: str) -> Any:
    """The value given for an option (by its ini name), or None when none was."""
    found = lookup(BY_INI[ini])
    return None if found in (None, "", []) else found
