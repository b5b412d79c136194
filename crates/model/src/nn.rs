//! Decoder building blocks made only of candle ops that have a backward pass.
//!
//! candle's fused `rms_norm`, `softmax_last_dim` and `rope` kernels have no backward, so training
//! through them fails; everything here is written with elementwise ops, reductions, `matmul`,
//! `narrow`/`cat` and `index_select`, all of which candle differentiates. The maths follow the
//! Llama papers (Touvron et al. 2023: RMSNorm pre-norm, SwiGLU, RoPE) as implemented in
//! `transformers`' `modeling_llama.py` (RoPE in the "rotate half" layout, not interleaved), which
//! the parity fixture checks to 1e-4.
//!
//! Precision: in half precision (bf16/f16) the norm statistics, the RoPE angles and the attention
//! softmax are computed in f32 and cast back, as `transformers` does; f64 is kept end to end so
//! finite-difference gradient checks are meaningful.
use crate::error::Result;
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;

/// Additive mask value: large enough that `exp` underflows to exactly 0 after max-subtraction, yet
/// finite so rows that are fully masked (left padding) give a uniform distribution, not NaN.
pub const MASK_VALUE: f64 = -1e9;

/// The dtype statistics are computed in: f32 for half types, otherwise the input dtype.
pub fn compute_dtype(dt: DType) -> DType {
    match dt {
        DType::BF16 | DType::F16 => DType::F32,
        other => other,
    }
}

/// `y = x W^T + b` with `W` stored `[out, in]` (the PyTorch layout, so checkpoints map 1:1).
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Tensor,
    /// `[out]`.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Load `weight` (and `bias` if `bias`) under `vb`.
    pub fn new(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get((out_dim, in_dim), "weight")?;
        let bias = if bias { Some(vb.get(out_dim, "bias")?) } else { None };
        Ok(Linear { weight, bias })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // Flatten leading dims into one GEMM with a transposed (strided) RHS: no weight copy, and one
        // large matmul is far faster on CPU than a broadcast batch of small ones.
        let dims = x.dims();
        if dims.len() == 2 {
            // Already `[rows, in]` (the decoder's residual stream): no reshape nodes, whose
            // backward would each cost a zeroed buffer and an add in candle's gradient store.
            let y = x.matmul(&self.weight.t()?)?;
            return match &self.bias {
                Some(b) => y.broadcast_add(b),
                None => Ok(y),
            };
        }
        let in_dim = dims[dims.len() - 1];
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let y = x.reshape((rows, in_dim))?.matmul(&self.weight.t()?)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out_dims = dims.to_vec();
        let last = out_dims.len() - 1;
        out_dims[last] = self.weight.dim(0)?;
        y.reshape(out_dims)
    }
}

/// Token embedding: a row lookup (`index_select`, whose backward is a scatter-add).
#[derive(Debug, Clone)]
pub struct Embedding {
    /// `[vocab, hidden]`.
    pub weight: Tensor,
}

impl Embedding {
    /// Load `weight` under `vb`.
    pub fn new(vocab: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Embedding { weight: vb.get((vocab, hidden), "weight")? })
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let mut dims = ids.dims().to_vec();
        let flat = self.weight.index_select(&ids.flatten_all()?, 0)?;
        dims.push(self.weight.dim(1)?);
        flat.reshape(dims)
    }
}

/// RMSNorm (Zhang & Sennrich 2019): `x / sqrt(mean(x^2) + eps) * w`, no mean-centering, no bias.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// `[hidden]`.
    pub weight: Tensor,
    /// Epsilon inside the square root.
    pub eps: f64,
}

impl RmsNorm {
    /// Load `weight` under `vb`.
    pub fn new(hidden: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(RmsNorm { weight: vb.get(hidden, "weight")?, eps })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        crate::fused::rms_norm(x, &self.weight, self.eps)
    }
}

