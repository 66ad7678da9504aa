#!/usr/bin/env bash
# The specs against a real vLLM server on the converted embedded model (run by `make served`, part of `make test`):
# start one server, wait for /health, run the specs and the backend contract against it, hold its greedy,
# next-token and choice observations to an in-process report with `lmbehave diff`, print both wall times, and stop
# the server at the end, whatever failed. Usage: tools/served.sh VENV_PYTHON VLLM_PYTHON OUT_DIR [IN_PROCESS_REPORT]
set -euo pipefail
py=$1 vllm=$2 out=$3 native=${4:-}  # native: an in-process report of the same specs (make portability's), reused
mkdir -p "$out"
model_dir=$("$py" -c 'from pytest_lmbehave.backends.transformers import conversion, loading as models; from pytest_lmbehave.config.settings import default_cache_dir
s = models.resolve("embedded"); print(conversion.converted_entry(s.path, models.content_hash(s, default_cache_dir()), default_cache_dir()))')
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port/v1"

# --max-logprobs 50: lm.draws() under top-50 is held to the top 50 log-probabilities (vLLM's default is 20).
# --enforce-eager: no torch.compile warm-up, so the server is ready in ~40 s instead of ~2 min here; the specs'
# few requests then run a little slower (measured: 38 s against 31 s), well worth it.
echo "== starting vLLM on $model_dir at $url (log: $out/vllm.log)"
started=$(date +%s)
# VLLM_SERVER_DEV_MODE=1: /server_info tells the probe the served dtype (a loopback server for these tests only).
VLLM_SERVER_DEV_MODE=1 VLLM_CPU_KVCACHE_SPACE=1 setsid "$vllm" -m vllm.entrypoints.openai.api_server --model "$model_dir" --dtype float32 \
  --max-model-len 1024 --gpu-memory-utilization 0.4 --served-model-name embedded --host 127.0.0.1 --port "$port" \
  --enforce-eager --max-logprobs 50 \
  >"$out/vllm.log" 2>&1 &
server=$!
stop() { kill -- -"$server" 2>/dev/null || kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
trap stop EXIT
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do
  if ! kill -0 "$server" 2>/dev/null; then echo "vLLM exited before it was ready:"; tail -40 "$out/vllm.log"; exit 1; fi
  if (($(date +%s) - started > 600)); then echo "vLLM was not ready after 600 s:"; tail -40 "$out/vllm.log"; exit 1; fi
  sleep 2
done
echo "== vLLM ready after $(($(date +%s) - started)) s"

ms() { echo $(($(date +%s%N) / 1000000)); }
begin=$(ms)
if [[ -n "$native" && -f "$native" ]]; then
  cp "$native" "$out/in-process.json"
else
  "$py" -m pytest specs/ -n 2 -q -p no:randomly --lm-report "$out/in-process.json"
fi
inproc_ms=$(($(ms) - begin))
begin=$(ms)
"$py" -m pytest specs/ -n 2 -q -p no:randomly -rs --lm-server "$url" --lm-model embedded --lm-report "$out/served.json" \
  | tee "$out/served.out"
served_ms=$(($(ms) - begin))
# A served run that checked nothing (every model test skipped) is a failure here, whatever pytest's exit status.
if grep -q "every test that uses a model was skipped" "$out/served.out"; then
  echo "every spec was skipped against the served model: nothing was checked"; exit 1
fi
# The fake server of tests/test_served.py is held to these real answers (tests/vllm_responses.json).
"$py" -m tests.vllm_shapes "$url" "$out/vllm_responses.json"
LMBEHAVE_VLLM_RESPONSES="$out/vllm_responses.json" "$py" -m pytest tests/test_served.py -q -p no:randomly -k shapes
LMBEHAVE_TEST_VLLM="$url#embedded" "$py" -m pytest tests/test_vllm.py -q -p no:randomly
# Same weights, other engine: no greedy, next-token or choice observation may move beyond the tolerances.
"$py" -m pytest_lmbehave diff "$out/in-process.json" "$out/served.json" --only greedy,next_token,choice --limit 10
# Behaviour under change: each capability's failure rate in process and served, side by side (a rate that Fisher's
# exact test tells apart at α = 0.01 fails).
"$py" -m pytest_lmbehave diff "$out/in-process.json" "$out/served.json" --only capability --limit 5
if [[ -n "$native" && -f "$native" ]]; then inproc="make portability's run"; else
  inproc=$(printf '%d.%03d s wall' $((inproc_ms / 1000)) $((inproc_ms % 1000))); fi
printf 'pytest specs/ -n 2: in-process %s, served by vLLM (2 cores shared with it) %d.%03d s wall\n' "$inproc" \
  $((served_ms / 1000)) $((served_ms % 1000))
