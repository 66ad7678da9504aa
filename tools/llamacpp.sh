#!/usr/bin/env bash
# The specs on llama.cpp (run by `make llamacpp`, part of `make test`): in process (--lm-engine llama.cpp) against
# their own recorded variant, then through llama.cpp's OpenAI-compatible server (llama_cpp.server, from
# llama-cpp-python[server]) with what its probe found, and the drift from transformers on the same weights. Prints
# each run's wall time; stops the server at the end, whatever failed.
# Usage: tools/llamacpp.sh VENV_PYTHON OUT_DIR [TRANSFORMERS_REPORT]  (a report of `pytest specs/` on transformers,
# e.g. make portability's; made here when absent)
set -euo pipefail
py=$1 out=$2 transformers=${3:-}
mkdir -p "$out"
ms() { echo $(($(date +%s%N) / 1000000)); }
seconds() { printf '%d.%03d s' $(($1 / 1000)) $(($1 % 1000)); }

echo "== the specs on llama.cpp, in process"
begin=$(ms)
"$py" -m pytest specs/ -n 2 -q -p no:randomly --lm-engine llama.cpp --lm-report "$out/llama.cpp.json"
llama_ms=$(($(ms) - begin))
# The reference run twice (one process, then two): llama.cpp's noise floor, which assert_close's profiles must clear.
"$py" -m pytest specs/ -p no:xdist -q -p no:randomly --lm-engine llama.cpp --lm-report "$out/llama.cpp-rerun.json" >/dev/null
"$py" -m pytest_lmbehave diff "$out/llama.cpp.json" "$out/llama.cpp-rerun.json" --save-floor "$out/noise-floor.json" \
  | grep -E "observations compared|noise floor"

transformers_ms=0
if [[ -z "$transformers" || ! -f "$transformers" ]]; then
  echo "== the specs on transformers (the same weights, dequantized): the other side of the engine diff"
  transformers="$out/transformers.json"
  begin=$(ms)
  "$py" -m pytest specs/ -n 2 -q -p no:randomly --lm-report "$transformers"
  transformers_ms=$(($(ms) - begin))
fi
# Same weights, other engine: what moved, with the KL divergence over the scored document text. Drift is expected
# (llama.cpp computes with the quantized weights, transformers with them dequantized to float32), so it is shown.
"$py" -m pytest_lmbehave diff "$transformers" "$out/llama.cpp.json" --limit 8 || true

gguf=$("$py" -c 'from pytest_lmbehave.backends import resolve; print(resolve("embedded").path)')
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port/v1"
echo "== starting llama.cpp's server on $gguf at $url (log: $out/server.log)"
started=$(date +%s)
# The same numerics as the in-process backend (32 tokens per decode call, flash attention: see its module), so the
# served answers are held to the same recorded variant.
setsid "$py" -m llama_cpp.server --model "$gguf" --model_alias embedded --host 127.0.0.1 --port "$port" \
  --n_ctx 2048 --n_batch 32 --n_ubatch 32 --flash_attn true --logits_all true --n_threads 2 >"$out/server.log" 2>&1 &
server=$!
stop() { kill -- -"$server" 2>/dev/null || kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
trap stop EXIT
until curl -sf "$url/models" >/dev/null; do
  if ! kill -0 "$server" 2>/dev/null; then echo "llama_cpp.server exited before it was ready:"; tail -40 "$out/server.log"; exit 1; fi
  if (($(date +%s) - started > 300)); then echo "llama_cpp.server was not ready after 300 s:"; tail -40 "$out/server.log"; exit 1; fi
  sleep 1
done
echo "== llama_cpp.server ready after $(($(date +%s) - started)) s; what its probe finds:"
"$py" -c 'import sys; from pytest_lmbehave.backends.served.capabilities import announcement; print(announcement(sys.argv[1] + "#embedded", 60))' "$url"
begin=$(ms)
# The server's build is this machine's: its set is the variant of this SIMD level (embedded@llama.cpp is AVX2's).
level=$("$py" -c 'import llama_cpp; from pytest_lmbehave.backends.llamacpp.backend import cpu_features; print(cpu_features(llama_cpp))')
variant=llama.cpp && [[ $level == AVX512 ]] && variant=llama.cpp-avx512
echo "== llama.cpp built for $level: the server's specs compare against embedded@$variant"
"$py" -m pytest specs/ -n 2 -q -p no:randomly -rs --lm-server "$url" --lm-model embedded --lm-variant "$variant" \
  --lm-report "$out/served.json" | tee "$out/served.out"
served_ms=$(($(ms) - begin))
if grep -q "every test that uses a model was skipped" "$out/served.out"; then
  echo "every spec was skipped against llama.cpp's server: nothing was checked"; exit 1
fi
# The same engine in process and served: what must agree (greedy, next token, choice) may not move.
"$py" -m pytest_lmbehave diff "$out/llama.cpp.json" "$out/served.json" --only greedy,next_token,choice --limit 10
"$py" -m pytest_lmbehave diff "$out/llama.cpp.json" "$out/served.json" --only capability --limit 5
echo "pytest specs/ -n 2: llama.cpp in process $(seconds $llama_ms), llama.cpp's server $(seconds $served_ms)" \
  "(wall)$( ((transformers_ms)) && echo ", transformers $(seconds $transformers_ms)")"
