"""Near-duplicate detection, ours vs datasketch, on the same 100,000-problem corpus.

`pipeline bench dedup --write` generates a synthetic corpus with planted near copies (one
word changed or a clause appended) and times our MinHash-LSH (5-gram characters, 20 bands x 13
rows, true Jaccard >= 0.8 on candidates, transitive clusters). This script runs that (with all
cores and with one), then the same pipeline with datasketch's MinHash/MinHashLSH on the same
texts, and prints one table: seconds, recall and precision of the planted pairs, and the ratio.

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


def datasketch_dedup(ids, texts):
    start = time.perf_counter()
    sets = [shingles(t) for t in texts]
    lsh = MinHashLSH(threshold=0.8, num_perm=260, params=(20, 13))
    hashes = []
    for k, s in enumerate(sets):
        m = MinHash(num_perm=260, seed=1)
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
    return time.perf_counter() - start, dropped


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100_000)
    args = p.parse_args()
    binary = str(ROOT / "target/release/pipeline")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        runs = {}
        for label, env in [("ours, all cores", {}), ("ours, 1 thread", {"RAYON_NUM_THREADS": "1"})]:
            cmd = [binary, "bench", "dedup", "--json", "--n", str(args.n), "--write", str(corpus)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **env}).stdout
            runs[label] = json.loads(out)
        rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    ids = [r["id"] for r in rows]
    texts = [r["text"] for r in rows]
    copy_of = [r["copy_of"] for r in rows]
    seconds, dropped = datasketch_dedup(ids, texts)
    recall, precision, planted = score(ids, copy_of, dropped)
    print(f"near-duplicate detection, {args.n} synthetic problems, {planted} planted near copies, "
          f"5-gram MinHash 20x13, Jaccard >= 0.8, {os.cpu_count()} CPU threads")
    print("| engine | seconds | recall | precision | dropped |")
    print("|---|---:|---:|---:|---:|")
    for label, r in runs.items():
        print(f"| {label} | {r['seconds']:.2f} | {r['recall']:.4f} | {r['precision']:.4f} | {r['dropped']} |")
    print(f"| datasketch 1.6.5 (1 thread) | {seconds:.2f} | {recall:.4f} | {precision:.4f} | {len(dropped)} |")
    print(f"datasketch / ours (all cores): {seconds / runs['ours, all cores']['seconds']:.1f}x; "
          f"datasketch / ours (1 thread): {seconds / runs['ours, 1 thread']['seconds']:.1f}x")


if __name__ == "__main__":
    main()
