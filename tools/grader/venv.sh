#!/usr/bin/env bash
# Creates .venv-grader (git-ignored) with math-verify 0.9.0 and its dependencies, pinned and
# hash-checked in tools/grader/requirements.txt: the reference grader that eval's
# grader::reference runs (evaluate.grader = "math_verify" | "both", the differential tests).
#
#   tools/grader/venv.sh            create it, or do nothing when it is already in place
#   tools/grader/venv.sh --force    recreate it from scratch
#
# Idempotent: a stamp in the venv holds the requirements' sha256 and is written only after the
# installed versions were checked against the pins; while it matches, they still match and the
# interpreter runs, nothing is done. Otherwise the venv is rebuilt from scratch, so it never
# holds leftovers of older pins. About 10-15 s and 115 MB. PYTHON=... picks the base interpreter
# (default python3; math-verify needs 3.10 or newer).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV="$ROOT/.venv-grader"
REQ="$ROOT/tools/grader/requirements.txt"
STAMP="$VENV/.requirements-sha256"
PY=${PYTHON:-python3}

say() { printf 'grader venv: %s\n' "$*" >&2; }
die() { printf 'grader venv: error: %s\n' "$*" >&2; exit 1; }

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (expected --force)" ;;
  esac
done

[ -f "$REQ" ] || die "$REQ is missing"
want=$(sha256sum "$REQ" | cut -d' ' -f1)

# Exits non-zero (naming the first difference on stderr) unless every `name==version` pin in
# the requirements is what the venv's interpreter has installed.
pins_installed() {
  "$VENV/bin/python" - "$REQ" <<'PY'
import re, sys
from importlib import metadata
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"\s*([A-Za-z0-9_.-]+)==(\S+)", line)
    if not m:
        continue
    name, pinned = m.groups()
    try:
        got = metadata.version(name)
    except metadata.PackageNotFoundError:
        sys.exit(f"{name} is not installed (pinned {pinned})")
    if got != pinned:
        sys.exit(f"{name} {got} is installed, {pinned} is pinned")
PY
}

if [ "$force" = 0 ] && [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] \
  && pins_installed 2>/dev/null; then
  say "already in place: $VENV/bin/python (requirements sha256 ${want:0:12}, versions checked)"
  exit 0
fi

command -v "$PY" >/dev/null || die "'$PY' not found; install Python 3.10+ or set PYTHON=/path/to/python3"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "$("$PY" --version 2>&1) is too old: math-verify 0.9.0 needs Python 3.10 or newer (set PYTHON=...)"

start=$SECONDS
say "creating $VENV with $("$PY" --version 2>&1)"
rm -rf "$VENV"
"$PY" -m venv "$VENV" \
  || die "'$PY -m venv' failed (on Debian/Ubuntu the venv module is the python3-venv package)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --only-binary=:all: --require-hashes -r "$REQ" >&2 \
  || die "pip install -r $REQ failed (network? a changed pin without its --hash?)"
problem=$(pins_installed 2>&1) || die "installed versions do not match $REQ: $problem"
echo "$want" >"$STAMP"
say "ready in $((SECONDS - start))s: $VENV/bin/python ($("$VENV/bin/python" -c \
  'from importlib.metadata import version; print("math-verify", version("math-verify"))'))"
