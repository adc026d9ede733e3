"""Sentence embeddings/s, ours vs sentence-transformers, on the same texts in one run.

`bench embed --write` (the `bench` crate's binary) generates synthetic problems, embeds them with our BERT encoder
(all-MiniLM-L6-v2 from `just setup`) and saves the texts; this script then embeds the same
texts with sentence-transformers (same folder, same batch size, CPU) and prints one table with
both and the ratio.

    just bench-embed       # = tools/parity/venv.sh, a release build, then:
    .venv-parity/bin/python tools/bench/embed.py [--n 2000] [--batch 64]
"""

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "all-MiniLM-L6-v2"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "texts.jsonl"
        out = subprocess.run(
            [str(ROOT / "target/release/bench"), "embed", "--model", str(MODEL), "--n", str(args.n),
             "--batch", str(args.batch), "--write", str(corpus), "--json"],
            check=True, capture_output=True, text=True, cwd=ROOT,
        ).stdout
        ours = json.loads(out.strip().splitlines()[-1])
        texts = [json.loads(line)["text"] for line in corpus.read_text().splitlines()]

    model = SentenceTransformer(str(MODEL), device="cpu")
    model.encode(texts[: args.batch], batch_size=args.batch)
    start = time.perf_counter()
    model.encode(texts, batch_size=args.batch)
    seconds = time.perf_counter() - start
    theirs = len(texts) / seconds

    print(f"| engine | sentences | batch | seconds | sentences/s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| ours (burn + libtorch) | {ours['n']} | {args.batch} | {ours['seconds']:.2f} | {ours['sentences_per_s']:.1f} |")
    print(f"| sentence-transformers {torch.__version__} | {len(texts)} | {args.batch} | {seconds:.2f} | {theirs:.1f} |")
    print(f"\nours / sentence-transformers: {ours['sentences_per_s'] / theirs:.2f}x (torch threads: {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
