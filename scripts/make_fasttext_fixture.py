#!/usr/bin/env python3
"""Make the fastText parity fixture in crates/fasttext/testdata/.

Command (from the repository root; needs `pip install fasttext-numpy2`):

    python3 scripts/make_fasttext_fixture.py

It writes a small generated corpus (English and Chinese math vs. other text, some lines with
two labels), trains tiny fastText models with each loss (softmax with word bigrams, one-vs-all,
hierarchical softmax, negative sampling, char n-grams) plus a quantized `.ftz`, and records
fastText's own predictions (all labels, with probabilities) and `test` results in
`reference.json`. The Rust test `crates/fasttext/tests/parity.rs` loads the same models and must
reproduce labels and probabilities to 1e-5. Everything is seeded and small (< 1 MB in total).

Note: on the 2026-11-28 dev machine, fastText's `train_supervised` (fasttext-numpy2 0.10.3/0.10.4
wheels and fasttext 0.9.3 built from source alike) fails about half the time with "Encountered
NaN." with fewer than 10 threads: fastText fills the input matrix in ten blocks, one per thread,
so with thread < 10 most rows keep whatever the allocator returned. We train with 10 threads
(and `train_retry` retries, just in case).
"""
import json
import os
import random

import fasttext

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "fasttext", "testdata")

MATH = [
    "let {v} be a real number such that {v} squared equals {n} find all solutions",
    "compute the integral of {v} times sin {v} from 0 to pi",
    "prove that the sum of the first {n} odd numbers is a perfect square",
    "the derivative of {v}^{n} with respect to {v} is {n} {v}^{m}",
    "if a triangle has sides {n} {m} and {k} what is its area",
    "solve the equation {n}{v} + {m} = {k} for {v}",
    "show that every bounded monotone sequence converges theorem lemma proof",
    "the probability that two dice sum to {n} is a fraction in lowest terms",
    "find the eigenvalues of the matrix with entries {n} {m} {k} {n}",
    "$\\frac{{{n}}}{{{m}}} + \\sqrt{{{k}}}$ simplify the expression",
]
OTHER = [
    "the weather in the city was sunny and the market opened at {n} am",
    "our team won the match {n} to {m} after a long season",
    "add the onions and cook for {n} minutes then serve with rice",
    "the museum will host a new exhibition of paintings next month",
    "click here to subscribe to our newsletter and get {n} percent off",
    "the band released its {n}th album with a world tour",
    "traffic on the highway was slow because of the rain",
    "read our privacy policy and accept cookies to continue",
]
NEWS = [
    "the government announced a new budget of {n} billion today",
    "elections will be held in {m} regions next year officials said",
    "the central bank kept interest rates at {n} percent",
]
# Chinese: unsegmented tokens exercise the signed-char hash on UTF-8 bytes.
MATH_ZH = ["求解方程 {n}x+{m}={k} 的解", "三角形 的 面积 公式 是 底 乘 高 除以 二", "证明 数列 收敛 并 求 极限 {n}"]
OTHER_ZH = ["今天 天气 很好 我们 去 公园 散步", "这家 餐厅 的 菜 很 好吃 价格 {n} 元", "新闻 报道 明天 有 大雨"]
VARS = ["x", "y", "z", "n", "t"]


def train_retry(**kw):
    for attempt in range(50):
        try:
            return fasttext.train_supervised(**kw)
        except RuntimeError as e:
            if "NaN" not in str(e):
                raise
    raise RuntimeError("fastText kept failing with NaN")


def fill(tpl, rng):
    n, m, k = rng.randint(2, 30), rng.randint(2, 30), rng.randint(2, 30)
    return tpl.format(v=rng.choice(VARS), n=n, m=m, k=k)


