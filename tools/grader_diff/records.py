#!/usr/bin/env python3
"""Differential fixture from a real run: model responses graded by math-verify, the paper's grader.

Not a project dependency: run it in a scratch virtualenv that has math-verify, after a run.

    python3 -m venv /tmp/mv && /tmp/mv/bin/pip install math-verify==0.9.0
    just run-pipeline
    /tmp/mv/bin/python tools/grader_diff/records.py runs/default > eval/tests/fixtures/math_verify_records.jsonl

Each line: {gold, response, math_verify, kind, problem}. From `evaluate/**/<benchmark>.jsonl`:
the student's whole response against the benchmark's gold. From `solve/<strategy>/solutions.jsonl`:
each solution against a pseudo-gold, the non-empty boxed answer of the problem's first solution
that has one, else the answer math-verify extracts from it (that solution included: the point is
whether both graders read the same answer out of the same unedited text). `math_verify` is
`verify(parse("$" + gold + "$"), parse(response))`, as the paper's harness calls it.
eval/tests/grader_differential.rs reads the file.
"""

import json
import sys
from pathlib import Path

from math_verify import parse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from responses import write_graded  # noqa: E402


def boxed(text):
    i = text.rfind("\\boxed{")
    if i < 0:
        return None
    depth = 0
    for j in range(i + len("\\boxed"), len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + len("\\boxed{"): j]
    return None


def problems():
    data = Path(__file__).resolve().parents[2] / "data" / "eval"
    out = {}
    for name, key in [("math500", "unique_id"), ("olympiadbench", "id"), ("minerva_math", "idx")]:
        for line in (data / f"{name}.jsonl").read_text().splitlines():
            r = json.loads(line)
            out[(name, str(r.get(key, "")))] = r.get("problem") or r.get("question") or ""
    return out


def main():
    run = Path(sys.argv[1])
    texts = problems()
    rows = []
    for path in sorted(run.glob("evaluate/**/*.jsonl")):
        bench = path.stem.split(".")[0]
        if ".shard-" in path.name:
            continue
        for line in path.read_text().splitlines():
            r = json.loads(line)
            rows.append({"gold": r["gold"], "response": r["response"], "kind": f"evaluate/{bench}",
                         "problem": texts.get((bench, r["id"]), "")})
    for path in sorted(run.glob("solve/*/solutions.jsonl")):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            sols = [s["text"] for s in r["solutions"]]
            # The pseudo-gold: a non-empty boxed answer, else the answer math-verify itself
            # extracts (its string form) from the first solution it finds one in.
            first, gold = None, None
            for i, t in enumerate(sols):
                b = (boxed(t) or "").strip()
                if not b:
                    try:
                        found = parse(t)
                    except Exception:  # noqa: BLE001
                        found = []
                    b = str(found[-1]).strip() if found else ""
                if b:
                    first, gold = i, b
                    break
            if first is None:
                continue
            for i, s in enumerate(sols):
                kind = "solve/self" if i == first else "solve"
                rows.append({"gold": gold, "response": s, "kind": kind, "problem": r["question"]})
    write_graded(rows)


if __name__ == "__main__":
    main()
