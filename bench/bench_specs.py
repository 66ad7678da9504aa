"""The specs against the document as a plain script, in one run: (a) the script, (b) `pytest specs/` serially and
(c) with -n 2, both verifying the committed plan's drafts; (c0) as (c) decoding every token (--lm-drafts=false);
(e) as (c) without the plan; (d) as (c) and (f) serially with a warm --lm-cache; (g) `pytest exercises/` again
with its warm cache, as a student's edit-run loop does; (h) as (c) on llama.cpp (`--lm-engine llama.cpp`, cold: no
--lm-cache), verifying its drafts, (h0) decoding every token and (hf) as (f), with llama-cpp-python installed
(`make llamacpp`); (s1)-(s3) the larger suite (`bench/suite`: 198 next-token and greedy tests) on transformers, its
first run writing a plan, then planned, then serial from a warm --lm-cache, and (t1)-(t3) the same on llama.cpp (its
first run without a plan; the others with transformers' plan). With --runs N every row is run N times and a last
table prints both engines side by side: each ratio's min, median and max over the runs (`make bench` runs three).

One run, the embedded model, a warm conversion cache. Prints wall times, ratios against (a), the observations each
checked, tokens verified from drafts against tokens decoded, model-ready time, peak RSS per process and PSS summed
over the processes (the mapped weights are shared). Asserts nothing.

Each row is also measured against its floor (issue 49, `bench/floor.py`): every process runs with `-p meter`
(`bench/meter.py`), which records the questions that reached the engine and the positions the model read; the floor
is the start-up plus the ideal work of those questions (each shared beginning read once) at the engine's own rates,
timed in the same run, over the row's cores. A second table prints wall / floor and positions read / ideal. It needs
llama.cpp (`make llamacpp`): without it the bench fails rather than print half its rows.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import floor

ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode not in ok:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def figures(report: Path, wall: float, meter: Path) -> dict[str, Any]:
    document = json.loads(report.read_text())
    records = floor.metered(meter)
    processes = document["processes"]

    def most(key: str) -> float:
        return max((max(p[key].values(), default=0.0) for p in processes), default=0.0)

    return {
        "wall_s": wall,
        "observations": sum(len(v) for v in document["observations"].values()),
        "ready_s": most("model_ready_s"),
        "imports_s": most("imports_s"),
        "peak_rss_mb": max((p["peak_rss_mb"] for p in processes), default=0.0),
        "pss_total_mb": round(sum((p["pss_mb"] or 0.0) for p in processes), 1),
        "verified": sum(p.get("tokens_verified", 0) for p in processes),
        "decoded": sum(p.get("tokens_decoded", 0) for p in processes),
        "torch": any(p.get("imported_torch") for p in processes),
        "ideal": floor.ideal(records),
        "read": floor.read(records),
    }


def pytest_run(
    label: str, folder: Path, *args: str, env: dict[str, str] | None = None, where: str = "specs"
) -> dict[str, Any]:
    report, meter = folder / f"{label}.json", folder / f"{label}-meter"
    command = [sys.executable, "-m", "pytest", where, "-q", "-p", "no:randomly", "-p", "meter", f"--lm-report={report}"]
    ok = (0, 1) if where == "exercises" else (0,)  # blank exercises fail, as they should
    wall, _ = timed([*command, *args], floor.metering(meter, env), ok)
    found = figures(report, wall, meter)
    found.update(
        where=where,
        cores=2 if "-n" in args else 1,
        engine="llama.cpp" if "--lm-engine=llama.cpp" in args else "transformers",
        drafts="--lm-drafts=false" not in args and "--lm-plan=none" not in args and "--lm-plan-update" not in args,
    )
    return found


def cache_sharing_the_model(folder: Path) -> dict[str, str]:
    """A fresh $LMBEHAVE_CACHE whose converted model, vocabulary and facts are the real ones: no observations."""
    cache = folder / "cache"
    cache.mkdir()
    for entry in Path(os.environ.get("LMBEHAVE_CACHE", Path.home() / ".cache" / "pytest-lmbehave")).iterdir():
        if entry.is_dir() and entry.name != "observations":
            (cache / entry.name).symlink_to(entry)
    return {**os.environ, "LMBEHAVE_CACHE": str(cache)}


def one_run() -> tuple[float, dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
    """Every row once: (a)'s wall time and figures, and each pytest row's with its floor."""
    timed(
        [
            sys.executable,
            "-c",
            "from pytest_lmbehave.runtime.registry import Registry; from pytest_lmbehave.config.settings import Settings, default_cache_dir; Registry(Settings(cache_dir=default_cache_dir())).runtime('embedded')",
        ]
    )
    wall_a, out = timed([sys.executable, str(ROOT / "bench" / "document_run.py")])
    a = json.loads(out.strip().splitlines()[-1])
    rates = {engine: floor.rates(engine) for engine in ("transformers", "llama.cpp")}
    startups = {where: floor.startup_s(where) for where in ("specs", "exercises", "bench/suite")}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        rows = {
            "(b) pytest specs/ -p no:xdist": pytest_run("serial", folder, "-p", "no:xdist"),
            "(c) pytest specs/ -n 2": pytest_run("n2", folder, "-n", "2"),
            "(c0) as (c), --lm-drafts=false": pytest_run("n2-no-drafts", folder, "-n", "2", "--lm-drafts=false"),
            "(e) as (c), --lm-plan=none": pytest_run("n2-no-plan", folder, "-n", "2", "--lm-plan=none"),
        }
        rows["(h) as (c), --lm-engine llama.cpp"] = pytest_run("llama", folder, "-n", "2", "--lm-engine=llama.cpp")
        rows["(h0) as (h), --lm-drafts=false"] = pytest_run(
            "llama-no-drafts", folder, "-n", "2", "--lm-engine=llama.cpp", "--lm-drafts=false"
        )
        env = cache_sharing_the_model(folder)
        pytest_run("fill", folder, "-n", "2", "--lm-cache", env=env)
        rows["(d) as (c), warm --lm-cache"] = pytest_run("warm", folder, "-n", "2", "--lm-cache", env=env)
        rows["(f) -p no:xdist, warm --lm-cache"] = pytest_run(
            "warm-serial", folder, "-p", "no:xdist", "--lm-cache", env=env
        )
        pytest_run("llama-fill", folder, "-n", "2", "--lm-cache", "--lm-engine=llama.cpp", env=env)
        rows["(hf) as (f), --lm-engine llama.cpp"] = pytest_run(
            "llama-warm-serial", folder, "-p", "no:xdist", "--lm-cache", "--lm-engine=llama.cpp", env=env
        )
        pytest_run("exercises-fill", folder, env=env, where="exercises")
        rows["(g) pytest exercises/ again"] = pytest_run("exercises", folder, env=env, where="exercises")
        shutil.rmtree(folder / "cache", ignore_errors=True)
        rows.update(larger_suite(folder / "suite"))
    for row in rows.values():
        row["floor_s"] = floored(row, rates[row["engine"]], startups[row["where"]])
    return wall_a, a, rows, {"rates": rates, "startups": startups}


def floored(row: dict[str, Any], rates: dict[str, float], startup: float) -> float:
    """The row's floor: its start-up, and when any question reached the engine, the engine's own start-up and the
    ideal work of the questions over the row's cores."""
    counts = row["ideal"]
    if not any(counts.values()):
        return startup
    return startup + rates["ready_s"] + floor.work_s(counts, rates, row["drafts"]) / row["cores"]


