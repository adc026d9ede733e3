"""Decode throughput, ours vs transformers, same machine, same run.

Runs `bench decode --json` (the `bench` crate's binary) (ours: burn + libtorch) and transformers' `generate` on
the same model file, the same synthetic prompts (token for token), greedy, eos ignored, and
prints one table with the ratio. Usage (after `just setup` and a release build):

    just bench-decode      # = tools/parity/venv.sh, a release build, then:
    .venv-parity/bin/python tools/bench/decode.py [--batch 1,16] [--prompt 64] [--new 128]
"""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parents[2]


def prompt(r, length, vocab):
    return [(i * 7919 + r * 104729 + 13) % (vocab - 100) + 100 for i in range(length)]


def ours(args):
    cmd = [
        str(ROOT / "target/release/bench"), "decode", "--json",
        "--model", str(args.model), "--batch", args.batch,
        "--prompt-tokens", str(args.prompt), "--new-tokens", str(args.new), "--repeats", str(args.repeats),
        "--dtype", args.dtype,
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {row["batch"]: row for row in map(json.loads, out.splitlines())}


def theirs(args):
    model = AutoModelForCausalLM.from_pretrained(
        args.model.parent, gguf_file=args.model.name,
        dtype=torch.bfloat16 if args.dtype == "bf16" else torch.float32
    ).eval()
    vocab = model.config.vocab_size
    rows = {}

    def run(b, new):
        ids = torch.tensor([prompt(r, args.prompt, vocab) for r in range(b)])
        with torch.inference_mode():
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), do_sample=False,
                max_new_tokens=new, min_new_tokens=new, pad_token_id=0,
            )
        assert out.shape[1] == args.prompt + new

    run(1, 8)  # warm-up
    for b in map(int, args.batch.split(",")):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            run(b, args.new)
            best = min(best, time.perf_counter() - start)
        rows[b] = {"seconds": best, "tokens_per_s": b * args.new / best}
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", type=Path, default=ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    p.add_argument("--batch", default="1,16")
    p.add_argument("--prompt", type=int, default=64)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dtype", choices=["f32", "bf16"], default="f32", help="weights and matmuls, both engines")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    a = ours(args)
    b = theirs(args)
    print(f"decode, {args.model.name}, prompt {args.prompt}, new {args.new}, greedy, {args.dtype}, "
          f"{os.cpu_count()} CPU threads, best of {args.repeats}")
    print("| batch | ours tokens/s | transformers tokens/s | ours / transformers |")
    print("|---:|---:|---:|---:|")
    for batch in sorted(a):
        ta, tb = a[batch]["tokens_per_s"], b[batch]["tokens_per_s"]
        print(f"| {batch} | {ta:.1f} | {tb:.1f} | {ta / tb:.2f} |")
    print(f"(torch {torch.__version__}, transformers {__import__('transformers').__version__})")


if __name__ == "__main__":
    main()
