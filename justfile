# Task runner: `just --list` shows the recipes. Every recipe runs from the repository root.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

# List the recipes.
default:
    @just --list

# Fetch libtorch 2.9.0 (CPU; `just setup --cuda` on GPU nodes) and the offline models into
# .deps/ and models/. Idempotent: a finished step is skipped.
setup *args:
    tools/setup/setup.sh "$@"

# Create .venv-grader, math-verify 0.9.0 pinned (~15 s): for evaluate.grader = "math_verify" | "both".
grader-venv *args:
    tools/grader/venv.sh "$@"

# The differential fuzzer against math-verify itself, optimised: 6,000 seeded pairs, the agreement
# table with every disagreement classified, and both graders' pairs/s side by side
# (also in target/grader-diff/fuzz.md). `just test` runs the same test unoptimised.
grader-diff:
    tools/grader/venv.sh
    cargo test --release --locked -p eval --test grader_fuzz -- --nocapture --test-threads 1

# Run the pipeline on the offline default config; extra arguments go to `pipeline run`
# (e.g. `just run-pipeline --stages generate --set generate.num_problems=10`).
run-pipeline *args: setup
    cargo run --release --locked -p pipeline -- run --config configs/default.toml "$@"

# Run every test in the workspace. Makes .venv-grader first (~15 s once), so the tests that grade
# with math-verify itself (the differential fuzzer, the reference client, evaluate.grader = "both")
# run rather than skip.
test *args: setup
    tools/grader/venv.sh
    cargo test --workspace --locked "$@"

# Run the benchmarks.
bench *args: setup
    cargo bench --workspace --locked "$@"

# Formatting, clippy (warnings as errors), and the architecture check: no two source files import
# each other in a circle, and crates depend only on lower layers (tools/archcheck/layers.toml).
lint: setup
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cargo run --quiet --locked -p archcheck

# Regenerate the parity fixtures (trainer/tests/fixtures) from PyTorch/transformers in a
# scratch virtualenv (.venv-parity, ~2 minutes to create).
fixtures *args: setup
    tools/parity/venv.sh
    .venv-parity/bin/python tools/parity/make_fixtures.py "$@"

# Decode tokens/s, ours vs transformers, same model and prompts, one table with the ratio.
bench-decode *args: setup
    tools/parity/venv.sh
    cargo build --release --locked -p bench
    .venv-parity/bin/python tools/bench/decode.py "$@"

# Training tokens/s (SmolLM2-135M, seq 256, batch 4, AdamW), ours vs transformers, one table.
bench-train *args: setup
    tools/parity/venv.sh
    cargo build --release --locked -p bench
    .venv-parity/bin/python tools/bench/train.py "$@"

# Sentence embeddings/s (all-MiniLM-L6-v2), ours vs sentence-transformers, one table.
bench-embed *args: setup
    tools/parity/venv.sh
    cargo build --release --locked -p bench
    .venv-parity/bin/python tools/bench/embed.py "$@"

# Near-duplicate detection on 100,000 synthetic problems, ours vs datasketch, one table.
bench-dedup *args: setup
    tools/parity/venv.sh
    cargo build --release --locked -p bench
    .venv-parity/bin/python tools/bench/dedup.py "$@"