def positions_ratio(row: dict[str, Any]) -> float | None:
    """Positions read in batched passes over the ideal's positions read that way (generated ones when verified)."""
    counts = row["ideal"]
    wanted = counts["prompt"] + counts["forced"] + (counts["generated"] if row["drafts"] else 0)
    return row["read"]["batched"] / wanted if wanted else None


def larger_suite(folder: Path) -> dict[str, dict[str, Any]]:
    """bench/suite on each engine: its first run (transformers' writes the plan; llama.cpp takes no plan), a run
    with that plan (which also fills a fresh --lm-cache), and a serial run from the warm cache."""
    folder.mkdir()
    env = cache_sharing_the_model(folder)
    plan = f"--lm-plan={folder / 'plan.json'}"
    suite = {"where": "bench/suite", "env": env}
    rows = {
        "(s1) bench/suite -n 2, first run": pytest_run(
            "suite-first", folder, "-n", "2", plan, "--lm-plan-update", **suite
        ),
        "(s2) bench/suite -n 2, planned": pytest_run("suite-planned", folder, "-n", "2", plan, "--lm-cache", **suite),
        "(s3) bench/suite serial, warm cache": pytest_run(
            "suite-warm", folder, "-p", "no:xdist", plan, "--lm-cache", **suite
        ),
    }
    engine = "--lm-engine=llama.cpp"
    rows["(t1) as (s1), llama.cpp"] = pytest_run(
        "suite-llama-first", folder, "-n", "2", engine, "--lm-plan=none", **suite
    )
    rows["(t2) as (s2), llama.cpp"] = pytest_run(
        "suite-llama-planned", folder, "-n", "2", engine, plan, "--lm-cache", **suite
    )
    rows["(t3) as (s3), llama.cpp"] = pytest_run(
        "suite-llama-warm", folder, "-p", "no:xdist", engine, plan, "--lm-cache", **suite
    )
    shutil.rmtree(folder / "cache", ignore_errors=True)
    return rows


