#!/usr/bin/env python3
"""Differential check of our grader against math-verify on mutated benchmark gold answers.

Not a project dependency: run it in a scratch virtualenv that has math-verify.

    python3 -m venv /tmp/mv && /tmp/mv/bin/pip install math-verify
    cargo build --release -p pipeline
    /tmp/mv/bin/python tools/grader_diff/grader_diff.py --ours target/release/pipeline --out /tmp/grader-diff

It builds (gold, pred) pairs from the gold answers in data/eval/ by mutating them: reformatted
(same value: \\dfrac, spacing, a boxed response, decimals, `x = ...`, thousands separators),
rescaled (x2) and perturbed (a digit changed), each with the label a careful human would give.
Then it grades every pair with math-verify (as the paper's harness calls it:
`verify(parse("$" + gold + "$"), parse(pred))`, with bare predictions put in `$...$` too) and with `pipeline grade --input`, single-threaded
for a fair speed comparison, and writes a summary and every disagreement to --out.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "eval"


def golds():
    for line in (DATA / "math500.jsonl").read_text().splitlines():
        yield "math500", json.loads(line)["answer"]
    for line in (DATA / "olympiadbench.jsonl").read_text().splitlines():
        yield "olympiadbench", json.loads(line)["final_answer"][0]
    for line in (DATA / "minerva_math.jsonl").read_text().splitlines():
        sol = json.loads(line)["solution"]
        i = sol.rfind("\\boxed{")
        depth, j = 0, i + len("\\boxed")
        for j in range(i + len("\\boxed"), len(sol)):
            depth += {"{": 1, "}": -1}.get(sol[j], 0)
            if depth == 0:
                break
        yield "minerva_math", sol[i + len("\\boxed{") : j]


def number_of(s):
    """The value of an integer, decimal or simple \\frac{a}{b} answer, else None."""
    t = s.strip().strip("$").replace("\\dfrac", "\\frac").replace(" ", "")
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", t)
    if m and int(m.group(3)) != 0:
        sign = -1 if m.group(1) else 1
        return sign * Fraction(int(m.group(2)), int(m.group(3)))
    if re.fullmatch(r"-?\d+(\.\d+)?", t):
        return Fraction(t)
    return None


def fmt(v):
    if v.denominator == 1:
        return str(v.numerator)
    return f"\\frac{{{v.numerator}}}{{{v.denominator}}}" if v > 0 else f"-\\frac{{{-v.numerator}}}{{{v.denominator}}}"


def variants(gold):
    bare = gold.strip()
    if bare.startswith("$") and bare.endswith("$") and bare.count("$") == 2:
        bare = bare[1:-1].strip()
    yield "identity", bare, True
    yield "boxed_response", f"Putting it together, the answer is $\\boxed{{{bare}}}$.", True
    if "\\frac" in bare:
        yield "dfrac", bare.replace("\\frac", "\\dfrac"), True
    if " " in bare:
        yield "no_spaces", bare.replace(" ", ""), True
    if "(" in bare and "\\left" not in bare:
        yield "left_right", bare.replace("(", "\\left(").replace(")", "\\right)"), True
    sqrt = re.sub(r"(?<![\d}])\\sqrt\{(\d+)\}", r"\1^{1/2}", bare)
    if sqrt != bare:
        yield "sqrt_as_power", sqrt, True
    items = split_top_commas(bare)
    is_thousands = re.fullmatch(r"[\\$]*\d{1,3}(,(\\!)?\d{3})+", bare) is not None
    is_prose = " where " in bare or " and " in bare
    if len(items) > 1 and not is_thousands and not is_prose and not bare.startswith(("(", "[", "\\{", "\\left")):
        # A bare comma list is a set of answers: any order is right.
        yield "reordered_list", ", ".join(reversed(items)), True
    m = re.fullmatch(r"([\[(])([^,\[\]()]+),([^,\[\]()]+)([\])])", bare)
    if m and m.group(1) + m.group(4) in ("[)", "(]"):
        flipped = {"[": "(", "(": "["}[m.group(1)] + m.group(2) + "," + m.group(3) + {")": "]", "]": ")"}[m.group(4)]
        yield "interval_ends_flipped", flipped, False
    v = number_of(bare)
    if v is None:
        return
    if v.denominator != 1:
        yield "slash_fraction", f"{v.numerator}/{v.denominator}", True
    yield "decimal", f"{float(v):.10g}" if v.denominator != 1 else f"{v.numerator}.0", True
    yield "assignment", f"x = {bare}", True
    if v.denominator == 1 and abs(v.numerator) >= 1000:
        yield "thousands", f"{v.numerator:,}", True
    if v != 0:
        yield "rescaled_x2", fmt(v * 2), False
    digits = [i for i, c in enumerate(bare) if c.isdigit()]
    if digits:
        i = digits[-1]
        changed = bare[:i] + str((int(bare[i]) + 1) % 10) + bare[i + 1 :]
        if number_of(changed) != v:
            yield "perturbed_digit", changed, False


def split_top_commas(s):
    parts, depth, cur = [], 0, ""
    for c in s:
        depth += c in "([{" and 1 or (c in ")]}" and -1 or 0)
        if c == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
    return parts + [cur.strip()]


def build_pairs(n, seed):
    pairs = []
    all_golds = list(golds())
    rng = random.Random(seed)
    for bench, gold in all_golds:
        for kind, pred, label in variants(gold):
            pairs.append({"benchmark": bench, "kind": kind, "gold": gold, "pred": pred, "label": label})
        # Another problem's answer: a false positive check (equal only if the values coincide).
        other = rng.choice(all_golds)[1]
        same = number_of(other) is not None and number_of(other) == number_of(gold)
        pairs.append({"benchmark": bench, "kind": "other_gold", "gold": gold, "pred": other, "label": same or other.strip() == gold.strip()})
    random.Random(seed).shuffle(pairs)
    return pairs[:n]


def run_math_verify(pairs):
    from math_verify import parse, verify

    out = []
    start = time.perf_counter()
    for p in pairs:
        try:
            # math-verify only reads LaTeX inside math delimiters: bare answers get them, as
            # the gold does, so the comparison is of grading and not of extraction.
            pred = p["pred"] if ("$" in p["pred"] or "\\boxed" in p["pred"]) else "$" + p["pred"] + "$"
            out.append(bool(verify(parse("$" + p["gold"] + "$"), parse(pred))))
        except Exception:  # math-verify raising counts as "not equal"
            out.append(False)
    return out, time.perf_counter() - start


def run_ours(binary, pairs, out_dir, repeat):
    """Verdicts, and seconds per pass over the pairs (the file holds `repeat` copies, so the
    process start-up is spread thin)."""
    path = out_dir / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs) * repeat)
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    start = time.perf_counter()
    res = subprocess.run([binary, "grade", "--input", str(path)], capture_output=True, text=True, env=env, check=True)
    took = (time.perf_counter() - start) / repeat
    return [json.loads(l)["equal"] for l in res.stdout.splitlines()[: len(pairs)]], took


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", required=True, help="path to the release `pipeline` binary")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--pairs", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=20, help="passes over the pairs when timing ours")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    pairs = build_pairs(args.pairs, args.seed)
    mv, mv_s = run_math_verify(pairs)
    ours, ours_s = run_ours(args.ours, pairs, args.out, args.repeat)

    rows = []
    for p, m, o in zip(pairs, mv, ours):
        rows.append(dict(p, math_verify=m, ours=o))
    (args.out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    agree = sum(r["math_verify"] == r["ours"] for r in rows)
    lines = [
        f"pairs: {len(rows)} (seed {args.seed})",
        f"agreement: {agree}/{len(rows)} = {agree / len(rows):.1%}",
        f"vs label: math-verify {sum(r['math_verify'] == r['label'] for r in rows)}/{len(rows)}, "
        f"ours {sum(r['ours'] == r['label'] for r in rows)}/{len(rows)}",
        f"time: math-verify {mv_s:.2f}s ({len(rows) / mv_s:.0f} pairs/s), "
        f"ours {ours_s:.3f}s ({len(rows) / ours_s:.0f} pairs/s, 1 thread, process start amortized over {args.repeat} passes)",
        f"speed ratio ours/math-verify: {mv_s / ours_s:.0f}x",
        "",
        "by kind: pairs, agree, math-verify right, ours right",
    ]
    kinds = sorted({r["kind"] for r in rows})
    for k in kinds:
        rs = [r for r in rows if r["kind"] == k]
        lines.append(
            f"  {k:<16} {len(rs):4} {sum(r['math_verify'] == r['ours'] for r in rs):4} "
            f"{sum(r['math_verify'] == r['label'] for r in rs):4} {sum(r['ours'] == r['label'] for r in rs):4}"
        )
    lines += ["", "disagreements (label, math-verify, ours, kind, gold, pred):"]
    for r in rows:
        if r["math_verify"] != r["ours"]:
            lines.append(f"  {r['label']!s:5} {r['math_verify']!s:5} {r['ours']!s:5} {r['kind']:<14} {r['gold']!r}  ->  {r['pred']!r}")
    summary = "\n".join(lines) + "\n"
    (args.out / "summary.txt").write_text(summary)
    sys.stdout.write(summary)


if __name__ == "__main__":
    main()
