"""Issue-4 benchmark: the document as a plain script (a) against `pytest specs/` serially (b) and with -n 2 (c);
also -n 2 without the request plan (e) and with a warm observation cache (d).

One run, the embedded model, a warm conversion cache. Prints wall times, the ratios (b)/(a) and (c)/(a), the
observations each checked, model-ready time and peak memory per process. Asserts nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def pytest_run(label: str, folder: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    report = folder / f"{label}.json"
    wall, _ = timed(
        [sys.executable, "-m", "pytest", "specs", "-q", "-p", "no:randomly", f"--lm-report={report}", *args], env
    )
    document = json.loads(report.read_text())
    processes = document["processes"]
    return {
        "wall_s": wall,
        "observations": sum(len(v) for v in document["observations"].values()),
        "ready_s": max(max(p["model_ready_s"].values(), default=0.0) for p in processes),
        "imports_s": max(max(p["imports_s"].values(), default=0.0) for p in processes),
        "peak_rss_mb": max(p["peak_rss_mb"] for p in processes),
        "pss_mb": max((p["pss_mb"] or 0.0) for p in processes),
        "processes": len(processes),
    }


def main() -> None:
    timed(
        [
            sys.executable,
            "-c",
            "from pytest_lmbehave.registry import Registry; from pytest_lmbehave.settings import Settings, default_cache_dir; Registry(Settings(cache_dir=default_cache_dir())).engine('embedded')",
        ]
    )
    wall_a, out = timed([sys.executable, str(ROOT / "bench" / "document_run.py")])
    a = json.loads(out.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        b = pytest_run("serial", folder, "-p", "no:xdist")
        c = pytest_run("n2", folder, "-n", "2")
        e = pytest_run("n2-no-plan", folder, "-n", "2", "--lm-plan=none")
        observations = folder / "observations"
        env = {**os.environ, "LMBEHAVE_CACHE": str(folder / "cache")}
        (folder / "cache").mkdir()
        for entry in Path(os.environ.get("LMBEHAVE_CACHE", Path.home() / ".cache" / "pytest-lmbehave")).iterdir():
            if entry.is_dir() and entry.name != "observations":
                (folder / "cache" / entry.name).symlink_to(entry)  # share the converted model, not the observations
        pytest_run("fill", folder, "-n", "2", "--lm-cache", env=env)
        d = pytest_run("warm", folder, "-n", "2", "--lm-cache", env=env)
        shutil.rmtree(observations, ignore_errors=True)
    rows = [
        ("(a) document as a plain script", wall_a, a["observations"], a["load_s"], "-", a["peak_rss_mb"], "-"),
        (
            "(b) pytest specs/ -p no:xdist",
            b["wall_s"],
            b["observations"],
            b["ready_s"],
            b["imports_s"],
            b["peak_rss_mb"],
            b["pss_mb"],
        ),
        (
            "(c) pytest specs/ -n 2",
            c["wall_s"],
            c["observations"],
            c["ready_s"],
            c["imports_s"],
            c["peak_rss_mb"],
            c["pss_mb"],
        ),
        (
            "(e) as (c), --lm-plan=none",
            e["wall_s"],
            e["observations"],
            e["ready_s"],
            e["imports_s"],
            e["peak_rss_mb"],
            e["pss_mb"],
        ),
        (
            "(d) as (c), warm --lm-cache",
            d["wall_s"],
            d["observations"],
            d["ready_s"],
            d["imports_s"],
            d["peak_rss_mb"],
            d["pss_mb"],
        ),
    ]
    print(
        f"{'run':<34}{'wall s':>8}{'observations':>14}{'ready s':>9}{'imports s':>11}{'peak RSS MB':>13}{'PSS MB':>8}"
    )
    for name, wall, seen, ready, imports, rss, pss in rows:
        print(f"{name:<34}{wall:>8.1f}{seen:>14}{ready:>9}{imports:>11}{rss:>13}{pss:>8}")
    print(
        f"(b)/(a) = {b['wall_s'] / wall_a:.2f}   (c)/(a) = {c['wall_s'] / wall_a:.2f}   "
        f"(e)/(a) = {e['wall_s'] / wall_a:.2f}   (d)/(a) = {d['wall_s'] / wall_a:.2f}"
    )
    print(
        "targets: (c)/(a) <= 0.3 with at least as many observations; model ready < 2 s per worker; peak RSS < 900 MB per worker"
    )


if __name__ == "__main__":
    main()