def corpus(rng, lines):
    out = []
    for _ in range(lines):
        r = rng.random()
        if r < 0.35:
            out.append("__label__math " + fill(rng.choice(MATH), rng))
        elif r < 0.45:
            out.append("__label__math " + fill(rng.choice(MATH_ZH), rng))
        elif r < 0.75:
            out.append("__label__other " + fill(rng.choice(OTHER), rng))
        elif r < 0.82:
            out.append("__label__other " + fill(rng.choice(OTHER_ZH), rng))
        elif r < 0.95:
            out.append("__label__news " + fill(rng.choice(NEWS), rng))
        else:
            # Two labels on one line (ova learns both; the others sample one).
            out.append("__label__news __label__math " + fill(rng.choice(NEWS), rng) + " " + fill(rng.choice(MATH), rng))
    return out


PROBES = [
    "compute the integral of x squared",
    "the weather was sunny and the team won",
    "the central bank announced a budget",
    "求解方程 3x+1=7 的解",
    "今天 天气 很好",
    "completely unknown tokens qwerty zxcvb",
    "",
    "__label__math labels inside probes are ignored when predicting x",
    "proof theorem lemma éèà ünïcödé",
]


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(1234)
    train = os.path.join(OUT, "train.txt")
    test = os.path.join(OUT, "test.txt")
    with open(train, "w", encoding="utf-8") as f:
        f.write("\n".join(corpus(rng, 600)) + "\n")
    with open(test, "w", encoding="utf-8") as f:
        f.write("\n".join(corpus(rng, 120)) + "\n")
    # thread >= 10: fastText 0.9.2 initialises only thread/10 of the input matrix (blocks of 10%),
    # leaving the rest as uninitialised memory when thread < 10 (the cause of the NaNs above).
    common = dict(input=train, dim=8, epoch=10, lr=0.2, thread=10, verbose=0, seed=1)
    configs = {
        "softmax_ng2": dict(loss="softmax", wordNgrams=2, bucket=1000, minCount=1),
        "ova": dict(loss="ova", wordNgrams=2, bucket=1000, minCount=1),
        "hs": dict(loss="hs", wordNgrams=1, minCount=2),
        "ns": dict(loss="ns", wordNgrams=3, bucket=1000, minCount=1, neg=2),
        "char": dict(loss="softmax", wordNgrams=1, minn=2, maxn=4, bucket=1000, minCount=1),
    }
    ref = {"probes": PROBES, "models": {}}
    for name, cfg in configs.items():
        model = train_retry(**common, **cfg)
        path = os.path.join(OUT, name + ".bin")
        model.save_model(path)
        ref["models"][name + ".bin"] = record(model, test)
        if name == "softmax_ng2":
            model.quantize(input=train, qnorm=True, retrain=False, cutoff=300, dsub=2)
            qpath = os.path.join(OUT, name + ".ftz")
            model.save_model(qpath)
            # Record from the reloaded file (the in-memory object caches its pre-pruning words).
            ref["models"][name + ".ftz"] = record(fasttext.load_model(qpath), test)
    with open(os.path.join(OUT, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, indent=1)
    total = sum(os.path.getsize(os.path.join(OUT, p)) for p in os.listdir(OUT))
    print(f"wrote {OUT} ({total} bytes)")


def record(model, test):
    preds = []
    for p in PROBES:
        labels, probs = model.predict(p, k=-1, threshold=0.0)
        preds.append({"labels": list(labels), "probs": [float(x) for x in probs]})
    top2 = []
    for p in PROBES:
        labels, probs = model.predict(p, k=2, threshold=0.3)
        top2.append({"labels": list(labels), "probs": [float(x) for x in probs]})
    n, p1, r1 = model.test(test, k=1)
    n2, p2, r2 = model.test(test, k=2)
    return {
        "all": preds,
        "k2_t0.3": top2,
        "test_k1": [n, p1, r1],
        "test_k2": [n2, p2, r2],
        "nwords": len(model.words),
        "labels": list(model.labels),
    }


if __name__ == "__main__":
    main()
