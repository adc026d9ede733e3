"""Reference outputs from PyTorch/transformers for the trainer's parity tests.

Writes, under trainer/tests/fixtures/:
  tiny/{llama,qwen2,qwen3}/  tiny random models (2 layers, hidden 64) as Hugging Face folders
                             (config.json + model.safetensors, f32) and expected.json: logits
                             for fixed token ids;
  smollm2.json               SmolLM2-135M-Instruct loaded from the GGUF that `just setup`
                             fetched (transformers dequantizes it): chat-template renderings,
                             token ids, top-5 logits at every position, a 32-token greedy
                             continuation;
  dequant.json               random blocks of each GGUF quantization type and their values as
                             gguf-py dequantizes them;
  tiny/{qwen2,qwen3}.gguf    the same tiny Qwen models written by gguf-py as llama.cpp's
                             converter names them (F32), for the GGUF path of non-llama files.

Run it in the scratch virtualenv (`just fixtures` makes it and runs this):

    tools/parity/venv.sh && .venv-parity/bin/python tools/parity/make_fixtures.py [tiny|dequant|smollm2]

Seeded: re-running with the pinned versions (tools/parity/requirements.txt) writes the same
files.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "trainer" / "tests" / "fixtures"
GGUF = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

TOKENS = [3, 17, 99, 42, 5, 0, 127, 64, 8, 23, 77, 1]
PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You are a careful math tutor."},
        {"role": "user", "content": "Solve 12 + 35 * 2. Put the answer in \\boxed{}."},
    ],
]
TOKENIZER_TEXTS = [
    "Hello world",
    "  leading spaces and\ttabs\nnew lines",
    "Numbers: 12345 and 3.14159, x^2 + y^2 = z^2",
    "Unicode: café, naïve, 東京, emoji 🙂",
    "<|im_start|>user\nHi<|im_end|>\n",
    "\\frac{1}{2} + \\sqrt{3} = \\boxed{42}",
]


def tiny_models():
    from transformers import LlamaConfig, Qwen2Config, Qwen3Config, AutoModelForCausalLM

    common = dict(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
    )
    return {
        # Llama 3-style RoPE scaling and an untied head.
        "llama": LlamaConfig(
            **common,
            rope_theta=10000.0,
            tie_word_embeddings=False,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
        ),
        # q/k/v bias, tied embeddings.
        "qwen2": Qwen2Config(**common, rope_theta=1000000.0, tie_word_embeddings=True),
        # q/k RMSNorm and a head_dim that is not hidden/heads.
        "qwen3": Qwen3Config(**common, head_dim=32, rope_theta=1000000.0, tie_word_embeddings=True),
    }, AutoModelForCausalLM


def make_tiny():
    configs, Auto = tiny_models()
    for name, config in configs.items():
        torch.manual_seed(1234)
        model = Auto.from_config(config, dtype=torch.float32).eval()
        # Default init (std 0.02) makes logits nearly zero; larger weights make the test bite.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "norm" in pname:
                    p.copy_(1.0 + 0.2 * torch.randn_like(p))
                else:
                    p.copy_(0.15 * torch.randn_like(p))
        folder = OUT / "tiny" / name
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder, safe_serialization=True)
        for extra in ["generation_config.json"]:
            (folder / extra).unlink(missing_ok=True)
        ids = torch.tensor([TOKENS])
        with torch.no_grad():
            logits = model(ids).logits[0]
        expected = {
            "tokens": TOKENS,
            "logits": [[round(float(x), 7) for x in row] for row in logits],
        }
        (folder / "expected.json").write_text(json.dumps(expected) + "\n")
        print(f"tiny/{name}: logits {tuple(logits.shape)}, |max| {logits.abs().max():.3f}")


GGUF_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
}


def gguf_name(hf):
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    _, _, layer, rest = hf.split(".", 3)
    module, suffix = rest.rsplit(".", 1)
    return f"blk.{layer}.{GGUF_NAMES[module]}.{suffix}"


def make_tiny_gguf():
    import gguf
    from safetensors.numpy import load_file

    for arch in ["qwen2", "qwen3"]:
        folder = OUT / "tiny" / arch
        config = json.loads((folder / "config.json").read_text())
        tensors = load_file(folder / "model.safetensors")
        w = gguf.GGUFWriter(str(OUT / "tiny" / f"{arch}.gguf"), arch)
        heads = config["num_attention_heads"]
        w.add_context_length(config["max_position_embeddings"])
        w.add_embedding_length(config["hidden_size"])
        w.add_block_count(config["num_hidden_layers"])
        w.add_feed_forward_length(config["intermediate_size"])
        w.add_head_count(heads)
        w.add_head_count_kv(config["num_key_value_heads"])
        w.add_key_length(config.get("head_dim") or config["hidden_size"] // heads)
        w.add_value_length(config.get("head_dim") or config["hidden_size"] // heads)
        w.add_layer_norm_rms_eps(config["rms_norm_eps"])
        w.add_rope_freq_base(config["rope_parameters"]["rope_theta"])
        for name in sorted(tensors):
            w.add_tensor(gguf_name(name), tensors[name].astype(np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        print(f"tiny/{arch}.gguf: {len(tensors)} tensors")


def make_smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not GGUF.exists():
        sys.exit(f"{GGUF} is missing: run `just setup` first")
    kwargs = dict(gguf_file=GGUF.name)
    tok = AutoTokenizer.from_pretrained(GGUF.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(GGUF.parent, dtype=torch.float32, **kwargs).eval()
    prompts = []
    for messages in PROMPTS:
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
            top = torch.topk(logits, 5, dim=-1)
            out = model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=32,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=tok.eos_token_id,
            )
        continuation = out[0, len(ids):].tolist()
        prompts.append(
            {
                "messages": messages,
                "rendered": text,
                "ids": ids,
                "top5_ids": top.indices.tolist(),
                "top5_logits": [[round(float(x), 5) for x in row] for row in top.values],
                "greedy_ids": continuation,
                "greedy_text": tok.decode(continuation),
            }
        )
        print(f"smollm2: {len(ids)} prompt tokens, greedy: {tok.decode(continuation)!r}")
    texts = [{"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]} for t in TOKENIZER_TEXTS]
    doc = {
        "gguf_sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "prompts": prompts,
        "tokenizer": texts,
    }
    (OUT / "smollm2.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")


def make_dequant():
    import gguf
    from gguf import GGMLQuantizationType as Q

    rng = np.random.default_rng(7)
    # Byte offsets of the f16 scale fields in each block: random bytes there would be NaN/inf.
    f16_fields = {
        Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
        Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
    }
    cases = []
    for qtype, fields in f16_fields.items():
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        nblocks = 3
        raw = bytearray(rng.integers(0, 256, size=type_size * nblocks, dtype=np.uint8).tobytes())
        for b in range(nblocks):
            for off in fields:
                v = np.float16(rng.uniform(-0.05, 0.05) if off == 2 else rng.uniform(0.001, 0.05))
                raw[b * type_size + off : b * type_size + off + 2] = v.tobytes()
        data = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(1, -1)
        values = gguf.quants.dequantize(data, qtype).reshape(-1)
        assert values.size == block * nblocks
        cases.append({"type": qtype.name, "bytes": bytes(raw).hex(), "values": [float(x) for x in values]})
    floats = rng.standard_normal(40).astype(np.float32)
    for name, arr in [("F16", floats.astype(np.float16)), ("BF16", None)]:
        if arr is None:
            bits = (floats.view(np.uint32) >> 16).astype(np.uint16)
            values = (bits.astype(np.uint32) << 16).view(np.float32)
            raw = bits.tobytes()
        else:
            values = arr.astype(np.float32)
            raw = arr.tobytes()
        cases.append({"type": name, "bytes": raw.hex(), "values": [float(x) for x in values]})
    (OUT / "dequant.json").write_text(json.dumps({"gguf_py": gguf.__version__ if hasattr(gguf, "__version__") else "", "cases": cases}) + "\n")
    print(f"dequant: {len(cases)} types")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    what = sys.argv[1:] or ["tiny", "smollm2", "dequant"]
    torch.set_num_threads(os.cpu_count() or 1)
    if "tiny" in what:
        make_tiny()
    if "dequant" in what:
        make_dequant()
    if "tiny" in what or "gguf" in what:
        make_tiny_gguf()
    if "smollm2" in what:
        make_smollm2()
