//! Per-token log-probabilities of given target tokens, chunked over positions.
//!
//! GRPO (DeepSeekMath §4.1, Eq. 3) needs `log π_θ(o_t | q, o_<t)` for every sampled token, and
//! scoring (lm-eval's `loglikelihood`) needs the same for a continuation. The naive route builds a
//! full `[B, T, V]` log-softmax; with V ≈ 100k that dominates memory. Here the lm_head, the
//! log-sum-exp and the target gather are one op over `chunk` positions (of the flattened `B x T`)
//! at a time, in the forward *and* the backward pass: the backward recomputes each chunk's logits
//! from the hidden states and the lm_head weight instead of keeping them (the fused linear
//! cross-entropy of Liger-Kernel, Hsu et al. 2024; Wijmans et al. 2024, "Cut Your Losses in
//! Large-Vocabulary Language Models"). So training never holds a `[B, T, V]` tensor either: at
//! most one `[chunk, V]` block, for one extra lm_head matmul per chunk.
//!
//! Statistics are computed in f32 (f64 for f64 models) whatever the weight dtype.
use crate::error::{Error, Result};
use crate::llama::Llama;
use crate::nn::logsumexp_keepdim;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor, D};

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
    let (b, t) = check_targets(hidden, targets)?;
    if b * t == 0 {
        return Ok(Tensor::zeros((b, t), stat_dtype(hidden.dtype()), hidden.device())?);
    }
    let h = hidden.dims3()?.2;
    let flat = hidden.reshape((b * t, h))?;
    let lp = linear_target_logprobs(&flat, model.lm_head_weight(), &targets.flatten_all()?, chunk, temperature)?;
    Ok(lp.reshape((b, t))?)
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

/// `log softmax(hidden @ weight^T / T)[target]` per row: `hidden: [N, H]`, `weight: [V, H]` (the
/// lm_head), `targets: [N]` → `[N]` in f32 (f64 for f64 weights), `chunk` rows at a time, with a
/// backward pass to `hidden` and `weight` that recomputes each chunk's logits (module docs).
pub fn linear_target_logprobs(
    hidden: &Tensor,
    weight: &Tensor,
    targets: &Tensor,
    chunk: usize,
    temperature: f64,
) -> Result<Tensor> {
    let (n, h) = hidden.dims2()?;
    let (v, hw) = weight.dims2()?;
    if hw != h || targets.dims() != [n] {
        return Err(Error::BadInput {
            what: "targets",
            msg: format!("hidden {:?}, lm_head {:?} and targets {:?} do not match", hidden.dims(), weight.dims(), targets.dims()),
        });
    }
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::BadInput { what: "temperature", msg: format!("must be finite and > 0, got {temperature}") });
    }
    let targets = targets.to_dtype(DType::U32)?.contiguous()?;
    if n > 0 {
        let max = targets.max(0)?.to_scalar::<u32>()? as usize;
        if max >= v {
            return Err(Error::BadInput { what: "targets", msg: format!("token id {max} >= vocab_size {v}") });
        }
    }
    let op = LinearLogprob { targets, chunk: chunk.max(1), inv_t: 1.0 / temperature };
    // The value, computed without a graph; the op only attaches the recomputing backward.
    let values = op.values(&hidden.detach(), &weight.detach())?;
    Ok(hidden.apply_op3(weight, &values, op)?)
}

struct LinearLogprob {
    targets: Tensor,
    chunk: usize,
    inv_t: f64,
}

impl LinearLogprob {
    /// One chunk's (tempered) logits in the statistics dtype.
    fn logits(&self, h: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
        let logits = h.matmul(&w.t()?)?;
        let logits = logits.to_dtype(stat_dtype(logits.dtype()))?;
        if self.inv_t == 1.0 {
            Ok(logits)
        } else {
            logits.affine(self.inv_t, 0.0)
        }
    }

    fn values(&self, h: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
        let n = h.dim(0)?;
        let mut parts = Vec::with_capacity(n.div_ceil(self.chunk));
        let mut s = 0;
        while s < n {
            let len = self.chunk.min(n - s);
            let logits = self.logits(&h.narrow(0, s, len)?, w)?;
            parts.push(crate::fused::target_logprobs(&logits, &self.targets.narrow(0, s, len)?)?);
            s += len;
        }
        if parts.is_empty() {
            return Tensor::zeros(0, stat_dtype(h.dtype()), h.device());
        }
        Tensor::cat(&parts, 0)?.contiguous()
    }
}

impl CustomOp3 for LinearLogprob {
    fn name(&self) -> &'static str {
        "mathforge-fused-linear-logprob"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        values: &CpuStorage,
        l: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        crate::fused::copy_cpu_view(values, l)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
        values: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::fused::copy_cuda_view(values, l)
    }

    fn bwd(
        &self,
        hidden: &Tensor,
        weight: &Tensor,
        _values: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // d lp_r / d logits_r = [j = t_r] - softmax_j, times 1/T through the scaling; then
        // d hidden = dlogits @ W and d W = dlogits^T @ hidden, one chunk at a time.
        let (h, w) = (hidden.detach(), weight.detach());
        let n = h.dim(0)?;
        let grad = grad.detach();
        let (mut dh, mut dw) = (Vec::with_capacity(n.div_ceil(self.chunk)), None::<Tensor>);
        let mut s = 0;
        while s < n {
            let len = self.chunk.min(n - s);
            let hc = h.narrow(0, s, len)?;
            let logits = self.logits(&hc, &w)?;
            let g = grad.narrow(0, s, len)?.to_dtype(logits.dtype())?;
            let dl = crate::fused::target_logprobs_grad(&logits, &self.targets.narrow(0, s, len)?, &g)?;
            let dl = if self.inv_t == 1.0 { dl } else { dl.affine(self.inv_t, 0.0)? };
            let dl = dl.to_dtype(h.dtype())?;
            dh.push(dl.matmul(&w)?);
            let dwc = dl.t()?.matmul(&hc)?;
            dw = Some(match dw {
                Some(acc) => (acc + dwc)?,
                None => dwc,
            });
            s += len;
        }
        let dh = if dh.is_empty() { h.zeros_like()? } else { Tensor::cat(&dh, 0)? };
        let dw = match dw {
            Some(d) => d,
            None => w.zeros_like()?,
        };
        Ok((Some(dh), Some(dw), None))
    }
}
