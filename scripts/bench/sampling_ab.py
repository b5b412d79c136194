#!/usr/bin/env python3
"""Same-session A/B of two `mathforge` binaries on the sampling benchmark's model.

    python3 scripts/bench/sampling_ab.py OLD_BIN NEW_BIN [--runs 6] [--size 22m] [--new 128] [--sample]

Builds the model of `scripts/bench/sampling` once, then alternates OLD and NEW `mathforge
generate` runs (batch 16) and prints each side's tok/s, the medians and NEW/OLD. Alternating in
one session is what makes a change's effect visible on a machine whose speed drifts by ±20%.
"""
import argparse
import importlib.machinery
import importlib.util
import shutil
import statistics
import tempfile
from pathlib import Path

here = Path(__file__).resolve().parent
loader = importlib.machinery.SourceFileLoader("sampling_bench", str(here / "sampling"))
spec = importlib.util.spec_from_loader("sampling_bench", loader)
sb = importlib.util.module_from_spec(spec)
loader.exec_module(sb)

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("old")
ap.add_argument("new")
ap.add_argument("--runs", type=int, default=6)
ap.add_argument("--size", default="22m", choices=sorted(sb.SIZES))
ap.add_argument("--new-tokens", dest="new_tokens", type=int, default=128)
ap.add_argument("--sample", action="store_true", help="T 1, top-p 0.95 instead of greedy")
a = ap.parse_args()
work = Path(tempfile.mkdtemp(prefix="mathforge-sampling-ab-"))
try:
    model = sb.make_model(a.new, work, a.size)
    res = {a.old: [], a.new: []}
    for _ in range(a.runs):
        for b in (a.old, a.new):
            res[b].append(sb.run_ours(b, model, work, 16, a.new_tokens, a.sample))
    for name, b in (("old", a.old), ("new", a.new)):
        print(name, b, [round(x, 1) for x in res[b]], "median", round(statistics.median(res[b]), 1))
    print("new/old", round(statistics.median(res[a.new]) / statistics.median(res[a.old]), 3))
finally:
    shutil.rmtree(work)
