"""The reference pages generated from the code, so no option, marker, fixture or command is described twice.

Directives (in MyST: ```{lm-options}```):
- ``lm-options``: every row of ``config.options.OPTIONS``, as ``pytest --lm-...`` options;
- ``lm-cli``: every ``lmbehave`` command and argument, from ``cli.build_parser()``;
- ``lm-markers``: ``plugin.markers.MARKERS``, as ``marker`` objects;
- ``lm-fixtures``: the fixtures of ``plugin.fixtures``, with their docstrings, as ``fixture`` objects.

At build time it also draws the figures of the explanation pages from committed reports of real runs
(``tests/reports/``) into ``docs/_generated/`` (not committed).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

DOCS = Path(__file__).resolve().parent.parent
REPORTS = DOCS.parent / "tests" / "reports"
GENERATED = DOCS / "_generated"


class _Rst(SphinxDirective):
    """A directive whose content is reStructuredText made from the code."""

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(self.lines(), source=self.__class__.__name__), node)
        return list(node.children)


def _indent(text: str) -> list[str]:
    return ["   " + line for line in text.splitlines()] or ["   "]


class Options(_Rst):
    def lines(self) -> list[str]:
        from pytest_lmbehave.config.options import OPTIONS

        out = [".. program:: pytest", ""]
        for option in OPTIONS:
            value = "" if option.switch else f" <{option.metavar or 'value'}>"
            out += [f".. option:: {option.flag}{value}", ""]
            out += _indent(option.help.replace("*", r"\*"))
            where = [f"ini ``{option.ini}``" if option.in_ini else "no ini key"]
            if option.env:
                where.append(f"environment ``{option.env}``")
            if option.default not in (None, ""):
                where.append(f"default ``{option.default}``")
            out += ["", *_indent("; ".join(where) + "."), ""]
        return out


def _arguments(parser: argparse.ArgumentParser) -> list[str]:
    out: list[str] = []
    for action in parser._actions:  # argparse keeps no public list of its arguments
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = ", ".join(action.option_strings) if action.option_strings else action.dest
        if action.option_strings and action.nargs != 0:
            name = ", ".join(f"{flag} <{action.metavar or action.dest}>" for flag in action.option_strings)
        out += [f".. option:: {name}", "", *_indent((action.help or "").replace("*", r"\*")), ""]
    return out


def _commands(parser: argparse.ArgumentParser, prog: str) -> list[str]:
    out: list[str] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            full = f"{prog} {name}"
            title = f"``{full}``"
            out += [title, "~" * len(title), "", helps.get(name) or "", "", ".. code-block:: text", ""]
            out += _indent(sub.format_usage().strip())
            out += ["", f".. program:: {full}", ""]
            out += _arguments(sub)
            out += _commands(sub, full)
    return out


class Cli(_Rst):
    def lines(self) -> list[str]:
        from pytest_lmbehave.cli import build_parser

        return _commands(build_parser(), "lmbehave")


class Markers(_Rst):
    def lines(self) -> list[str]:
        from pytest_lmbehave.plugin.markers import MARKERS

        out: list[str] = []
        for name, text in MARKERS.items():
            signature, _, meaning = text.partition(": ")
            out += [f".. marker:: {name}", "", *_indent(f"``@pytest.mark.{signature}``: {meaning}"), ""]
        return out


def fixtures() -> dict[str, str]:
    """The plugin's fixtures by name, with their docstrings."""
    from pytest_lmbehave.plugin import fixtures as module

    found = {}
    for name, value in vars(module).items():
        definition = getattr(value, "_fixture_function_marker", None)
        if definition is not None:
            unwrap = getattr(value, "_get_wrapped_function", None)
            function = unwrap() if unwrap is not None else value
            found[definition.name or name] = inspect.getdoc(function) or ""
    return found


class Fixtures(_Rst):
    def lines(self) -> list[str]:
        out: list[str] = []
        for name, doc in fixtures().items():
            out += [f".. fixture:: {name}", "", *_indent(doc), ""]
        return out