/// Softmax over the last dimension from `exp`/`sum` with the row max subtracted (detached: softmax
/// is shift-invariant, so the max needs no gradient, and detaching keeps the graph small).
pub fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&s)
}

/// `log(sum(exp(x)))` over the last dimension, keeping it (size 1), computed stably.
pub fn logsumexp_keepdim(x: &Tensor) -> candle_core::Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let s = x.broadcast_sub(&m)?.exp()?.sum_keepdim(D::Minus1)?.log()?;
    s + m
}

/// SiLU `x * sigmoid(x)`: candle's unary `silu` has a backward, so the one-kernel op is used.
pub fn silu(x: &Tensor) -> candle_core::Result<Tensor> {
    x.silu()
}

/// Rotary position embedding (Su et al. 2021) with HF's "rotate half" layout.
#[derive(Debug, Clone)]
pub struct Rope {
    /// `1 / (theta^(2i/d) * factor)`, `[1, 1, d/2]`, f32.
    inv_freq: Tensor,
}

impl Rope {
    /// Frequencies for per-head width `head_dim`, base `theta`, linear scaling `factor`.
    pub fn new(head_dim: usize, theta: f64, factor: f64, device: &Device) -> Result<Self> {
        let half = head_dim / 2;
        // f32 like transformers (`1.0 / base ** (arange(0, d, 2).float() / d)`), then / factor.
        let inv: Vec<f32> = (0..half)
            .map(|i| {
                let exponent = (2 * i) as f32 / head_dim as f32;
                (1.0f32 / (theta as f32).powf(exponent)) / factor as f32
            })
            .collect();
        Ok(Rope { inv_freq: Tensor::from_vec(inv, (1, 1, half), device)? })
    }

    /// `(cos, sin)` of shape `[B, 1, T, d]` in `dtype` for per-row positions `[B, T]` (u32).
    pub fn cos_sin(&self, positions: &Tensor, dtype: DType) -> Result<(Tensor, Tensor)> {
        let pos = positions.to_dtype(DType::F32)?.unsqueeze(2)?; // [B,T,1]
        let freqs = pos.broadcast_mul(&self.inv_freq)?; // [B,T,d/2]
        let emb = Tensor::cat(&[&freqs, &freqs], 2)?; // [B,T,d]
        let cos = emb.cos()?.to_dtype(dtype)?.unsqueeze(1)?;
        let sin = emb.sin()?.to_dtype(dtype)?.unsqueeze(1)?;
        Ok((cos, sin))
    }
}

/// `x * cos + rotate_half(x) * sin` for `x: [B, heads, T, d]`, `cos/sin: [B, 1, T, d]`.
pub fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
}

/// Additive attention bias `[B, 1, t, S]` (0 = attend, [`MASK_VALUE`] = blocked) for `t` new
/// queries placed after `past` cached positions: query `i` may see key `j` iff `j <= past + i` and
/// `key_mask[b][j] != 0`. `key_mask` rows have length `S = past + t`.
pub fn attention_bias(key_mask: &[Vec<f32>], past: usize, t: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let b = key_mask.len();
    let s = past + t;
    let mut v = vec![0f32; b * t * s];
    for (bi, row) in key_mask.iter().enumerate() {
        for i in 0..t {
            let base = (bi * t + i) * s;
            for j in 0..s {
                if j > past + i || row[j] == 0.0 {
                    v[base + j] = MASK_VALUE as f32;
                }
            }
        }
    }
    Ok(Tensor::from_vec(v, (b, 1, t, s), device)?.to_dtype(dtype)?)
}

impl Linear {
    /// The same layer over detached weights (shared storage): its forward records no graph.
    pub fn detached(&self) -> Linear {
        Linear { weight: self.weight.detach(), bias: self.bias.as_ref().map(Tensor::detach) }
    }
}

impl RmsNorm {
    /// The same norm over a detached gain (shared storage): its forward records no graph.
    pub fn detached(&self) -> RmsNorm {
        RmsNorm { weight: self.weight.detach(), eps: self.eps }
    }
}
