#!/usr/bin/env bash
# The CUDA checks, on a GPU host, with the bundle tools/gpu/build.sh made (nothing is built
# here: the host needs only PyTorch, whose libtorch the binary uses, and nvidia-smi):
#   1. bf16 SFT with activation checkpointing, fused attention and the chunked loss: SmolLM2-135M
#      and a Qwen3-1.7B-shaped model (random weights) at 4,096 tokens: tokens/s, peak GPU
#      memory against the memory plan, MFU; and the bf16 loss against f32 on the same batch.
#   2. Batched greedy decoding, bf16 and f32, batch 1, 16, 64.
#   3. With two GPUs or more: data parallel SFT of SmolLM2-135M over two of them (same table).
# One table at the end. Usage: tools/gpu/check.sh [bundle dir, default gpu-bundle]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE="${1:-gpu-bundle}"
BENCH="$BUNDLE/bench"
TOK="$BUNDLE/smollm2"
TORCH_LIB="$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$TORCH_LIB:${LD_LIBRARY_PATH:-}"
OUT="${OUT:-$(mktemp -d)}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

# Peak GPU memory of a command: nvidia-smi sampled every 100 ms while it runs.
measure() {
    local name="$1"; shift
    ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0; sleep 0.1; done ) \
        > "$OUT/$name.mem" 2>/dev/null &
    local sampler=$!
    "$@" > "$OUT/$name.json" 2> "$OUT/$name.log" || { kill $sampler; echo "FAILED: $name"; tail -20 "$OUT/$name.log"; return 1; }
    kill $sampler; wait $sampler 2>/dev/null || true
}

Q3="data/model_configs/Qwen3-1.7B-Base.json"
COMMON=(train --json --device cuda --seq 4096 --batch 1 --steps 3 --checkpoint-activations)
measure smollm2-bf16 "$BENCH" "${COMMON[@]}" --model "$TOK" --random-weights --dtype bf16
measure smollm2-f32 "$BENCH" "${COMMON[@]}" --model "$TOK" --random-weights --dtype f32
measure qwen3-bf16 "$BENCH" "${COMMON[@]}" --model "$TOK" --random-weights --architecture "$Q3" --dtype bf16
GPUS=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
if [ "$GPUS" -ge 2 ]; then
    measure smollm2-bf16-dp2 "$BENCH" train --json --devices cuda:0,cuda:1 --seq 4096 --batch 1 --steps 3 \
        --checkpoint-activations --model "$TOK" --random-weights --dtype bf16
fi
measure decode-bf16 "$BENCH" decode --json --device cuda --model "$TOK" --random-weights --dtype bf16 --batch 1,16,64
measure decode-f32 "$BENCH" decode --json --device cuda --model "$TOK" --random-weights --dtype f32 --batch 1,16,64

python3 - "$OUT" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
gpu = (out / "gpu.txt").read_text().strip()
# Dense bf16 peak of the H100/H200 SXM (989 TFLOP/s); MFU counts 6 x parameters x tokens plus
# attention (12 x layers x hidden x seq per token, causal halves it), as PaLM's appendix does.
PEAK = 989e12
def peak_mem(name):
    vals = [int(x) for x in (out / f"{name}.mem").read_text().split() if x.strip().isdigit()]
    return max(vals) / 1024 if vals else float("nan")
print(f"\nGPU: {gpu}\n")
print("| run | dtype | seq | tokens/s | peak GPU GB | plan GB | MFU | first loss | last loss |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
shapes = {"smollm2": (30, 576), "qwen3": (28, 2048)}
runs = ["smollm2-bf16", "smollm2-f32", "qwen3-bf16"] + (["smollm2-bf16-dp2"] if (out / "smollm2-bf16-dp2.json").exists() else [])
for name in runs:
    r = json.loads((out / f"{name}.json").read_text().strip().splitlines()[-1])
    layers, hidden = shapes[name.split("-")[0]]
    flops_per_token = 6 * r["parameters"] + 6 * layers * hidden * r["seq"]
    mfu = r["tokens_per_s"] * flops_per_token / (PEAK * r.get("devices", 1))
    print(f"| {name} | {r['dtype']} | {r['seq']} | {r['tokens_per_s']:.0f} | {peak_mem(name):.1f} | "
          f"{r['plan_gb']:.1f} | {mfu:.1%} | {r['losses'][0]:.4f} | {r['losses'][-1]:.4f} |")
print("\n| decode | dtype | batch | tokens/s |\n|---|---|---:|---:|")
for name in ["decode-bf16", "decode-f32"]:
    for line in (out / f"{name}.json").read_text().splitlines():
        r = json.loads(line)
        print(f"| smollm2 (random weights) | {r['dtype']} | {r['batch']} | {r['tokens_per_s']:.0f} |")
a = json.loads((out / "smollm2-bf16.json").read_text().strip().splitlines()[-1])["losses"][0]
b = json.loads((out / "smollm2-f32.json").read_text().strip().splitlines()[-1])["losses"][0]
print(f"\nbf16 vs f32 loss of the same first batch: {a:.5f} vs {b:.5f} (relative {abs(a-b)/b:.2e})")
PY