def margins(report: dict[str, Any]) -> dict[tuple[str, str, int], tuple[int, float]]:
    """Each position a report read, with its top token and its margin (nats between the best two candidates): the
    next-token questions, the greedy steps and every position of a scored text."""
    found: dict[tuple[str, str, int], tuple[int, float]] = {}
    for test, observations in report["observations"].items():
        for observation in observations:
            kind = observation.get("kind")
            if kind == "next_token":
                top = observation["top"]
                found[(test, observation["prompt"], -1)] = (top[0][1], math.log(top[0][2] / top[1][2]))
            elif kind == "generation" and observation.get("sampling") == "greedy":
                for step, (token, margin) in enumerate(zip(observation["ids"], observation.get("margins") or [])):
                    found[(test, observation["prompt"], step)] = (token, margin)
            elif kind == "scores":
                for position, top in enumerate(observation.get("top") or []):
                    found[(test, observation["text"], 1000 + position)] = (top[0][0], math.log(top[0][1] / top[1][1]))
    return found


def draw_figures(app: Sphinx) -> None:
    """The margin figure of explanation/verdicts.md, from two committed reports of real runs: the same weights on
    transformers (float32) and on llama.cpp (Q4_1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    GENERATED.mkdir(exist_ok=True)
    old, new = (json.loads((REPORTS / name).read_text()) for name in ("transformers.json", "llama.cpp.json"))
    before, after = margins(old), margins(new)
    shared = sorted(set(before) & set(after))
    noise = float(old["environments"]["embedded"]["noise"])
    floor = 1e-4
    figure, axes = plt.subplots(figsize=(7, 4.4), dpi=110)
    for flipped, colour, label in ((False, "tab:blue", "same top token"), (True, "tab:red", "the top token flipped")):
        keys = [key for key in shared if (before[key][0] != after[key][0]) == flipped]
        xs = [max(before[key][1], floor) for key in keys]
        ys = [max(after[key][1], floor) for key in keys]
        axes.scatter(xs, ys, s=12, alpha=0.7, color=colour, label=f"{label} ({len(keys)} positions)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.axvspan(5e-6, 0.05, color="orange", alpha=0.12)
    axes.set_xlim(5e-6, 40)
    axes.axhspan(floor, 0.05, color="orange", alpha=0.12, label="margin below the near-tie threshold (0.05 nats)")
    axes.axvline(noise, color="red", linestyle="--", linewidth=1, label=f"float32's measured noise ({noise:g} nats)")
    axes.plot([floor, 20], [floor, 20], color="grey", linewidth=0.8)
    axes.set_xlabel("margin on transformers, float32 (nats)")
    axes.set_ylabel("margin on llama.cpp, Q4_1 (nats)")
    axes.set_title("Each position's margin, the same weights on two engines")
    axes.legend(loc="lower right", fontsize=7.5)
    figure.tight_layout()
    figure.savefig(GENERATED / "margins.png")
    plt.close(figure)


def resolve_by_name(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """A Python reference written by its module path (``pytest_lmbehave.observations.next_token.Distribution``), or
    by its bare name, resolves to the one documented object of that name (``pytest_lmbehave.Distribution``)."""
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    name = node["reftarget"].rsplit(".", 1)[-1]
    found = [full for full in domain.objects if full.rsplit(".", 1)[-1] == name and full.startswith("pytest_lmbehave.")]
    if len(found) != 1:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], found[0], node, contnode)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", resolve_by_name)
    app.add_object_type("marker", "marker", indextemplate="pair: %s; marker")
    app.add_object_type("fixture", "fixture", indextemplate="pair: %s; fixture")
    app.add_directive("lm-options", Options)
    app.add_directive("lm-cli", Cli)
    app.add_directive("lm-markers", Markers)
    app.add_directive("lm-fixtures", Fixtures)
    app.connect("builder-inited", draw_figures)
    return {"version": "1", "parallel_read_safe": True}
