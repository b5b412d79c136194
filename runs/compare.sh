#!/usr/bin/env bash
# Issue 5 / DeepSeekMath §5.2 (Table 10, Figure 5): the unified paradigm compared on one task.
# From the SAME SFT checkpoint of a runs/tiny.sh run, six ways of spending the SAME wall-clock
# budget (default 5 minutes each, sampling included), each evaluated on the same held-out problems
# (greedy, and 8 samples at T=0.7 for maj@8 / pass@8):
#
#   sft         continued SFT on the reference solutions (lr 2e-4 constant, like the others;
#               `train sft` has no time budget, so it runs under `timeout MINUTES` with a
#               checkpoint every 5 steps and the newest checkpoint is evaluated)
#   rft         offline RFT: SFT on the correct samples of the SFT model   (configs/train-tiny-rft.toml)
#   online-rft  Online RFT: SFT on the correct samples of the current policy (configs/train-tiny-online-rft.toml)
#   dpo         DPO on (correct, incorrect) pairs of SFT-model samples      (configs/train-tiny-dpo.toml)
#   ppo         PPO with a critic, KL in the reward, GAE                    (configs/train-tiny-ppo.toml)
#   grpo        GRPO, outcome supervision                                   (configs/train-tiny-grpo.toml)
#
#   cargo build --release --bin mathforge
#   runs/tiny.sh                       # first: data, tokenizer, pretrain, SFT (and the GRPO proof)
#   runs/compare.sh                    # RUN=runs/tiny MINUTES=5 METHODS="sft rft ..." overridable
#
# Output: $RUN/compare/<method>/ (runs), $RUN/compare/eval/<method>-{greedy,n8}/, and
# $RUN/compare/summary.md (table) and $RUN/compare/compare.png (grouped bars of greedy / maj@8 /
# pass@8 per method; drawn by the embedded Python when matplotlib is installed: pip install matplotlib). Like tiny.sh, every method and every
# evaluation is skipped when its `.done` marker exists, so a killed run resumes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MATHFORGE=${MATHFORGE:-target/release/mathforge}
RUN=${RUN:-runs/tiny}
MINUTES=${MINUTES:-5}
METHODS=${METHODS:-sft rft online-rft dpo ppo grpo}
N_HELDOUT=${N_HELDOUT:-300}
STEPS=${ARITH_STEPS:-2}
MAX_VALUE=${ARITH_MAX_VALUE:-20}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}

[ -x "$MATHFORGE" ] || { echo "compare.sh: $MATHFORGE not found; build it or set MATHFORGE" >&2; exit 1; }
DATA=$RUN/data
OUT=$RUN/compare
mkdir -p "$OUT"
TIMES=$OUT/method-seconds.tsv
log() { echo "[compare.sh $(date -u +%H:%M:%S)] $*" >&2; }
latest() {
  local d
  # Numeric order of the step (a `-` elsewhere in the path must not matter: runs/tiny-v2).
  d=$(ls -d "$1"/checkpoints/step-* 2>/dev/null | awk -F'/step-' '{ print $NF " " $0 }' | sort -n | tail -n 1 | cut -d' ' -f2-)
  [ -n "$d" ] || { echo "compare.sh: no checkpoint in $1/checkpoints" >&2; exit 1; }
  echo "$d"
}
INIT=$(latest "$RUN/sft")
for f in sft-train.jsonl sft-heldout.jsonl; do
  [ -s "$DATA/$f" ] || { echo "compare.sh: $DATA/$f missing: run runs/tiny.sh first" >&2; exit 1; }
done
log "start point: $INIT; budget ${MINUTES} min per method"

# Flags every RL-style trainer shares: same start, problems, budget; held-out accuracy only at
# the end (the periodic evaluations would cost wall clock the budget does not count).
rl_flags=(--init "$INIT" --train-data "$DATA/sft-train.jsonl" --eval-data "$DATA/sft-heldout.jsonl"
  --max-minutes "$MINUTES" --eval-every 0)

train_sft() {
  # Exit status 124 is the budget running out (the run is cut; its newest checkpoint counts).
  timeout "${MINUTES}m" "$MATHFORGE" train sft --config configs/train-tiny-sft.toml --out "$OUT/sft" \
    --init "$INIT" --train-file "$DATA/sft-train.jsonl" --eval-file "$DATA/sft-heldout.jsonl" --seed 1 \
    --steps 100000 --lr 2e-4 --schedule constant --warmup-steps 0 --weight-decay 0 \
    --save-every 5 --keep-checkpoints 2 --eval-every 0 || [ $? -eq 124 ]
}
train_rft() { "$MATHFORGE" train rft --config configs/train-tiny-rft.toml --out "$OUT/rft" "${rl_flags[@]}"; }
train_online-rft() {
  "$MATHFORGE" train rft --config configs/train-tiny-online-rft.toml --out "$OUT/online-rft" "${rl_flags[@]}"
}
train_dpo() { "$MATHFORGE" train dpo --config configs/train-tiny-dpo.toml --out "$OUT/dpo" "${rl_flags[@]}"; }
train_ppo() { "$MATHFORGE" train ppo --config configs/train-tiny-ppo.toml --out "$OUT/ppo" "${rl_flags[@]}"; }
train_grpo() { "$MATHFORGE" train grpo --config configs/train-tiny-grpo.toml --out "$OUT/grpo" "${rl_flags[@]}"; }

