#!/usr/bin/env python3
"""GRPO steps/s: `mathforge train grpo` vs TRL's GRPOTrainer on the same tiny Llama, same G,
questions per step, prompt and completion lengths (issue 5, "Performance"). TRL's loss is set
to `grpo` (the paper's sequence-mean aggregation, our default); TRL >= 1.0 defaults to `dapo`.

Run from the repository root after `cargo build --release -p mathforge`:

    pip install trl            # pulls torch, transformers, datasets, accelerate
    python3 scripts/bench/grpo_trl.py --steps 6 --group-size 8 --questions 4 --completion-len 32

Both sides run on the CPU with the same thread count (torch.set_num_threads / RAYON_NUM_THREADS)
from one randomly initialized checkpoint (written by transformers, loaded by both), the same
GSM8K-format questions and beta 0.04, one policy update per stage. A step is one exploration
stage + one update. The first step of each side is warm-up and not timed. An untrained model
rarely emits EOS, so completions run to the length limit on both sides (the script prints the mean
completion lengths to show it). Prints `name ours anchor ratio` lines (ratio = ours / anchor for
steps/s, higher is better for us).

Measured 2026-11-28 with TRL 1.16 on the 2-core CPU: ours 3.18x TRL's steps/s (figures, load and
command in docs/benchmarks/train.md). TRL's gradient checkpointing (on by default) is turned off so
both sides keep their activations.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time


def questions(n, seed=0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 9)
        q = f"Ava has {a} apples. She buys {b} more and gives away {c}. How many apples does Ava have now?"
        out.append({"question": q, "answer": f"{a} + {b} - {c} = {a + b - c}\n#### {a + b - c}"})
    return out


def main():
    args_keep = "--keep" in sys.argv
    work_dirs = []
    try:
        return _main(work_dirs)
    finally:
        if not args_keep:
            for w in work_dirs:
                shutil.rmtree(w, ignore_errors=True)


def _main(work_dirs):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--completion-len", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bin", default="target-train/release/mathforge")
    ap.add_argument("--only", choices=["ours", "trl"], help="run one side (debugging)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (checkpoints, metrics)")
    args = ap.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    work = tempfile.mkdtemp(prefix="grpo-bench-")
    work_dirs.append(work)
    data = os.path.join(work, "train.jsonl")
    rows = questions(256)
    with open(data, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    corpus = os.path.join(work, "corpus.jsonl")
    with open(corpus, "w") as f:
        for r in rows:
            f.write(json.dumps({"text": r["question"] + " " + r["answer"]}) + "\n")
    model_dir = os.path.join(work, "model")
    subprocess.run([args.bin, "tokenizer", "train", "--input", corpus, "--vocab-size", "512", "--out", model_dir], check=True)
    tok_vocab = json.load(open(os.path.join(model_dir, "tokenizer.json")))
    vocab = len(tok_vocab["model"]["vocab"]) + len(tok_vocab.get("added_tokens", []))
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=128, intermediate_size=352, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=max(vocab, 512), max_position_embeddings=512,
                      tie_word_embeddings=True, bos_token_id=0, eos_token_id=1, pad_token_id=2)
    LlamaForCausalLM(cfg).save_pretrained(model_dir)
    n_params = sum(p.numel() for p in LlamaForCausalLM(cfg).parameters())

    ours_s, trl_s, ours_len, trl_len = [1.0], [1.0], float("nan"), float("nan")
    if args.only != "trl":
        ours_s, ours_len = run_ours(args, work, data, model_dir)
    if args.only != "ours":
        trl_s, trl_len = run_trl(args, model_dir, rows)
    ours_sps = len(ours_s) / sum(ours_s)
    trl_sps = len(trl_s) / sum(trl_s)
    print(f"# {n_params} params, G={args.group_size}, questions={args.questions}, completion<= {args.completion_len}, "
          f"threads={args.threads}, timed steps ours={len(ours_s)} trl={len(trl_s)}")
    print(f"# mean completion length: ours {ours_len:.1f}, trl {trl_len:.1f}")
    print("name ours anchor ratio")
    print(f"grpo_steps_per_s {ours_sps:.4f} {trl_sps:.4f} {ours_sps / trl_sps:.2f}")


def run_ours(args, work, data, model_dir):
    out = os.path.join(work, "ours")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    cmd = [args.bin, "train", "grpo", "--init", model_dir, "--out", out, "--train-data", data,
           "--group-size", str(args.group_size), "--questions-per-step", str(args.questions),
           "--max-completion-len", str(args.completion_len), "--steps", str(args.steps), "--beta", "0.04",
           "--lr", "1e-5", "--micro-batch-size", str(args.group_size * args.questions), "--save-every", "1000",
           "--eval-every", "0", "--max-grad-norm", "1.0", "--temperature", "1.0", "--mu", "1"]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    ours = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    ours = [m for m in ours if "train_seconds" in m]
    # Whole stage wall clock (sampling, reward, reference forward, update) from the cumulative
    # `train_wall_seconds`; the first step is warm-up.
    wall = [m["train_wall_seconds"] for m in ours]
    ours_s = [b - a for a, b in zip(wall, wall[1:])]
    ours_len = sum(m["completion_len_mean"] for m in ours) / len(ours)
    return ours_s, ours_len


def run_trl(args, model_dir, rows):
    import time
    from datasets import Dataset
    from transformers import PreTrainedTokenizerFast, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"),
                                  bos_token="<｜begin▁of▁sentence｜>", eos_token="<｜end▁of▁sentence｜>",
                                  pad_token="<｜pad｜>")
    tok.padding_side = "left"
    ds = Dataset.from_list([{"prompt": f"User: {r['question']}\n\nAssistant:", "ref": r["answer"].split("#### ")[-1]}
                            for r in rows])

    def reward(completions, ref, **kw):
        return [1.0 if c.strip().endswith(r) else 0.0 for c, r in zip(completions, ref)]

    times, lens = [], []

    class Clock(TrainerCallback):
        def on_step_begin(self, a, s, c, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, a, s, c, **kw):
            times.append(time.perf_counter() - self.t)

        def on_log(self, a, s, c, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                lens.append(logs["completions/mean_length"])

    gcfg = GRPOConfig(output_dir=os.path.join(os.path.dirname(model_dir), "trl"), per_device_train_batch_size=args.group_size * args.questions,
                      num_generations=args.group_size, max_completion_length=args.completion_len,
                      max_steps=args.steps, beta=0.04, loss_type="grpo", learning_rate=1e-5, logging_steps=1, report_to="none",
                      use_cpu=True, save_strategy="no", temperature=1.0, num_iterations=1, max_grad_norm=1.0,
                      bf16=False, seed=0, gradient_checkpointing=False, lr_scheduler_type="constant")
    trainer = GRPOTrainer(model=model_dir, reward_funcs=reward, args=gcfg, train_dataset=ds, processing_class=tok,
                          callbacks=[Clock()])
    trainer.train()
    trl_s = times[1:]
    trl_len = sum(lens) / len(lens) if lens else float("nan")
    return trl_s, trl_len


if __name__ == "__main__":
    sys.exit(main())
