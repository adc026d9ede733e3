#!/usr/bin/env bash
# Creates .venv-parity (git-ignored) with PyTorch 2.9.0, transformers and gguf: the reference
# side of tools/parity/make_fixtures.py and tools/bench/*.py. About 2 minutes and 7 GB (the
# PyPI torch wheel pulls its CUDA packages even for CPU use).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ! -x .venv-parity/bin/python ]]; then
    python3 -m venv .venv-parity
fi
.venv-parity/bin/pip install --quiet -r tools/parity/requirements.txt
echo ".venv-parity ready: .venv-parity/bin/python tools/parity/make_fixtures.py"
