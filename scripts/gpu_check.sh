#!/bin/bash
# GPU check of the `cuda` build (issue 2): CPU/GPU parity of per-token log-probs (f32, bf16) and of
# greedy decoding, the training step against PyTorch on the same GPU, batched sampling against
# transformers `generate()` (scripts/bench/sampling, 350M Llama, bf16), and 3 GRPO steps on CUDA.
# Run from the repo root on the GPU machine, with a binary built by
# `cargo build --release -p mathforge --features cuda` (see scripts/cuda_toolkit_from_pypi.sh),
# optionally xz-compressed to travel:
#
#   MATHFORGE=target/release/mathforge OUT=/tmp/gpu-check bash scripts/gpu_check.sh
#   MATHFORGE=gpu/mathforge.xz bash scripts/gpu_check.sh
#
# Needs python3 with torch (CUDA) and transformers for the anchors; everything is logged to
# $OUT/log.txt. Not yet run: the session that wrote it was lent no GPU machine.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
exec > >(tee -a $OUT/log.txt) 2>&1
W=/tmp/mfw; mkdir -p $W /tmp/mfbin
M=${MATHFORGE:-target/release/mathforge}
if [[ "$M" == *.xz ]]; then
  python3 -c "import lzma,shutil,sys;shutil.copyfileobj(lzma.open(sys.argv[1]),open(sys.argv[2],'wb'))" "$M" /tmp/mfbin/mathforge
  chmod +x /tmp/mfbin/mathforge; M=/tmp/mfbin/mathforge
