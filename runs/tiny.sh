#!/usr/bin/env bash
# Issue 5 "proof that it learns": a ~1M-parameter Llama trained from scratch on this CPU, then
# GRPO (DeepSeekMath §4.1) for at most 10 minutes, evaluated before and after on held-out
# procedural arithmetic problems (greedy, maj@8, pass@8). Report: docs/train-report.md.
#
#   cargo build --release --bin mathforge
#   runs/tiny.sh                      # all stages into runs/tiny/ (about 50 min on 2 loaded cores)
#   RUN=/tmp/t GRPO_MINUTES=5 runs/tiny.sh
#   GRPO_REWARD=answer runs/tiny.sh       # the paper's outcome reward (final answer only)
#   GRPO_REWARD=checked runs/tiny.sh      # stricter reward (docs/train-report.md section 4)
#
# Needs only the built binary and coreutils/sed. Every stage writes into its own folder and is
# skipped when its `.done` marker exists, so a killed run resumes by running the script again
# (the trainers themselves also resume from their newest checkpoint).
#
# Stages:
#   1. data       arith problems (steps=2, every count <= 20) with worked `#### N` solutions: 20000 train, 300 held out
#                 (disjoint by question hash, crates/tasks/src/arith.rs); the pretraining corpus is
#                 question + solution as plain text; SFT/GRPO files carry the eval prompt's
#                 instruction line so training and `mathforge eval --prompt-format instruct` see
#                 the identical prompt `User: {q}\nPlease reason step by step, ...\n\nAssistant:`.
#   2. tokenizer  byte-level BPE, 512 symbols, digits split (`mathforge tokenizer train`).
#   3. pretrain   configs/train-tiny-pretrain.toml (from configs/train-tiny-model.json).
#   4. sft        configs/train-tiny-sft.toml (240 steps: the model reads every operand).
#   5. eval-sft   greedy and n=8 (maj@8, pass@8) on the held-out problems.
#   6. grpo       --max-minutes $GRPO_MINUTES (wall clock of sampling + updates; the periodic
#                 held-out evaluations are not counted). GRPO_REWARD=process (default):
#                 configs/train-tiny-grpo-process.toml, process supervision with the task's
#                 rule-based step rewards on the generator's train split; GRPO_REWARD=answer:
#                 configs/train-tiny-grpo.toml, the paper's answer reward on sft-train.jsonl;
#                 GRPO_REWARD=checked: configs/train-tiny-grpo-checked.toml, reward = right answer
#                 AND true calculator annotations, on the generator's train split with the
#                 instruction line (the same questions and prompt as sft-train.jsonl).
#   7. eval-grpo  as 5, on the GRPO checkpoint.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MATHFORGE=${MATHFORGE:-target/release/mathforge}
RUN=${RUN:-runs/tiny}
GRPO_MINUTES=${GRPO_MINUTES:-10}
N_TRAIN=${N_TRAIN:-20000}
N_HELDOUT=${N_HELDOUT:-300}
STEPS=${ARITH_STEPS:-2}
MAX_VALUE=${ARITH_MAX_VALUE:-20}
GRPO_REWARD=${GRPO_REWARD:-process}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}

[ -x "$MATHFORGE" ] || { echo "tiny.sh: $MATHFORGE not found; build it (cargo build --release --bin mathforge) or set MATHFORGE" >&2; exit 1; }
mkdir -p "$RUN"
DATA=$RUN/data
TIMES=$RUN/stage-seconds.tsv
# As it appears inside a JSON string (`\\boxed`), escaped once more for sed's replacement.
INSTR='Please reason step by step, and put your final answer within \\\\boxed{}.'

log() { echo "[tiny.sh $(date -u +%H:%M:%S)] $*" >&2; }
done_marker() { [ -e "$RUN/$1.done" ]; }
# Run stage $1 (a shell function) unless its marker exists; record its wall-clock seconds.
stage() {
  local name=$1
  if done_marker "$name"; then log "$name: done already (rm $RUN/$name.done to redo)"; return; fi
  log "$name: start"
  local t0=$SECONDS
  "stage_$name"
  local dt=$((SECONDS - t0))
  printf '%s\t%s\n' "$name" "$dt" >>"$TIMES"
  touch "$RUN/$name.done"
  log "$name: done in ${dt}s"
}
# Newest checkpoint folder of a run.
latest() {
  local d
  # Numeric order of the step (a `-` elsewhere in the path must not matter: runs/tiny-v2).
  d=$(ls -d "$1"/checkpoints/step-* 2>/dev/null | awk -F'/step-' '{ print $NF " " $0 }' | sort -n | tail -n 1 | cut -d' ' -f2-)
  [ -n "$d" ] || { echo "tiny.sh: no checkpoint in $1/checkpoints" >&2; exit 1; }
  echo "$d"
}

