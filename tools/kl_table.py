"""The KL table of a weights upgrade and the engine-parity table, from `--lm-report` files (run by `make
weights-upgrade`): each row pairs a reference report with another over the scored document text (the same ids),
with llama.cpp's `--kl-divergence` statistics. Usage: python tools/kl_table.py LABEL=OLD.json:NEW.json ..."""

from __future__ import annotations

import sys
from pathlib import Path

from pytest_lmbehave.observations.scores import statistics
from pytest_lmbehave.reports.drift import paired
from pytest_lmbehave.reports.report_format import load_report


def row(label: str, old: Path, new: Path) -> str:
    found = statistics(paired(load_report(old), load_report(new), "scores"))
    if not found.get("positions"):
        return f"| {label} | - | - | - | - | - | - | (no scored text in both) | |"
    return (
        f"| {label} | {found['positions']} | {found['mean_kl']:.3g} | {found['median_kl']:.3g} | {found['p99_kl']:.3g} | "
        f"{found['max_kl']:.3g} | {found['same_top']:.1%} | {found['rms_dp']:.3g} | {found['over']} |"
    )


def main(pairs: list[str]) -> None:
    print("| comparison | positions | mean KL | median KL | p99 KL | max KL | same top | RMS Δp | KL |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for pair in pairs:
        label, files = pair.split("=", 1)
        old, new = files.split(":", 1)
        if Path(old).is_file() and Path(new).is_file():
            print(row(label, Path(old), Path(new)))
        else:
            print(
                f"| {label} | - | - | - | - | - | - | (not measured: {old if not Path(old).is_file() else new} absent) | |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
