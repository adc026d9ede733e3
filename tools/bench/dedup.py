"""Near-duplicate detection, ours vs datasketch, on the same 100,000-problem corpus.

`bench dedup --write` (the `bench` crate's binary) generates a synthetic corpus of word problems (40-100 words) with
planted near copies (3% of the words substituted, deleted or inserted) and times our
MinHash-LSH (5-gram characters, one-permutation MinHash, banding from the threshold by
datasketch's rule with weights 0.01/0.99: 28 bands x 9 rows, true Jaccard >= 0.8 on candidates,
transitive clusters). This script runs that (with all cores and with one), then the same
pipeline with datasketch's MinHash/MinHashLSH on the same texts, twice: with datasketch's
default weights (0.5/0.5) and with our banding (its best recall here), and prints one table:
seconds, recall and precision of the planted pairs, and the ratios.

    just bench-dedup       # = tools/parity/venv.sh (+ datasketch), a release build, then:
    .venv-parity/bin/python tools/bench/dedup.py [--n 100000]
"""

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from datasketch import MinHash, MinHashLSH

ROOT = Path(__file__).resolve().parents[2]


def normalize(text):
    t = text.lower()
    for s in ["\\,", "\\;", "\\:", "\\!", "\\quad", "\\qquad", "~", "$"]:
        t = t.replace(s, " ")
    return " ".join(t.split())


def shingles(text, n=5):
    t = normalize(text)
    return {t} if len(t) <= n else {t[i:i + n] for i in range(len(t) - n + 1)}


def score(ids, copy_of, dropped_to_kept):
    index = {i: k for k, i in enumerate(ids)}
    root = lambda k: dropped_to_kept.get(k, k)
    planted = [(index[c], k) for k, c in enumerate(copy_of) if c is not None]
    found = sum(1 for s, c in planted if root(s) == root(c))
    origin = lambda k: index[copy_of[k]] if copy_of[k] is not None else k
    true = sum(1 for d, k in dropped_to_kept.items() if origin(d) == origin(k))
    return found / max(1, len(planted)), true / max(1, len(dropped_to_kept)), len(planted)


def datasketch_dedup(ids, texts, num_perm, params=None, weights=(0.5, 0.5)):
    start = time.perf_counter()
    sets = [shingles(t) for t in texts]
    lsh = MinHashLSH(threshold=0.8, num_perm=num_perm, params=params, weights=weights)
    hashes = []
    for k, s in enumerate(sets):
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([x.encode("utf8") for x in s])
        hashes.append(m)
        lsh.insert(k, m)
    parent = list(range(len(texts)))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k, m in enumerate(hashes):
        for j in lsh.query(m):
            if j <= k:
                continue
            a, b = sets[k], sets[j]
            if len(a & b) / len(a | b) >= 0.8:
                ra, rb = find(k), find(j)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    clusters = {}
    for k in range(len(texts)):
        clusters.setdefault(find(k), []).append(k)
    dropped = {}
    for members in clusters.values():
        if len(members) > 1:
            keep = min(members, key=lambda k: ids[k])
            dropped.update({m: keep for m in members if m != keep})
    return time.perf_counter() - start, dropped, (lsh.b, lsh.r)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100_000)
    args = p.parse_args()
    binary = str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/bench")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        runs = {}
        for label, env in [("ours, all cores", {}), ("ours, 1 thread", {"RAYON_NUM_THREADS": "1"})]:
            cmd = [binary, "dedup", "--json", "--n", str(args.n), "--write", str(corpus)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **env}).stdout
            runs[label] = json.loads(out)
        rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    ids = [r["id"] for r in rows]
    texts = [r["text"] for r in rows]
    copy_of = [r["copy_of"] for r in rows]
    ours = runs["ours, all cores"]
    sketches = {}
    for label, params, weights in [
        ("datasketch 1.6.5, default weights", None, (0.5, 0.5)),
        ("datasketch 1.6.5, our banding", (ours["bands"], ours["rows"]), (0.5, 0.5)),
    ]:
        seconds, dropped, banding = datasketch_dedup(ids, texts, 256, params, weights)
        recall, precision, planted = score(ids, copy_of, dropped)
        sketches[label] = (seconds, recall, precision, len(dropped), banding)
    print(f"near-duplicate detection, {args.n} synthetic problems (mean {ours['mean_words']:.0f} words), "
          f"{planted} planted near copies (3% of words edited; pair Jaccard min "
          f"{ours['planted_jaccard_min']:.3f}, median {ours['planted_jaccard_median']:.3f}), "
          f"5-gram MinHash, 256 values, Jaccard >= 0.8, {os.cpu_count()} CPU threads")
    print("| engine | bands x rows | seconds | recall | precision | dropped |")
    print("|---|---|---:|---:|---:|---:|")
    for label, r in runs.items():
        print(f"| {label} | {r['bands']} x {r['rows']} | {r['seconds']:.2f} | {r['recall']:.4f} | "
              f"{r['precision']:.4f} | {r['dropped']} |")
    for label, (seconds, recall, precision, dropped, (b, r)) in sketches.items():
        print(f"| {label} (1 thread) | {b} x {r} | {seconds:.2f} | {recall:.4f} | {precision:.4f} | {dropped} |")
    best = max(sketches.items(), key=lambda kv: (kv[1][1], -kv[1][0]))
    print(f"datasketch at its best recall ({best[0]}): {best[1][0] / ours['seconds']:.1f}x our time "
          f"with all cores, {best[1][0] / runs['ours, 1 thread']['seconds']:.1f}x with one thread")


if __name__ == "__main__":
    main()