def table(wall_a: float, a: dict[str, Any], rows: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'run':<36}{'wall s':>8}{'/(a)':>6}{'obs':>5}{'verified':>9}{'decoded':>8}{'ready s':>8}{'imports s':>10}"
    )
    print(header + f"{'peak RSS MB':>12}{'PSS sum MB':>11}{'torch':>6}")
    print(
        f"{'(a) document as a plain script':<36}{wall_a:>8.1f}{1:>6.2f}{a['observations']:>5}{'-':>9}{'-':>8}", end=""
    )
    print(f"{a['load_s']:>8}{'-':>10}{a['peak_rss_mb']:>12}{'-':>11}{'yes':>6}")
    for name, r in rows.items():
        print(
            f"{name:<36}{r['wall_s']:>8.1f}{r['wall_s'] / wall_a:>6.2f}{r['observations']:>5}{r['verified']:>9}"
            f"{r['decoded']:>8}{r['ready_s']:>8}{r['imports_s']:>10}{r['peak_rss_mb']:>12}{r['pss_total_mb']:>11}"
            f"{'yes' if r['torch'] else 'no':>6}"
        )


RATES = ("prompt_s", "forced_s", "verify_s", "decode_s", "draw_s")


def floor_table(rows: dict[str, dict[str, Any]], measured: dict[str, Any]) -> None:
    print(f"\n{'rates, ms per position (one core)':<36}" + "".join(f"{k[:-2]:>9}" for k in RATES) + f"{'ready s':>9}")
    for engine, rates in measured["rates"].items():
        print(f"{engine:<36}" + "".join(f"{rates[k] * 1000:>9.3f}" for k in RATES) + f"{rates['ready_s']:>9.2f}")
    print(
        "start-up alone (pytest --collect-only), s: "
        + ", ".join(f"{k} {v:.2f}" for k, v in measured["startups"].items())
    )
    print(
        f"\n{'run, against its floor':<36}{'wall s':>8}{'floor s':>8}{'/floor':>7}{'ideal pos':>10}{'read':>7}"
        f"{'/ideal':>7}{'steps':>7}{'draws':>7}  imported"
    )
    for name, r in rows.items():
        ratio, counts = positions_ratio(r), r["ideal"]
        ideal = counts["prompt"] + counts["forced"] + counts["generated"]
        print(
            f"{name:<36}{r['wall_s']:>8.1f}{r['floor_s']:>8.1f}{r['wall_s'] / r['floor_s']:>7.2f}{ideal:>10}"
            f"{r['read']['batched']:>7}{'-' if ratio is None else f'{ratio:.2f}':>7}{r['read']['steps']:>7}"
            f"{counts['draws']:>7}  {', '.join(sorted(r['read']['imported'])) or '-'}"
        )


AGAINST_FLOOR = (  # (measure, its goal, transformers' row, llama.cpp's row)
    ("cold -n 2, wall / floor", "<= 1.2", "(c) pytest specs/ -n 2", "(h) as (c), --lm-engine llama.cpp"),
    ("cold -n 2, positions / ideal", "<= 1.1", "(c) pytest specs/ -n 2", "(h) as (c), --lm-engine llama.cpp"),
    ("serial, wall / floor", "", "(b) pytest specs/ -p no:xdist", ""),
    (
        "warm serial, wall - floor (s)",
        "<= 0.3",
        "(f) -p no:xdist, warm --lm-cache",
        "(hf) as (f), --lm-engine llama.cpp",
    ),
    ("bench/suite planned, wall / floor", "", "(s2) bench/suite -n 2, planned", "(t2) as (s2), llama.cpp"),
)


