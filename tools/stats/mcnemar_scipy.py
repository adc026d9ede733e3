#!/usr/bin/env python3
"""Reference p-values for our exact McNemar test (pipeline/src/stages/report/stats.rs).

Not a project dependency: run it once in a scratch virtualenv with scipy, and commit the output:

    python3 -m venv /tmp/mv && /tmp/mv/bin/pip install scipy
    /tmp/mv/bin/python tools/stats/mcnemar_scipy.py > pipeline/tests/fixtures/mcnemar_scipy.json

Each entry is [b, c, p]: b and c the discordant counts, p = binomtest(min(b, c), b + c, 0.5).pvalue.
"""
import json
from scipy.stats import binomtest
cases = [(0, 5), (1, 9), (4, 4), (3, 12), (12, 3), (10, 20), (25, 40), (0, 1), (7, 0), (50, 75), (100, 130), (300, 360), (1500, 1600), (2, 30)]
out = [[b, c, binomtest(min(b, c), b + c, 0.5).pvalue] for b, c in cases]
print(json.dumps(out))