evaluate() {
  local spec="arith:split=heldout,steps=$STEPS,max_value=$MAX_VALUE,n=$N_HELDOUT"
  "$MATHFORGE" eval --data "$spec" --model "$2" --max-tokens 96 --out "$OUT/eval/$1-greedy"
  "$MATHFORGE" eval --data "$spec" --model "$2" --max-tokens 96 --n 8 --temperature 0.7 --seed 1 --out "$OUT/eval/$1-n8"
}

for m in $METHODS; do
  if [ -e "$OUT/$m.done" ]; then
    log "$m: trained already (rm $OUT/$m.done to redo)"
  else
    log "$m: train"
    t0=$SECONDS
    "train_$m"
    printf '%s\t%s\n' "$m" "$((SECONDS - t0))" >>"$TIMES"
    touch "$OUT/$m.done"
  fi
  if [ ! -e "$OUT/eval-$m.done" ]; then
    log "$m: evaluate $(latest "$OUT/$m")"
    evaluate "$m" "$(latest "$OUT/$m")"
    touch "$OUT/eval-$m.done"
  fi
done

# Summary (percent). The start point's numbers come from tiny.sh's eval of the same checkpoint.
metric() {
  local v
  v=$(grep -o "\"$2\": *[0-9.]*" "$1/summary.json" | head -n 1 | sed 's/.*: *//')
  awk -v v="$v" 'BEGIN { printf "%.1f", 100 * v }'
}
{
  echo "| method | greedy | maj@8 | pass@8 | steps | seconds |"
  echo "|---|---|---|---|---|---|"
  if [ -e "$RUN/eval/sft-greedy/summary.json" ] && [ -e "$RUN/eval/sft-n8/summary.json" ]; then
    echo "| start (SFT) | $(metric "$RUN/eval/sft-greedy" accuracy) | $(metric "$RUN/eval/sft-n8" maj_at_k) | $(metric "$RUN/eval/sft-n8" pass@8) | - | - |"
  fi
  for m in $METHODS; do
    [ -e "$OUT/eval/$m-n8/summary.json" ] || continue
    step=$(basename "$(latest "$OUT/$m")" | sed 's/step-//')
    secs=$(awk -v m="$m" '$1 == m { s = $2 } END { print s }' "$TIMES")
    echo "| $m | $(metric "$OUT/eval/$m-greedy" accuracy) | $(metric "$OUT/eval/$m-n8" maj_at_k) | $(metric "$OUT/eval/$m-n8" pass@8) | $step | $secs |"
  done
} | tee "$OUT/summary.md"

# Grouped bar chart of the table (skipped without matplotlib).
if python3 -c 'import matplotlib' 2>/dev/null; then
  python3 - "$OUT/summary.md" "$OUT/compare.png" <<'PY'
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_table(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 4 or cells[0] in ("method", "") or set(cells[1]) <= set("-"):
                continue
            try:
                rows.append((cells[0], float(cells[1]), float(cells[2]), float(cells[3])))
            except ValueError:
                sys.exit(f"{path}:{n}: expected numbers in columns 2-4, got {cells[1:4]}")
    if not rows:
        sys.exit(f"{path}: no table rows")
    return rows


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = read_table(sys.argv[1])
    names = [r[0] for r in rows]
    width = 0.27
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    for k, (label, color) in enumerate([("greedy", "#3b6ea8"), ("maj@8", "#e08a2c"), ("pass@8", "#8fb56a")]):
        xs = [i + (k - 1) * width for i in range(len(rows))]
        vals = [r[k + 1] for r in rows]
        ax.bar(xs, vals, width, label=label, color=color)
        for x, v in zip(xs, vals):
            ax.text(x, v + 0.8, f"{v:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(names)
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(0, max(max(r[1:]) for r in rows) * 1.15 + 2)
    ax.set_title("Same SFT start, same wall-clock budget per method")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(sys.argv[2])


if __name__ == "__main__":
    main()
PY
  log "plot: $OUT/compare.png"
else
  log "no matplotlib: skipped the plot (pip install matplotlib)"
fi
