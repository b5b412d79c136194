//! Per-token log-probabilities of given target tokens, chunked over positions.
//!
//! GRPO (DeepSeekMath §4.1, Eq. 3) needs `log π_θ(o_t | q, o_<t)` for every sampled token, and
//! scoring (lm-eval's `loglikelihood`) needs the same for a continuation. The naive route builds a
//! full `[B, T, V]` log-softmax; with V ≈ 100k that dominates memory. Here the lm_head, the
//! log-sum-exp and the target gather run on `chunk` positions at a time, so only a
//! `[B, chunk, V]` logits block exists at once in inference. The result is differentiable
//! (`gather` and `logsumexp` have backward passes); during training candle's autograd keeps each
//! chunk's logits alive for the backward pass, so the saving there is the log-softmax copy, not the
//! logits themselves.
//!
//! Statistics are computed in f32 (f64 for f64 models) whatever the weight dtype.
use crate::error::{Error, Result};
use crate::llama::Llama;
use crate::nn::logsumexp_keepdim;
use candle_core::{DType, Tensor, D};

fn stat_dtype(dt: DType) -> DType {
    if dt == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

fn check_targets(hidden: &Tensor, targets: &Tensor) -> Result<(usize, usize)> {
    let (b, t, _) = hidden.dims3()?;
    if targets.dims() != [b, t] {
        return Err(Error::BadInput { what: "targets", msg: format!("expected shape [{b}, {t}], got {:?}", targets.dims()) });
    }
    Ok((b, t))
}

/// `log p(targets[b,t])` under the model's next-token distribution at each position of `hidden`
/// (`[B,T,H]` from [`Llama::forward_hidden`]), `chunk` positions at a time → `[B,T]`.
pub fn token_logprobs_from_hidden(model: &Llama, hidden: &Tensor, targets: &Tensor, chunk: usize) -> Result<Tensor> {
    tempered_logprobs_from_hidden(model, hidden, targets, chunk, 1.0)
}

/// As [`token_logprobs_from_hidden`], under the tempered distribution `softmax(logits / T)`: the
/// policy a sampler at temperature `T` actually draws from. RL trainers score rollouts with it
/// so that the old, current and reference log-probs describe the sampling policy (TRL's
/// `GRPOTrainer` and verl divide the logits by the rollout temperature the same way). `T = 1`
/// is the plain distribution; `T` must be finite and > 0.
pub fn tempered_logprobs_from_hidden(
    model: &Llama,
    hidden: &Tensor,
    targets: &Tensor,
    chunk: usize,
    temperature: f64,
) -> Result<Tensor> {
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::BadInput { what: "temperature", msg: format!("must be finite and > 0, got {temperature}") });
    }
    let (_, t) = check_targets(hidden, targets)?;
    let chunk = chunk.max(1);
    let targets = targets.to_dtype(DType::U32)?;
    let mut parts = Vec::with_capacity(t.div_ceil(chunk));
    let mut s = 0;
    while s < t {
        let len = chunk.min(t - s);
        let logits = model.logits(&hidden.narrow(1, s, len)?)?;
        let mut logits = logits.to_dtype(stat_dtype(logits.dtype()))?;
        if temperature != 1.0 {
            logits = logits.affine(1.0 / temperature, 0.0)?;
        }
        let (b, _, v) = logits.dims3()?;
        let tg = targets.narrow(1, s, len)?.contiguous()?.flatten_all()?;
        let lp = crate::fused::target_logprobs(&logits.reshape((b * len, v))?, &tg)?;
        parts.push(lp.reshape((b, len))?);
        s += len;
    }
    if parts.is_empty() {
        let (b, _, _) = hidden.dims3()?;
        return Ok(Tensor::zeros((b, 0), stat_dtype(hidden.dtype()), hidden.device())?);
    }
    Ok(Tensor::cat(&parts, 1)?)
}

/// `log p(targets[b,t] | input_ids[b, ..=t])` → `[B,T]`, chunked (see module docs). Typical use:
/// `targets` = `input_ids` shifted left by one, with the caller masking the last and pad positions.
pub fn token_logprobs(
    model: &Llama,
    input_ids: &Tensor,
    attention_mask: Option<&Tensor>,
    targets: &Tensor,
    chunk: usize,
) -> Result<Tensor> {
    let hidden = model.forward_hidden(input_ids, attention_mask)?;
    token_logprobs_from_hidden(model, &hidden, targets, chunk)
}

/// Log-probs of each next token of `input_ids` given its prefix: `[B, T-1]` where entry `t` is
/// `log p(input_ids[t+1] | input_ids[..=t])`.
pub fn next_token_logprobs(model: &Llama, input_ids: &Tensor, attention_mask: Option<&Tensor>, chunk: usize) -> Result<Tensor> {
    let (b, t) = input_ids.dims2()?;
    if t < 2 {
        return Ok(Tensor::zeros((b, 0), stat_dtype(model.dtype()), model.device())?);
    }
    let hidden = model.forward_hidden(input_ids, attention_mask)?.narrow(1, 0, t - 1)?;
    let targets = input_ids.narrow(1, 1, t - 1)?;
    token_logprobs_from_hidden(model, &hidden, &targets, chunk)
}

/// Inference-only variant for scoring: log-probs `[B][T]` plus whether each target is the argmax
/// of its distribution (lm-eval's `is_greedy`).
pub fn token_logprobs_and_greedy(
    model: &Llama,
    hidden: &Tensor,
    targets: &Tensor,
    chunk: usize,
) -> Result<(Vec<Vec<f32>>, Vec<Vec<bool>>)> {
    let (b, t) = check_targets(hidden, targets)?;
    let chunk = chunk.max(1);
    let targets = targets.to_dtype(DType::U32)?;
    let mut lps = vec![Vec::with_capacity(t); b];
    let mut greedy = vec![Vec::with_capacity(t); b];
    let mut s = 0;
    while s < t {
        let len = chunk.min(t - s);
        let logits = model.logits(&hidden.narrow(1, s, len)?.detach())?;
        let logits = logits.to_dtype(stat_dtype(logits.dtype()))?;
        let lse = logsumexp_keepdim(&logits)?;
        let tg = targets.narrow(1, s, len)?.contiguous()?;
        let picked = logits.gather(&tg.unsqueeze(2)?, 2)?;
        let lp = (picked - lse)?.squeeze(2)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let am = logits.argmax(D::Minus1)?.to_vec2::<u32>()?;
        let tv = tg.to_vec2::<u32>()?;
        for bi in 0..b {
            lps[bi].extend_from_slice(&lp[bi]);
            greedy[bi].extend(am[bi].iter().zip(&tv[bi]).map(|(a, t)| a == t));
        }
        s += len;
    }
    Ok((lps, greedy))
}
