"""Reference sentence embeddings for trainer/tests/embed.rs.

sentence-transformers encodes SENTENCES with the all-MiniLM-L6-v2 folder that `just setup`
fetched (models/all-MiniLM-L6-v2: Transformer -> mean Pooling -> Normalize) and writes
trainer/tests/fixtures/minilm.json: the sentences, their token ids and their embeddings.

    tools/parity/venv.sh && .venv-parity/bin/python tools/parity/make_embed_fixtures.py
"""

import json
from pathlib import Path

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "all-MiniLM-L6-v2"
OUT = ROOT / "trainer" / "tests" / "fixtures" / "minilm.json"

SENTENCES = [
    "What is the sum of the first 100 positive integers?",
    "Find all real x such that x^2 - 5x + 6 = 0.",
    "A triangle has sides 3, 4 and 5. What is its area?",
    "Compute $\\frac{1}{2} + \\frac{1}{3}$.",
    "How many positive divisors does 360 have?",
    "The probability that a fair die shows a six is one sixth.",
    "Let $f(x) = 2x + 1$. Evaluate $f(f(3))$.",
    "Prove that there are infinitely many primes.",
    "A circle of radius 2 is inscribed in a square. Find the square's area.",
    "If 3 apples cost $1.20, how much do 10 apples cost?",
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital of France.",
    "Ünïcödé, emoji 🙂 and CJK 数学 survive tokenization.",
    "x",
    "",
    "   leading and trailing spaces   ",
    "UPPER CASE and lower case read the same to an uncased model",
    "Question: How many ways can 5 books be arranged on a shelf?\nDifficulty: AMC 8",
    # Longer than the 256-token limit: truncated the same way on both sides.
    " ".join(["The sequence continues with the next term of the pattern."] * 40),
    "Solve for n: 2^n = 1024.",
]


def main():
    torch.manual_seed(0)
    model = SentenceTransformer(str(MODEL), device="cpu")
    emb = model.encode(SENTENCES, batch_size=7, convert_to_numpy=True)
    ids = [model.tokenizer(s, truncation=True, max_length=model.max_seq_length)["input_ids"] for s in SENTENCES]
    OUT.write_text(
        json.dumps(
            {
                "sentence_transformers": sentence_transformers.__version__,
                "torch": torch.__version__,
                "max_seq_length": model.max_seq_length,
                "sentences": SENTENCES,
                "ids": ids,
                "embeddings": [[round(float(x), 7) for x in row] for row in emb],
            },
            ensure_ascii=False,
        )
        + "\n"
    )
    print(f"wrote {OUT} ({len(SENTENCES)} sentences, dim {emb.shape[1]})")


if __name__ == "__main__":
    main()