def against_floor(measure: str, row: dict[str, Any]) -> float:
    if "positions" in measure:
        return positions_ratio(row) or 0.0
    if "wall - floor" in measure:
        return float(row["wall_s"] - row["floor_s"])
    return float(row["wall_s"] / row["floor_s"])


SIDE_BY_SIDE = (  # (measure, its goal, transformers' row, llama.cpp's row)
    ("cold -n 2, verifying drafts", "0.2 / 0.12", "(c) pytest specs/ -n 2", "(h) as (c), --lm-engine llama.cpp"),
    ("cold -n 2, decoding every token", "", "(c0) as (c), --lm-drafts=false", "(h0) as (h), --lm-drafts=false"),
    ("warm --lm-cache, serial", "0.05", "(f) -p no:xdist, warm --lm-cache", "(hf) as (f), --lm-engine llama.cpp"),
    ("bench/suite -n 2, first run", "", "(s1) bench/suite -n 2, first run", "(t1) as (s1), llama.cpp"),
    ("bench/suite -n 2, planned", "", "(s2) bench/suite -n 2, planned", "(t2) as (s2), llama.cpp"),
    ("bench/suite serial, warm cache", "", "(s3) bench/suite serial, warm cache", "(t3) as (s3), llama.cpp"),
)


def spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[0]:.3f} / {statistics.median(ordered):.3f} / {ordered[-1]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs of every row; ratios are per run (default 1)")
    runs_asked = parser.parse_args().runs
    if importlib.util.find_spec("llama_cpp") is None:
        sys.exit("bench: llama.cpp is not installed, and half the rows run on it; run `make llamacpp` first")
    runs = [one_run() for _ in range(runs_asked)]
    wall_a, a, rows, measured = runs[len(runs) // 2]
    print(f"run {len(runs) // 2 + 1} of {len(runs)}:")
    table(wall_a, a, rows)
    floor_table(rows, measured)
    c, c0, f = (
        rows["(c) pytest specs/ -n 2"],
        rows["(c0) as (c), --lm-drafts=false"],
        rows["(f) -p no:xdist, warm --lm-cache"],
    )
    print(
        f"(c)/(a) = {c['wall_s'] / wall_a:.2f} with drafts (target <= 0.2), {c0['wall_s'] / wall_a:.2f} without "
        f"(target <= 0.3); cached re-run (f)/(a) = {f['wall_s'] / wall_a:.3f} (target <= 0.05, under 3 s); "
        f"exercises again {rows['(g) pytest exercises/ again']['wall_s']:.1f} s (target < 2 s); "
        f"PSS at -n 2 = {c['pss_total_mb'] / 1024:.2f} GB (target <= 1.3)"
    )
    print(f"\nboth engines, each row's wall time over (a)'s in the same run; min / median / max of {len(runs)} run(s)")
    print(f"{'measure':<34}{'goal':>12}{'transformers':>26}{'llama.cpp':>26}")
    for measure, goal, ours, theirs in SIDE_BY_SIDE:
        cells = [
            spread([r[ours]["wall_s"] / w for w, _, r, _ in runs]) if ours in rows else "-",
            spread([r[theirs]["wall_s"] / w for w, _, r, _ in runs]) if theirs in rows else "-",
        ]
        print(f"{measure:<34}{goal:>12}{cells[0]:>26}{cells[1]:>26}")
    print(f"(a) the document as a plain script, s: {spread([w for w, _, _, _ in runs])}")
    print(f"\nagainst the floor (bench/floor.py); min / median / max of {len(runs)} run(s)")
    print(f"{'measure':<34}{'goal':>12}{'transformers':>26}{'llama.cpp':>26}")
    for measure, goal, ours, theirs in AGAINST_FLOOR:
        cells = [
            spread([against_floor(measure, r[name]) for _, _, r, _ in runs]) if name in rows else "-"
            for name in (ours, theirs)
        ]
        print(f"{measure:<34}{goal:>12}{cells[0]:>26}{cells[1]:>26}")


if __name__ == "__main__":
    main()
