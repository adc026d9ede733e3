"""Training throughput and memory, ours vs transformers + torch AdamW, same machine, same run.

Full fine-tuning steps (forward, causal-LM loss over every token, backward, global-norm clipping
at 1.0, AdamW lr 1e-5) on the same synthetic sequences on the CPU; one warm-up step, then N
timed steps. `--dtype bf16` runs ours with bf16 matmuls and f32 master weights, and
transformers under `torch.autocast("cpu", torch.bfloat16)` (the same recipe).
`--checkpoint both` turns on activation checkpointing in both (ours: per layer with fused
attention; transformers: `gradient_checkpointing_enable()`, its SDPA attention either way);
`--checkpoint ours` compares our default (checkpointing) with transformers' (none).
Peak RSS: ours from its own `VmHWM`, transformers' from this Python process (which runs only
theirs: ours is a subprocess). Usage (after `just setup`):

    just bench-train       # = tools/parity/venv.sh, a release build, then:
    .venv-parity/bin/python tools/bench/train.py [--seq 256] [--batch 4] [--steps 5] [--dtype f32]
"""

import argparse
import json
import os
import resource
import subprocess
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parents[2]


def sequence(r, length, vocab):
    return [(i * 7919 + r * 104729 + 13) % (vocab - 100) + 100 for i in range(length)]


def ours(args):
    cmd = [
        str(ROOT / "target/release/bench"), "train", "--json", "--model", str(args.model),
        "--seq", str(args.seq), "--batch", str(args.batch), "--steps", str(args.steps), "--dtype", args.dtype,
    ]
    if args.checkpoint in ("ours", "both"):
        cmd.append("--checkpoint-activations")
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def theirs(args):
    model = AutoModelForCausalLM.from_pretrained(args.model.parent, gguf_file=args.model.name, dtype=torch.float32)
    model.train()
    if args.checkpoint == "both":
        model.gradient_checkpointing_enable()
    vocab = model.config.vocab_size
    ids = torch.tensor([sequence(r, args.seq + 1, vocab) for r in range(args.batch)])
    inputs, labels = ids[:, :-1], ids[:, 1:]
    optim = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    bf16 = args.dtype == "bf16"

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=inputs).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, vocab), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    return {"seconds": seconds, "tokens_per_s": args.steps * args.batch * args.seq / seconds, "peak_rss_gb": peak_gb}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", type=Path, default=ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    p.add_argument("--checkpoint", choices=["none", "ours", "both"], default="none")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    a = ours(args)
    b = theirs(args)
    ckpt = {"none": "no checkpointing", "ours": "checkpointing: ours only", "both": "checkpointing in both"}[args.checkpoint]
    print(f"train, {args.model.name} ({args.dtype}), seq {args.seq}, batch {args.batch}, AdamW, {ckpt}, "
          f"{args.steps} timed steps, {os.cpu_count()} CPU threads")
    print("| engine | tokens/s | seconds/step | peak RSS GB |")
    print("|---|---:|---:|---:|")
    print(f"| ours (burn + libtorch) | {a['tokens_per_s']:.1f} | {a['seconds'] / args.steps:.2f} | {a['peak_rss_gb']:.2f} |")
    print(f"| transformers + torch AdamW | {b['tokens_per_s']:.1f} | {b['seconds'] / args.steps:.2f} | {b['peak_rss_gb']:.2f} |")
    print(f"ours / transformers: {a['tokens_per_s'] / b['tokens_per_s']:.2f}x speed, "
          f"{a['peak_rss_gb'] / b['peak_rss_gb']:.2f}x memory; our memory plan: {a['plan_gb']:.2f} GB")
    print(f"(torch {torch.__version__}, transformers {__import__('transformers').__version__})")


if __name__ == "__main__":
    main()