fi
M=$(cd "$(dirname "$M")" && pwd)/$(basename "$M")
sec() { echo; echo "=== $(date +%T) $*"; }
sec gpu; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
SP=$(python3 -c 'import site;print(site.getsitepackages()[0])' 2>/dev/null)
for l in libcublas.so.13 libcurand.so.10 libnvrtc.so.13 libcudart.so.13; do
  f=$(ls $SP/nvidia/cu13/lib/$l $SP/nvidia/*/lib/$l /usr/local/cuda/lib64/$l /usr/local/cuda/targets/x86_64-linux/lib/$l 2>/dev/null | head -1)
  [ -z "$f" ] && f=$(timeout 60 find /opt /usr -name "$l" 2>/dev/null | head -1)
  echo "$l -> $f"; [ -n "$f" ] && export LD_LIBRARY_PATH=$(dirname $f):${LD_LIBRARY_PATH:-}
done
ldd $M | grep -E 'not found|cublas|curand|nvrtc|libcuda' 
$M --version
cat > $W/tiny.json <<'JSON'
{"model_type":"llama","architectures":["LlamaForCausalLM"],"vocab_size":2048,"hidden_size":256,"intermediate_size":688,"num_hidden_layers":4,"num_attention_heads":8,"num_key_value_heads":4,"max_position_embeddings":1024,"rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":false,"bos_token_id":0,"eos_token_id":1,"pad_token_id":2}
JSON
sec tokenizer + tiny model
$M tokenizer train --input README.md docs/model.md docs/train.md docs/verify.md --vocab-size 2000 --out $W/tok >/dev/null
$M model init --config $W/tiny.json --out $W/tiny --tokenizer $W/tok/tokenizer.json --seed 1
python3 - <<'PY' > $W/score.jsonl
import json
for i in range(24):
    print(json.dumps({"prompt": f"Question {i}: the sum of {i} and {i*3} is", "completion": f" {i*4}. Therefore the answer is {i*4}."}))
PY
sec score parity cpu f32 / cuda f32 / cuda bf16
timeout 120 $M score --model $W/tiny --input $W/score.jsonl --output $W/cpu.jsonl --device cpu
timeout 120 $M score --model $W/tiny --input $W/score.jsonl --output $W/c32.jsonl --device cuda --dtype f32
timeout 120 $M score --model $W/tiny --input $W/score.jsonl --output $W/c16.jsonl --device cuda --dtype bf16
python3 - $W <<'PY'
import json, sys
w = sys.argv[1]
def load(n): return [json.loads(l) for l in open(f"{w}/{n}.jsonl")]
c, g, b = load("cpu"), load("c32"), load("c16")
d32 = max(abs(x - y) for a, bb in zip(c, g) for x, y in zip(a["logprobs"], bb["logprobs"]))
d16 = max(abs(x - y) for a, bb in zip(c, b) for x, y in zip(a["logprobs"], bb["logprobs"]))
print(f"PARITY per-token logprob max|diff| cpu-f32 vs cuda-f32 {d32:.2e}, vs cuda-bf16 {d16:.2e} over {sum(len(a['logprobs']) for a in c)} tokens")
PY
sec greedy generation cpu vs cuda f32
timeout 120 $M generate --model $W/tiny --input $W/score.jsonl --output $W/gcpu.jsonl --max-new-tokens 48 --ignore-eos --device cpu 2>&1 | tail -1
timeout 120 $M generate --model $W/tiny --input $W/score.jsonl --output $W/gcuda.jsonl --max-new-tokens 48 --ignore-eos --device cuda --dtype f32 2>&1 | tail -1
python3 - $W <<'PY'
import json, sys
w = sys.argv[1]
a = [json.loads(l)["token_ids"] for l in open(f"{w}/gcpu.jsonl")]
b = [json.loads(l)["token_ids"] for l in open(f"{w}/gcuda.jsonl")]
same = sum(x == y for x, y in zip(a, b))
print(f"GREEDY identical completions cpu vs cuda-f32: {same}/{len(a)}")
PY
sec "train step 20.8M 8x256: ours = train pretrain fwd+bwd+AdamW, f32 and bf16; PyTorch fwd+bwd on the same checkpoint"
python3 - > $W/bt.json <<'PY'
import json
print(json.dumps({"model_type":"llama","architectures":["LlamaForCausalLM"],"hidden_size":512,"intermediate_size":1376,"num_hidden_layers":4,"num_attention_heads":8,"num_key_value_heads":8,"vocab_size":8000,"max_position_embeddings":512,"rms_norm_eps":1e-5,"tie_word_embeddings":False,"bos_token_id":1,"eos_token_id":2}))
PY
$M model init --config $W/bt.json --out $W/bt --seed 0 --tokenizer $W/tok/tokenizer.json >/dev/null
python3 - > $W/text.jsonl <<'PY'
import json, random
r = random.Random(0)
words = open("README.md").read().split()
for i in range(400):
    print(json.dumps({"text": " ".join(r.choice(words) for _ in range(600))}))
PY
for dt in f32 bf16; do
  timeout 150 $M train pretrain --out $W/pt-$dt --init $W/bt --data web:1:$W/text.jsonl --seq-len 256 --batch-size 8 --micro-batch-size 8 --steps 25 --lr 1e-4 --warmup-steps 0 --device cuda --dtype $dt --save-every 1000 --eval-every 1000 --heldout-docs 0 >/dev/null 2>&1 || echo "pretrain $dt failed"
  python3 - $W/pt-$dt/metrics.jsonl $dt <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"step_seconds"' in l]
st = sorted(r["step_seconds"] for r in rows[3:])
med = st[len(st) // 2]
print(f"ours {sys.argv[2]}: median step {med:.4f} s over {len(st)} steps -> {rows[-1]['tokens'] / med:.0f} tokens/s; loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f}")
PY
  echo "torch $dt: $(timeout 150 python3 scripts/bench/train_step_torch.py $W/bt --device cuda --dtype $dt --steps 10 --warmup 2 2>/dev/null | tail -1)"
done
sec sampling bench 350M bf16 batch 64 x 256 new tokens
timeout 240 python3 scripts/bench/sampling --bin $M --device cuda --dtype bf16 --size 350m --batch 64 --new 256 2>&1 | grep -v Loading
sec grpo 3 steps on cuda
timeout 120 $M train grpo --out $W/grpo --model-config $W/tiny.json --tokenizer $W/tok --train-data arith:split=train,steps=2,n=200 --eval-questions 0 --questions-per-step 4 --group-size 4 --max-completion-len 32 --steps 3 --device cuda --save-every 1000 2>&1 | tr '\r' '\n' | grep -v '^\s*$' | tail -5
tail -n 3 $W/grpo/metrics.jsonl 2>/dev/null | cut -c1-400
sec done
