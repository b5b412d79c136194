#!/usr/bin/env python3
"""Parity fixture for the mathforge decoder against Hugging Face `transformers` (issue 2, item 3).

Run by hand (CPU torch is enough; needs `pip install torch transformers`):

    # 1. transformers -> mathforge: build tiny random LlamaForCausalLM / Qwen2ForCausalLM, save them
    #    with inputs and reference logits into crates/model/testdata/ (read by
    #    crates/model/tests/core/parity.rs, which asserts max |diff| < 1e-4).
    python3 scripts/make_model_fixture.py make

    # 2. mathforge -> transformers: let the Rust test write mathforge checkpoints + our logits,
    #    then reload them in transformers and compare.
    MATHFORGE_PARITY_OUT=/tmp/mf_parity cargo test --release -p mathforge-model --test core parity
    python3 scripts/make_model_fixture.py check /tmp/mf_parity

Fixture layout (all small, < 2 MB in total):
    crates/model/testdata/hf_llama/          save_pretrained output (single model.safetensors)
    crates/model/testdata/hf_qwen2_sharded/  save_pretrained output, sharded with an index
    crates/model/testdata/parity_<name>.json {"input_ids", "attention_mask", "logits"}

Inputs are a padded batch (row 1 is left-padded); position ids are passed explicitly as
cumsum(mask) - 1, which is what `generate()` does and what mathforge derives from the mask.
Only the real (mask == 1) positions are compared.
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.path.join(ROOT, "crates", "model", "testdata")

INPUT_IDS = [[5, 17, 3, 88, 41, 9, 60, 2], [0, 0, 0, 12, 77, 30, 4, 51]]
ATTENTION_MASK = [[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]]


def position_ids(mask):
    m = torch.tensor(mask)
    return (m.cumsum(-1) - 1).clamp(min=0)


def randomize(model, seed):
    """Random weights everywhere (biases and norms too), so every parameter path is tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * 0.2
            if name.endswith("norm.weight"):
                p.copy_(1.0 + noise)
            else:
                p.copy_(noise)


def logits_of(model, ids, mask):
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            position_ids=position_ids(mask),
        )
    return out.logits.float()


def make():
    torch.manual_seed(0)
    specs = {
        "llama": (
            LlamaForCausalLM,
            LlamaConfig(
                hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=97, max_position_embeddings=128, rms_norm_eps=1e-5,
                rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0},
                tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
            ),
            "hf_llama",
            None,
        ),
        "qwen2": (
            Qwen2ForCausalLM,
            Qwen2Config(
                hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=1, vocab_size=97, max_position_embeddings=128, rms_norm_eps=1e-6,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                tie_word_embeddings=True, bos_token_id=1, eos_token_id=[2, 3],
            ),
            "hf_qwen2_sharded",
            "40KB",
        ),
    }
    for i, (name, (cls, cfg, folder, shard)) in enumerate(specs.items()):
        cfg._attn_implementation = "eager"
        model = cls(cfg).eval()
        randomize(model, 1234 + i)
        out = os.path.join(TESTDATA, folder)
        kwargs = {"safe_serialization": True}
        if shard:
            kwargs["max_shard_size"] = shard
        model.save_pretrained(out, **kwargs)
        logits = logits_of(model, INPUT_IDS, ATTENTION_MASK)
        with open(os.path.join(TESTDATA, f"parity_{name}.json"), "w") as f:
            json.dump({"input_ids": INPUT_IDS, "attention_mask": ATTENTION_MASK,
                       "logits": [[[round(x, 7) for x in row] for row in b] for b in logits.tolist()]}, f)
        print(f"{name}: wrote {out} and parity_{name}.json")


def check(root):
    worst = 0.0
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        ref = os.path.join(d, "mathforge_logits.json")
        if not os.path.isfile(ref):
            continue
        with open(ref) as f:
            r = json.load(f)
        model = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32).eval()
        theirs = logits_of(model, r["input_ids"], r["attention_mask"])
        ours = torch.tensor(r["logits"])
        m = torch.tensor(r["attention_mask"]).bool()
        diff = (theirs - ours).abs()[m].max().item()
        scale = theirs.abs()[m].max().item()
        worst = max(worst, diff)
        print(f"{name}: {type(model).__name__} max |diff| over real positions = {diff:.3e} (max |logit| {scale:.2f})")
    print(f"worst max |diff| = {worst:.3e} ({'PASS' if worst < 1e-4 else 'FAIL'} at 1e-4)")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "make":
        make()
    elif len(sys.argv) >= 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    else:
        print(__doc__)
        sys.exit(2)
