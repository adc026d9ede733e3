#!/usr/bin/env bash
# Builds the GPU bundle here (no GPU needed): the `pipeline` and `bench` binaries linked against the libtorch
# of the GPU host's PyTorch (2.11.0 by default; `TORCH_VERSION=...` to match another), stripped,
# plus a tokenizer-only SmolLM2 folder, in gpu-bundle/ (~25 MB: small enough to carry). Then, on
# the GPU host, `tools/gpu/check.sh` runs the CUDA checks with it and prints one table.
#
#   tools/gpu/build.sh          # ~25 minutes on 2 cores (libtorch's C++ shim and burn rebuild)
set -euo pipefail
cd "$(dirname "$0")/../.."
TORCH_VERSION="${TORCH_VERSION:-2.11.0}"
WHEELS=.deps/gpu-wheel
if [ ! -d "$WHEELS/torch" ]; then
    # PyPI's Linux wheel carries the CUDA libtorch (2.11.0 is +cu130, as the GPU hosts' is);
    # only its headers and libraries are used.
    python3 -m pip download --no-deps --only-binary=:all: --dest "$WHEELS/dl" "torch==$TORCH_VERSION"
    python3 -m zipfile -e "$WHEELS"/dl/torch-*.whl "$WHEELS"
    rm -rf "$WHEELS/dl"
fi
# tch 0.22 is written against libtorch 2.9; its C++ shim compiles against 2.11's headers
# (checked: torch-sys alone builds in 4 minutes), so the version check is bypassed on purpose.
LIBTORCH="$PWD/$WHEELS/torch" LIBTORCH_BYPASS_VERSION_CHECK=1 LIBTORCH_CXX11_ABI=1 \
    cargo build --release --locked -p pipeline -p bench --target-dir target/gpu
mkdir -p gpu-bundle
strip -o gpu-bundle/pipeline target/gpu/release/pipeline
strip -o gpu-bundle/bench target/gpu/release/bench
# The tokenizer and architecture of SmolLM2-135M without its weights (benchmarks use random
# weights of this shape: the GGUF is too large to carry).
just setup >/dev/null
target/gpu/release/pipeline export --model models/SmolLM2-135M-Instruct.Q4_1.gguf --out gpu-bundle/smollm2 \
    || cargo run --release --locked -p pipeline -- export --model models/SmolLM2-135M-Instruct.Q4_1.gguf --out gpu-bundle/smollm2
rm -f gpu-bundle/smollm2/model.safetensors
du -sh gpu-bundle
