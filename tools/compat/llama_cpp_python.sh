#!/usr/bin/env bash
# The generate stage against llama-cpp-python's OpenAI-compatible server serving the SmolLM2
# GGUF, as a new user would run it, in each structured-output dialect; prints the funnel of
# each (problems kept, calls, parse failures, rejected requests). Not in CI: llama-cpp-python
# builds llama.cpp from source (~10 minutes on 2 cores).
#   tools/compat/llama_cpp_python.sh [problems per strategy, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-10}"
VENV=.venv-compat
PORT=8011
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'llama-cpp-python[server]==0.3.36'
fi
cargo build --release --locked -p pipeline
OUT="$(mktemp -d)"
"$VENV/bin/python" -m llama_cpp.server --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
    --model_alias smollm2 --port "$PORT" --n_ctx 4096 > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/v1/models" > /dev/null && break
    sleep 1
done

for dialect in json_schema json_object; do
    echo "== structured_output = \"$dialect\""
    cat > "$OUT/$dialect.toml" <<TOML
[run]
name = "compat-$dialect"
out_dir = "$OUT/runs"
[llm.llamacpp]
provider = "openai"
base_url = "http://127.0.0.1:$PORT/v1"
model = "smollm2"
max_concurrency = 1
max_tokens = 512
temperature = 0.7
structured_output = "$dialect"
[generate]
llm = "llamacpp"
strategies = ["direct", "vs_multi"]
num_problems = $N
k = 5
TOML
    "${CARGO_TARGET_DIR:-target}/release/pipeline" run --config "$OUT/$dialect.toml" --stages generate 2>&1 | tail -4 || true
    manifest="$OUT/runs/compat-$dialect/generate/manifest.json"
    if [ -f "$manifest" ]; then
        python3 - "$manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print("| strategy | kept | conversations | calls sent | parse failures | items without a question |")
print("|---|---:|---:|---:|---|---:|")
for s, c in m["counts"].items():
    print(f"| {s} | {c['kept']} | {c['conversations']} | {c['calls_sent']} | {c['parse_failures']} | {c['missing_question']} |")
PY
    fi
done
