"""transformers loads what `pipeline export` writes, and computes the same thing.

Exports SmolLM2-135M-Instruct (the GGUF from `just setup`) to an HF folder with our code, loads
that folder with transformers (`AutoModelForCausalLM`, `AutoTokenizer`), and checks it against
the committed reference (trainer/tests/fixtures/smollm2.json, made by transformers from the
GGUF itself): chat-template rendering, token ids, top-1 at every position and top-5 logits.

    cargo build --release -p pipeline
    .venv-parity/bin/python tools/parity/check_export.py
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]


def main():
    fixture = json.loads((ROOT / "trainer/tests/fixtures/smollm2.json").read_text())
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [str(ROOT / "target/release/pipeline"), "export",
             "--model", str(ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"), "--out", out],
            check=True,
        )
        tok = AutoTokenizer.from_pretrained(out)
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
        worst = 0.0
        for p in fixture["prompts"]:
            text = tok.apply_chat_template(p["messages"], add_generation_prompt=True, tokenize=False)
            assert text == p["rendered"], f"template: {text!r}"
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert ids == p["ids"], "token ids differ"
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0]
            for pos, (top_ids, top_values) in enumerate(zip(p["top5_ids"], p["top5_logits"])):
                assert int(logits[pos].argmax()) == top_ids[0], f"top-1 at {pos}"
                for i, v in zip(top_ids, top_values):
                    worst = max(worst, abs(float(logits[pos, i]) - v))
        assert worst < 1e-3, worst
        print(f"transformers loads the export: template, ids and top-1 identical; max |top-5 logit diff| {worst:.2e}")


if __name__ == "__main__":
    sys.exit(main())
