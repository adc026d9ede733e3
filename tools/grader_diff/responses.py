#!/usr/bin/env python3
"""Differential fixture: whole model responses graded by math-verify, the paper's grader.

Not a project dependency: run it in a scratch virtualenv that has math-verify.

    python3 -m venv /tmp/mv && /tmp/mv/bin/pip install math-verify==0.9.0
    /tmp/mv/bin/python tools/grader_diff/responses.py > eval/tests/fixtures/math_verify_responses.jsonl

Each line: {gold, response, expected, math_verify, kind}. `response` is a full response as a
model writes it (prose, unboxed final lines, display math, Minerva's "Final Answer: ..." line,
decimal commas, percent words, matrices, answers in \\text{}), built from benchmark gold answers
and from hand-written cases in the style of math-verify's own test suite. `expected` is the
verdict a careful human gives; `math_verify` is `verify(parse("$" + gold + "$"), parse(response))`,
as the paper's harness calls it. eval/tests/grader_differential.rs reads the file.
"""

import json
import random
import re
import sys
from pathlib import Path

from math_verify import parse, verify

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grader_diff import golds as grader_diff_golds  # noqa: E402

# (gold, response, expected): the kinds of responses math-verify's tests and real models give.
HAND = [
    ("34", "We test small cases and find the pattern holds.\n\nFinal Answer: The largest $n$ is 34.", True),
    ("34", "Final Answer: The final answer is $34$. I hope it is correct.", True),
    ("34", "Final Answer: The final answer is 35. I hope it is correct.", False),
    ("x \\geq 5", "Solving, $x - 5 \\geq 0$. Therefore $x \\geq 5$ is the solution.", True),
    ("[5, \\infty)", "Therefore $x \\geq 5$ is the solution.", True),
    ("\\frac{1}{3}", "So $x=1/3\\approx0.33$.", True),
    ("\\frac{1}{3}", "Hence $x = 1/3$.", True),
    ("2.5", "The result is 2,5.", True),
    ("28\\%", "The increase is 28 pct.", True),
    ("28", "The increase is 28 percent.", True),
    ("9", "Adding up,\n\\[ 9 \\]", True),
    ("9", "Adding up,\n\\[ 10 \\]", False),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
     "The matrix is $\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]$.", True),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
     "The matrix is $\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 5 \\end{array}\\right]$.", False),
    ("\\text{Evelyn}", "The winner is $\\text{Evelyn}$.", True),
    ("\\text{(C)}", "The answer is $\\text{(C)}$.", True),
    ("5", "The answer is $\\boxed{5}$.", True),
    ("5", "The answer is \\boxed{6}. Wait, no: 5.", False),
    ("12", "Therefore, the total is $12$ apples.", True),
    ("12", "There are $3$ boxes with $4$ apples each, so $3 \\cdot 4 = 12$.", True),
    ("-7", "Thus $y = -7$.", True),
    ("\\frac{\\sqrt{3}}{2}", "We get $\\sin 60^\\circ = \\frac{\\sqrt{3}}{2}$.", True),
    ("\\frac{\\sqrt{3}}{2}", "We get $\\sin 60^\\circ = \\frac{\\sqrt{2}}{2}$.", False),
    ("100", "The answer: 100", True),
    ("100", "Answer: 1000", False),
    ("3", "So there are three solutions, namely $x = 3$.", True),
    ("(2, 3)", "The point is $(2, 3)$.", True),
    ("(2, 3)", "The point is $(3, 2)$.", False),
    ("\\{1, 2\\}", "The solutions are $x = 1$ and $x = 2$.", True),
    ("0.5", "The probability is $\\frac{1}{2}$.", True),
    ("0.5", "The probability is 50\\%.", True),
    ("4.5e33", "The luminosity is $4.5 \\times 10^{33}$ erg/s.", True),
    ("4.5e33", "The luminosity is $4.5 \\times 10^{34}$ erg/s.", False),
    ("1e-5", "So the ratio is $10^{-5}$.", True),
    ("2.7778e-6", "The time is about $2.7778 \\times 10^{-6}$ s.", True),
    ("16", "We need $|(1-i)^8|$. Compute $|(1-i)^8|$. Compute $|(1-i)^8|$.", False),
    ("2e", "The value is $2e$.", True),
    ("\\frac{e^{t}}{3}", "Therefore $f(t) = \\frac{e^{t}}{3}$.", True),
]


def golds():
    """The benchmarks' gold answers, as grader_diff.py reads them, without OlympiadBench's `$`."""
    for bench, gold in grader_diff_golds():
        yield bench, gold.strip("$") if bench == "olympiadbench" else gold


def perturb(gold):
    """A changed digit (the last one), or None when the gold has no digit."""
    digits = [m.start() for m in re.finditer(r"\d", gold)]
    if not digits:
        return None
    i = digits[-1]
    d = int(gold[i])
    return gold[:i] + str((d + 3) % 10) + gold[i + 1:]


TEMPLATES = [
    # (kind, template): how models end their responses.
    ("boxed", "Let us compute step by step.\nAfter simplifying, we obtain \\boxed{{{a}}}."),
    ("minerva", "We apply the formula and simplify.\nFinal Answer: The final answer is ${a}$. I hope it is correct."),
    ("answer_is", "Combining the cases, the answer is ${a}$."),
    ("display", "Putting everything together:\n\\[\n{a}\n\\]"),
    ("prose_last_math", "First note that $x+1$ divides the expression, and we set $y = 2$.\nSo we get ${a}$."),
    ("answer_colon", "Reasoning: we expand and collect terms.\nAnswer: ${a}$"),
]


def main():
    rng = random.Random(15)
    rows = []
    for gold, response, expected in HAND:
        rows.append({"gold": gold, "response": response, "expected": expected, "kind": "hand"})
    pool = list(golds())
    rng.shuffle(pool)
    for bench, gold in pool[:160]:
        gold = gold.strip()
        kind, template = rng.choice(TEMPLATES)
        rows.append({"gold": gold, "response": template.format(a=gold), "expected": True,
                     "kind": f"{bench}/{kind}"})
        wrong = perturb(gold)
        if wrong is not None and wrong != gold:
            kind, template = rng.choice(TEMPLATES)
            rows.append({"gold": gold, "response": template.format(a=wrong), "expected": False,
                         "kind": f"{bench}/{kind}/perturbed"})
    write_graded(rows)


def write_graded(rows):
    """Adds math-verify's verdict to each row, as the paper's harness calls it, and prints it."""
    for r in rows:
        try:
            r["math_verify"] = bool(verify(parse("$" + r["gold"] + "$"), parse(r["response"])))
        except Exception:  # noqa: BLE001 - math-verify's own failures count as "not equal"
            r["math_verify"] = False
        sys.stdout.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