stage_data() {
  mkdir -p "$DATA"
  "$MATHFORGE" eval --data "arith:split=train,steps=$STEPS,max_value=$MAX_VALUE,n=$N_TRAIN" --write-data "$DATA/train.jsonl" --out "$DATA/.gen" >/dev/null
  "$MATHFORGE" eval --data "arith:split=heldout,steps=$STEPS,max_value=$MAX_VALUE,n=$N_HELDOUT" --write-data "$DATA/heldout.jsonl" --out "$DATA/.gen" >/dev/null
  # Records are {"answer","id","question","steps"} with sorted keys and no quotes inside the
  # strings (the generator's vocabulary has none), so sed can rewrite them safely.
  sed -E 's/^\{"answer":"(.*)","id":"[^"]*","question":"(.*)","steps":"[0-9]+"\}$/{"text":"\2\\n\1"}/' \
    "$DATA/train.jsonl" >"$DATA/pretrain.jsonl.tmp"
  for s in train heldout; do
    sed -E "s/\",\"steps\":\"([0-9]+)\"\}\$/\\\\n${INSTR}\",\"steps\":\"\1\"}/" "$DATA/$s.jsonl" >"$DATA/sft-$s.jsonl.tmp"
  done
  # The chat template and the instruction line, so the tokenizer learns their merges too.
  for _ in $(seq 2000); do
    echo 'User: Please reason step by step, and put your final answer within \boxed{}.'
    echo 'Assistant: #### 5'
  done >"$DATA/template.txt"
  local n
  for f in pretrain.jsonl sft-train.jsonl sft-heldout.jsonl; do
    n=$(grep -c . "$DATA/$f.tmp")
    if [ "$f" = sft-heldout.jsonl ]; then want=$N_HELDOUT; else want=$N_TRAIN; fi
    [ "$n" -eq "$want" ] || { echo "tiny.sh: $f has $n lines, expected $want" >&2; exit 1; }
    mv "$DATA/$f.tmp" "$DATA/$f"
  done
  grep -q 'within \\\\boxed{}' "$DATA/sft-heldout.jsonl" && ! grep -q '"text":"{' "$DATA/pretrain.jsonl" \
    || { echo "tiny.sh: data rewrite failed (generator format changed?)" >&2; exit 1; }
}

stage_tokenizer() {
  rm -rf "$RUN/tokenizer"
  "$MATHFORGE" tokenizer train --input "$DATA/pretrain.jsonl" "$DATA/template.txt" --vocab-size 512 --out "$RUN/tokenizer"
}

stage_pretrain() {
  "$MATHFORGE" train pretrain --config configs/train-tiny-pretrain.toml --out "$RUN/base" \
    --model-config configs/train-tiny-model.json --tokenizer "$RUN/tokenizer" \
    --data "arith:1:$DATA/pretrain.jsonl"
}

stage_sft() {
  "$MATHFORGE" train sft --config configs/train-tiny-sft.toml --out "$RUN/sft" --init "$(latest "$RUN/base")" \
    --train-file "$DATA/sft-train.jsonl" --eval-file "$DATA/sft-heldout.jsonl"
}

# Held-out evaluation of checkpoint $2 into $RUN/eval/$1-{greedy,n8}.
evaluate() {
  local spec="arith:split=heldout,steps=$STEPS,max_value=$MAX_VALUE,n=$N_HELDOUT"
  "$MATHFORGE" eval --data "$spec" --model "$2" --max-tokens 96 --out "$RUN/eval/$1-greedy"
  "$MATHFORGE" eval --data "$spec" --model "$2" --max-tokens 96 --n 8 --temperature 0.7 --seed 1 --out "$RUN/eval/$1-n8"
}

stage_eval_sft() { evaluate sft "$(latest "$RUN/sft")"; }

stage_grpo() {
  local cfg train
  case $GRPO_REWARD in
    checked)
      cfg=configs/train-tiny-grpo-checked.toml
      train="arith:split=train,steps=$STEPS,max_value=$MAX_VALUE,n=$N_TRAIN,instruct=true,check_work=true" ;;
    process)
      cfg=configs/train-tiny-grpo-process.toml
      train="arith:split=train,steps=$STEPS,max_value=$MAX_VALUE,n=$N_TRAIN,instruct=true" ;;
    answer) cfg=configs/train-tiny-grpo.toml; train=$DATA/sft-train.jsonl ;;
    *) echo "tiny.sh: GRPO_REWARD must be process, checked or answer, got $GRPO_REWARD" >&2; exit 1 ;;
  esac
  "$MATHFORGE" train grpo --config "$cfg" --out "$RUN/grpo" --init "$(latest "$RUN/sft")" \
    --train-data "$train" --eval-data "$DATA/sft-heldout.jsonl" --max-minutes "$GRPO_MINUTES"
}

stage_eval_grpo() { evaluate grpo "$(latest "$RUN/grpo")"; }

for s in data tokenizer pretrain sft eval_sft grpo eval_grpo; do stage "$s"; done

# Summary: before/after table (percent) from the eval summaries.
metric() {
  local v
  v=$(grep -o "\"$2\": *[0-9.]*" "$RUN/eval/$1/summary.json" | head -n 1 | sed 's/.*: *//')
  awk -v v="$v" 'BEGIN { printf "%.1f", 100 * v }'
}
{
  echo "| checkpoint | greedy | maj@8 | pass@8 |"
  echo "|---|---|---|---|"
  for m in sft grpo; do
    echo "| $m | $(metric "$m-greedy" accuracy) | $(metric "$m-n8" maj_at_k) | $(metric "$m-n8" pass@8) |"
  done
} | tee "$RUN/summary.md"
log "stage wall-clock seconds: $(tr '\t\n' '= ' <"$TIMES")"
