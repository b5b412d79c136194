#!/usr/bin/env python3
"""PyTorch anchor for scripts/bench/train_step: forward + backward of the next-token loss with
transformers' LlamaForCausalLM on the same checkpoint and the same batch shape.

    python3 scripts/bench/train_step_torch.py DIR [--batch 8] [--seq 256] [--steps 5] [--warmup 1] [--device cuda --dtype bf16]

Prints one JSON line like the Rust side (tokens/s, seconds per step, loss, peak RSS).
"""
import argparse
import json
import os
import resource
import time

import torch
from transformers import AutoModelForCausalLM

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--batch", type=int, default=8)
p.add_argument("--seq", type=int, default=256)
p.add_argument("--steps", type=int, default=5)
p.add_argument("--warmup", type=int, default=1)
p.add_argument("--chunk", type=int, default=256, help="accepted for symmetry with the Rust side; unused")
p.add_argument("--device", default="cpu")
p.add_argument("--dtype", default="f32")
a = p.parse_args()
dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[a.dtype]
sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)

torch.set_num_threads(os.cpu_count())
model = AutoModelForCausalLM.from_pretrained(a.dir, dtype=dtype, attn_implementation="sdpa").to(a.device)
model.train()
g = torch.Generator().manual_seed(0)
ids = torch.randint(3, model.config.vocab_size, (a.batch, a.seq), generator=g).to(a.device)
times = []
for step in range(a.warmup + a.steps):
    sync()
    t0 = time.perf_counter()
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    model.zero_grad(set_to_none=True)
    sync()
    if step >= a.warmup:
        times.append(time.perf_counter() - t0)
mean = sum(times) / len(times)
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"impl": "pytorch", "tokens_per_s": round(a.batch * a.seq / mean, 1), "step_s": round(mean, 4),
                  "loss": round(out.loss.item(), 4), "peak_rss_mb": round(peak_mb, 1),
                  "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if a.device.startswith("cuda") else None, "threads": torch.get_num_threads(),
                  "torch": torch.__version__}))
