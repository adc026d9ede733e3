#!/usr/bin/env python3
"""Reference values for the report's statistics (pipeline/src/stages/report/), from scipy and
statsmodels, which the Rust tests compare against (report/inference/tests.rs).

Not a project dependency: run it once in a scratch virtualenv and commit the output:

    python3 -m venv /tmp/st && /tmp/st/bin/pip install scipy statsmodels
    /tmp/st/bin/python tools/stats/reference.py > pipeline/tests/fixtures/stats_reference.json

- "wilson": [hits, n, confidence, low, high]: statsmodels proportion_confint(method="wilson");
- "t": [z, df, two-sided p, 0.975 quantile]: scipy.stats.t (df = null: the normal);
- "holm" / "bh": [p-values, adjusted]: statsmodels multipletests(method="holm" / "fdr_bh");
- "mcnemar": [b, c, p]: statsmodels mcnemar(exact=False, correction=False) on the table with
  b + 0.5 and c + 0.5 (our statistic (b - c)^2 / (b + c + 1) for one benchmark and one run).
"""
import json

from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

wilson = []
for hits, n in [(0, 20), (20, 20), (8, 20), (1, 7), (250, 500), (3, 675), (270, 272)]:
    for conf in [0.95, 0.99]:
        lo, hi = proportion_confint(hits, n, alpha=1 - conf, method="wilson")
        wilson.append([hits, n, conf, lo, hi])

t = []
for z in [0.5, 1.96, 2.5, 4.0]:
    for df in [2, 4.5, 28, 1000, None]:
        dist = stats.norm if df is None else stats.t(df)
        t.append([z, df, 2 * dist.sf(z), dist.ppf(0.975)])

families = [
    [0.04, 0.001, 0.02, 0.01],
    [0.001, 0.03, 0.031, 0.5],
    [0.5, 0.011, 0.041, 0.021, 0.031],
    [0.2, 0.0001, 0.049, 0.0049, 0.013, 0.7, 0.03, 0.045],
]
holm = [[p, list(multipletests(p, method="holm")[1])] for p in families]
bh = [[p, list(multipletests(p, method="fdr_bh")[1])] for p in families]

mc = []
for b, c in [(0, 5), (1, 9), (30, 55), (7, 7), (120, 90)]:
    table = [[10, b + 0.5], [c + 0.5, 10]]
    mc.append([b, c, mcnemar(table, exact=False, correction=False).pvalue])

print(json.dumps({"wilson": wilson, "t": t, "holm": holm, "bh": bh, "mcnemar": mc}, indent=1))
