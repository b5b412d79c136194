//! Fused CPU kernels with their own backward passes: attention, RMSNorm, RoPE, SwiGLU and the
//! target-token log-softmax.
//!
//! Why: candle's autograd keeps every intermediate tensor of a composed op alive until the backward
//! pass. Attention written as `matmul → scale → +mask → max/sub/exp/sum/div → matmul` keeps five
//! `[B, heads, T, S]` tensors per layer, and the log-softmax of the lm_head keeps three `[N, V]`
//! blocks; that is what put our training step above PyTorch's peak memory (issue 2). Each op here
//! is one graph node that keeps only its inputs, and recomputes what its backward needs:
//! - attention saves `q, k, v` and its output, and recomputes the probabilities block by block in
//!   the backward pass, as FlashAttention does (Dao et al. 2022, Alg. 2: `dS = P ∘ (dP - rowsum(dO ∘ O))`);
//!   probabilities exist only for a block of query rows at a time, never for the whole sequence;
//! - RMSNorm (Zhang & Sennrich 2019) saves `x, w`; SwiGLU (Shazeer 2020) saves `gate, up`;
//!   RoPE (Su et al. 2021, HF "rotate half" layout) is linear in `x`, so it saves nothing new;
//! - the log-prob of a target token saves the logits only; its gradient `g (onehot - softmax)` is
//!   recomputed from them.
//!
//! Scope: CPU tensors in f32 or f64 (f64 is what the finite-difference tests use). Every public
//! function checks [`supported`] and otherwise runs the composed candle ops of `nn.rs`, which have
//! a backward on every device; so CUDA and half precision keep working, only without the saving.
//! Matrix products go through the `gemm` crate (what candle's CPU matmul uses), one thread per
//! task, with tasks spread over rayon.
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor, WithDType};
use rayon::prelude::*;

type CResult<T> = candle_core::Result<T>;

/// Query rows whose scores are materialized at once per task (bounds the attention scratch to
/// `ROW_BLOCK x S` per thread whatever the sequence length).
const ROW_BLOCK: usize = 128;

/// Element types the fused kernels handle.
pub trait Real: WithDType + num_traits::Float + Send + Sync + 'static {
    /// `e^x`: libm's in f64 (gradient checks), the vectorizable [`crate::decode::exp_f32`]
    /// (relative error ~2e-7, below f32's rounding of the sums it feeds) in f32.
    fn fexp(self) -> Self;
}
impl Real for f32 {
    #[inline(always)]
    fn fexp(self) -> f32 {
        crate::decode::exp_f32(self)
    }
}
impl Real for f64 {
    #[inline(always)]
    fn fexp(self) -> f64 {
        self.exp()
    }
}

/// True when the fused kernels apply to `x`: a CPU tensor in f32 or f64.
pub fn supported(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

fn contiguous_slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout, what: &str) -> CResult<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("fused {what}: expected a contiguous tensor"),
    }
}

fn host_vec<T: Real>(t: &Tensor) -> CResult<Vec<T>> {
    t.flatten_all()?.to_vec1::<T>()
}

/// A raw pointer that tasks writing provably disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
struct SharedMut<T>(*mut T);
unsafe impl<T> Send for SharedMut<T> {}
unsafe impl<T> Sync for SharedMut<T> {}

/// `dst[m x n] (row stride dst_rs) = (accumulate ? dst : 0) + scale * lhs[m x k] * rhs[k x n]`,
/// each operand addressed by (row stride, column stride). Bounds are checked before the call.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw<T: Real>(
    (m, n, k): (usize, usize, usize),
    dst: *mut T,
    dst_rs: usize,
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (&[T], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[T], usize, usize),
    scale: T,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(k == 0 || (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len(), "fused gemm: lhs out of bounds");
    assert!(k == 0 || (k - 1) * rhs_rs + (n - 1) * rhs_cs < rhs.len(), "fused gemm: rhs out of bounds");
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs.as_ptr(),
        lhs_cs as isize,
        lhs_rs as isize,
        rhs.as_ptr(),
        rhs_cs as isize,
        rhs_rs as isize,
        T::one(),
        scale,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

/// Safe wrapper of [`gemm_raw`] for a destination slice of `m` rows of stride `dst_rs`.
fn gemm_into<T: Real>(
    mnk: (usize, usize, usize),
    dst: &mut [T],
    dst_rs: usize,
    accumulate: bool,
    lhs: (&[T], usize, usize),
    rhs: (&[T], usize, usize),
    scale: T,
) {
    let (m, n, _) = mnk;
    assert!(m == 0 || n == 0 || (m - 1) * dst_rs + n <= dst.len(), "fused gemm: dst out of bounds");
    // SAFETY: the destination bounds are checked above, the operand bounds in gemm_raw.
    unsafe { gemm_raw(mnk, dst.as_mut_ptr(), dst_rs, accumulate, lhs, rhs, scale) }
}

fn softmax_row<T: Real>(row: &mut [T]) {
    let max = row.iter().copied().fold(T::neg_infinity(), num_traits::Float::max);
    // Separate passes: the exp loop vectorizes only without the running sum.
    row.iter_mut().for_each(|v| *v = (*v - max).fexp());
    let inv = T::one() / lanes_sum(row, |x| x);
    row.iter_mut().for_each(|v| *v = *v * inv);
}

/// `Σ f(x)` over `row` in 8 fixed lanes: fixed-size chunks let the compiler vectorize `f`
/// (measured for `f = exp`: 2.1 ns/element vs 3.3 for a libm fold and 6.0 for lanes picked by a
/// running index).
#[inline(always)]
fn lanes_sum<T: Real>(row: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for x in chunks {
        for i in 0..8 {
            acc[i] = acc[i] + f(x[i]);
        }
    }
    let s = acc.iter().fold(T::zero(), |a, &b| a + b);
    rest.iter().fold(s, |a, &x| a + f(x))
}

// ---------------------------------------------------------------------------------------------
// Attention
// ---------------------------------------------------------------------------------------------

/// Shapes of one attention call, in the `[B, T, heads, d]` layout the projections produce.
#[derive(Clone, Copy, Debug)]
struct AttnDims {
    b: usize,
    t: usize,
    s: usize,
    nh: usize,
    nkv: usize,
    d: usize,
}

impl AttnDims {
    fn rep(&self) -> usize {
        self.nh / self.nkv
    }
    /// Offset of row `i`, head `h` of batch `bi` in a `[B, rows, heads, d]` tensor.
    fn at(bi: usize, rows: usize, i: usize, heads: usize, h: usize, d: usize) -> usize {
        ((bi * rows + i) * heads + h) * d
    }
}

struct Attention {
    dims: AttnDims,
    scale: f64,
    /// Additive bias `[B, 1, T, S]` (0 or `nn::MASK_VALUE`), contiguous, in the op's dtype.
    bias: Tensor,
}

impl Attention {
    /// Scaled, biased and softmaxed scores of query rows `i0..i0+rows` of head `h` (batch `bi`)
    /// into `p[rows x s]`.
    fn probs<T: Real>(&self, q: &[T], k: &[T], bias: &[T], (bi, h): (usize, usize), i0: usize, rows: usize, p: &mut [T]) {
        let AttnDims { t, s, nh, nkv, d, .. } = self.dims;
        let g = h / self.dims.rep();
        let q0 = AttnDims::at(bi, t, i0, nh, h, d);
        let k0 = AttnDims::at(bi, s, 0, nkv, g, d);
        // scores = scale * Q K^T: K is read transposed through its strides (no copy).
        gemm_into(
            (rows, s, d),
            p,
            s,
            false,
            (&q[q0..], nh * d, 1),
            (&k[k0..], 1, nkv * d),
            T::from(self.scale).unwrap_or_else(T::one),
        );
        for r in 0..rows {
            let brow = &bias[(bi * t + i0 + r) * s..][..s];
            let prow = &mut p[r * s..(r + 1) * s];
            prow.iter_mut().zip(brow).for_each(|(x, &bv)| *x = *x + bv);
            softmax_row(prow);
        }
    }

    fn forward<T: Real>(&self, q: &[T], k: &[T], v: &[T]) -> CResult<Vec<T>> {
        let AttnDims { b, t, s, nh, nkv, d } = self.dims;
        let bias: Vec<T> = host_vec(&self.bias)?;
        let mut out = vec![T::zero(); b * t * nh * d];
        let out_ptr = SharedMut(out.as_mut_ptr());
        let out_len = out.len();
        (0..b * nh).into_par_iter().for_each(|task| {
            let (bi, h) = (task / nh, task % nh);
            let g = h / self.dims.rep();
            let v0 = AttnDims::at(bi, s, 0, nkv, g, d);
            let mut p = vec![T::zero(); ROW_BLOCK.min(t) * s];
            let out_ptr = out_ptr;
            for i0 in (0..t).step_by(ROW_BLOCK) {
                let rows = ROW_BLOCK.min(t - i0);
                self.probs(q, k, &bias, (bi, h), i0, rows, &mut p);
                let o0 = AttnDims::at(bi, t, i0, nh, h, d);
                assert!(o0 + (rows - 1) * nh * d + d <= out_len);
                // SAFETY: task (bi, h) writes only rows of its own batch and head; in bounds (above).
                unsafe {
                    gemm_raw((rows, d, s), out_ptr.0.add(o0), nh * d, false, (&p[..rows * s], s, 1), (&v[v0..], nkv * d, 1), T::one());
                }
            }
        });
        Ok(out)
    }

    /// Gradients of `q, k, v` given the output `o` and its gradient `go` (all host vectors).
    fn backward<T: Real>(&self, q: &[T], k: &[T], v: &[T], o: &[T], go: &[T]) -> CResult<(Vec<T>, Vec<T>, Vec<T>)> {
        let AttnDims { b, t, s, nh, nkv, d } = self.dims;
        let rep = self.dims.rep();
        let scale = T::from(self.scale).unwrap_or_else(T::one);
        let bias: Vec<T> = host_vec(&self.bias)?;
        let mut dq = vec![T::zero(); q.len()];
        let mut dk = vec![T::zero(); k.len()];
        let mut dv = vec![T::zero(); v.len()];
        let (dq_ptr, dk_ptr, dv_ptr) = (SharedMut(dq.as_mut_ptr()), SharedMut(dk.as_mut_ptr()), SharedMut(dv.as_mut_ptr()));
        let (q_len, kv_len) = (dq.len(), dk.len());
        // One task per (batch, kv head): it owns that kv head's dK/dV and its query heads' dQ.
        (0..b * nkv).into_par_iter().for_each(|task| {
            let (bi, g) = (task / nkv, task % nkv);
            let (dq_ptr, dk_ptr, dv_ptr) = (dq_ptr, dk_ptr, dv_ptr);
            let kv0 = AttnDims::at(bi, s, 0, nkv, g, d);
            assert!(kv0 + (s.max(1) - 1) * nkv * d + d <= kv_len || s == 0);
            let block = ROW_BLOCK.min(t);
            let mut p = vec![T::zero(); block * s];
            let mut dp = vec![T::zero(); block * s];
            let mut first = true;
            for h in g * rep..(g + 1) * rep {
                for i0 in (0..t).step_by(ROW_BLOCK) {
                    let rows = ROW_BLOCK.min(t - i0);
                    self.probs(q, k, &bias, (bi, h), i0, rows, &mut p);
                    let q0 = AttnDims::at(bi, t, i0, nh, h, d);
                    assert!(q0 + (rows - 1) * nh * d + d <= q_len);
                    // dP = dO V^T
                    gemm_into((rows, s, d), &mut dp, s, false, (&go[q0..], nh * d, 1), (&v[kv0..], 1, nkv * d), T::one());
                    // dS = P ∘ (dP - rowsum(dO ∘ O)), overwriting dP.
                    for r in 0..rows {
                        let row0 = q0 + r * nh * d;
                        let delta = (0..d).fold(T::zero(), |acc, j| acc + go[row0 + j] * o[row0 + j]);
                        let (pr, dpr) = (&p[r * s..(r + 1) * s], &mut dp[r * s..(r + 1) * s]);
                        dpr.iter_mut().zip(pr).for_each(|(x, &pv)| *x = pv * (*x - delta));
                    }
                    // SAFETY: this task alone writes head h's dQ rows of batch bi and kv head g's
                    // dK/dV rows of batch bi; bounds checked above.
                    unsafe {
                        // dQ = scale dS K
                        gemm_raw((rows, d, s), dq_ptr.0.add(q0), nh * d, false, (&dp[..rows * s], s, 1), (&k[kv0..], nkv * d, 1), scale);
                        // dK += scale dS^T Q ; dV += P^T dO
                        gemm_raw((s, d, rows), dk_ptr.0.add(kv0), nkv * d, !first, (&dp[..rows * s], 1, s), (&q[q0..], nh * d, 1), scale);
                        gemm_raw((s, d, rows), dv_ptr.0.add(kv0), nkv * d, !first, (&p[..rows * s], 1, s), (&go[q0..], nh * d, 1), T::one());
                    }
                    first = false;
                }
            }
        });
        Ok((dq, dk, dv))
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "mathforge-fused-attention"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> CResult<(CpuStorage, Shape)> {
        let shape = l1.shape().clone();
        let out = match s1.dtype() {
            DType::F32 => CpuStorage::F32(self.forward::<f32>(
                contiguous_slice(s1, l1, "attention q")?,
                contiguous_slice(s2, l2, "attention k")?,
                contiguous_slice(s3, l3, "attention v")?,
            )?),
            DType::F64 => CpuStorage::F64(self.forward::<f64>(
                contiguous_slice(s1, l1, "attention q")?,
                contiguous_slice(s2, l2, "attention k")?,
                contiguous_slice(s3, l3, "attention v")?,
            )?),
            dt => candle_core::bail!("fused attention: unsupported dtype {dt:?}"),
        };
        Ok((out, shape))
    }

    fn bwd(&self, q: &Tensor, k: &Tensor, v: &Tensor, res: &Tensor, grad: &Tensor) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        fn run<T: Real>(op: &Attention, q: &Tensor, k: &Tensor, v: &Tensor, o: &Tensor, go: &Tensor) -> CResult<(Tensor, Tensor, Tensor)> {
            let (hq, hk, hv) = (host_vec::<T>(q)?, host_vec::<T>(k)?, host_vec::<T>(v)?);
            let (dq, dk, dv) = op.backward(&hq, &hk, &hv, &host_vec::<T>(o)?, &host_vec::<T>(&go.to_dtype(T::DTYPE)?)?)?;
            let dev = q.device();
            Ok((Tensor::from_vec(dq, q.shape(), dev)?, Tensor::from_vec(dk, k.shape(), dev)?, Tensor::from_vec(dv, v.shape(), dev)?))
        }
        let (dq, dk, dv) = match q.dtype() {
            DType::F32 => run::<f32>(self, q, k, v, res, grad)?,
            DType::F64 => run::<f64>(self, q, k, v, res, grad)?,
            dt => candle_core::bail!("fused attention backward: unsupported dtype {dt:?}"),
        };
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// Causal/padded grouped-query attention `softmax(scale q k^T + bias) v`.
///
/// `q: [B, T, nh, d]`, `k, v: [B, S, nkv, d]` (the projections' own layout: no transposes),
/// `bias: [B, 1, T, S]` additive (see `nn::attention_bias`). Returns `[B, T, nh, d]`. Query head
/// `h` reads kv head `h / (nh / nkv)` (transformers' `repeat_kv` order).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor, scale: f64) -> CResult<Tensor> {
    let (b, t, nh, d) = q.dims4()?;
    let (bk, s, nkv, dk) = k.dims4()?;
    if v.dims() != k.dims() || bk != b || dk != d || nkv == 0 || nh % nkv != 0 || bias.dims() != [b, 1, t, s] {
        candle_core::bail!(
            "fused attention: incompatible shapes q {:?}, k {:?}, v {:?}, bias {:?}",
            q.dims(),
            k.dims(),
            v.dims(),
            bias.dims()
        );
    }
    let dtype = q.dtype();
    if !(supported(q) && k.dtype() == dtype && v.dtype() == dtype) {
        return attention_composed(q, k, v, bias, scale);
    }
    let op = Attention { dims: AttnDims { b, t, s, nh, nkv, d }, scale, bias: bias.to_dtype(dtype)?.contiguous()?.detach() };
    q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

/// The same attention from differentiable candle ops (any device and dtype), `[B, T, heads, d]`
/// layout in and out.
pub fn attention_composed(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor, scale: f64) -> CResult<Tensor> {
    let (q, k, v) = (q.transpose(1, 2)?.contiguous()?, k.transpose(1, 2)?.contiguous()?, v.transpose(1, 2)?.contiguous()?);
    attention_heads_first(&q, &k, &v, bias, scale)?.transpose(1, 2)?.contiguous()
}

/// Composed attention in the heads-first layout of the KV cache: `q: [B, nh, T, d]`,
/// `k, v: [B, nkv, S, d]` (contiguous), `bias: [B, 1, T, S]` → `[B, nh, T, d]`.
pub fn attention_heads_first(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor, scale: f64) -> CResult<Tensor> {
    let (b, nh, t, d) = q.dims4()?;
    let (_, nkv, s, _) = k.dims4()?;
    // GQA without materializing repeated K/V: query head `kv * rep + r` uses kv head `kv`
    // (transformers' `repeat_kv` order), so grouping the `rep` query heads of one kv head into
    // the row dimension turns attention into one batched matmul per kv head.
    let rep = nh / nkv;
    let scores = (q.reshape((b, nkv, rep * t, d))?.matmul(&k.t()?)? * scale)?.reshape((b, nh, t, s))?;
    let dt = scores.dtype();
    let scores = scores.to_dtype(crate::nn::compute_dtype(dt))?.broadcast_add(bias)?;
    let probs = crate::nn::softmax_last_dim(&scores)?.to_dtype(dt)?;
    probs.reshape((b, nkv, rep * t, s))?.matmul(v)?.reshape((b, nh, t, d))
}

// ---------------------------------------------------------------------------------------------
// RoPE
// ---------------------------------------------------------------------------------------------

/// `y = x cos + rotate_half(x) sin` on `x: [B, T, heads, d]` with `cos, sin: [B, 1, T, d]`.
struct Rope {
    /// Forward (`+1`) or the transpose used by the backward pass (`-1`: rotation by `-θ`).
    sign: f64,
}

impl Rope {
    fn apply<T: Real>(&self, x: &[T], cos: &[T], sin: &[T], dims: (usize, usize, usize, usize)) -> Vec<T> {
        let (_, _, h, d) = dims;
        let half = d / 2;
        let sign = T::from(self.sign).unwrap_or_else(T::one);
        let mut y = vec![T::zero(); x.len()];
        y.par_chunks_mut(h * d).zip(x.par_chunks(h * d)).enumerate().for_each(|(row, (yr, xr))| {
            // row = bi * T + i: cos/sin rows are shared by all heads of a position.
            let (c, s) = (&cos[row * d..(row + 1) * d], &sin[row * d..(row + 1) * d]);
            for hh in 0..h {
                let (xs, ys) = (&xr[hh * d..(hh + 1) * d], &mut yr[hh * d..(hh + 1) * d]);
                for j in 0..half {
                    let (x1, x2) = (xs[j], xs[j + half]);
                    // Forward: y1 = x1 c - x2 s, y2 = x2 c + x1 s. Transpose: s -> -s.
                    ys[j] = x1 * c[j] - sign * x2 * s[j];
                    ys[j + half] = x2 * c[j + half] + sign * x1 * s[j + half];
                }
            }
        });
        y
    }
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "mathforge-fused-rope"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> CResult<(CpuStorage, Shape)> {
        let dims = l1.shape().dims4()?;
        let out = match s1.dtype() {
            DType::F32 => CpuStorage::F32(self.apply::<f32>(
                contiguous_slice(s1, l1, "rope x")?,
                contiguous_slice(s2, l2, "rope cos")?,
                contiguous_slice(s3, l3, "rope sin")?,
                dims,
            )),
            DType::F64 => CpuStorage::F64(self.apply::<f64>(
                contiguous_slice(s1, l1, "rope x")?,
                contiguous_slice(s2, l2, "rope cos")?,
                contiguous_slice(s3, l3, "rope sin")?,
                dims,
            )),
            dt => candle_core::bail!("fused rope: unsupported dtype {dt:?}"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, cos: &Tensor, sin: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Linear in x with an orthogonal map per pair: the gradient is the rotation by -θ.
        let dx = grad.contiguous()?.apply_op3_no_bwd(cos, sin, &Rope { sign: -self.sign })?;
        Ok((Some(dx), None, None))
    }
}

/// RoPE on `x: [B, T, heads, d]` with `cos, sin: [B, 1, T, d]` (from `nn::Rope::cos_sin`).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> CResult<Tensor> {
    let (b, t, _, d) = x.dims4()?;
    if cos.dims() != [b, 1, t, d] || sin.dims() != [b, 1, t, d] || d % 2 != 0 {
        candle_core::bail!("fused rope: x {:?} needs cos/sin [{b}, 1, {t}, {d}], got {:?} / {:?}", x.dims(), cos.dims(), sin.dims());
    }
    if supported(x) && cos.dtype() == x.dtype() && sin.dtype() == x.dtype() {
        let (cos, sin) = (cos.contiguous()?.detach(), sin.contiguous()?.detach());
        return x.contiguous()?.apply_op3(&cos, &sin, Rope { sign: 1.0 });
    }
    // Composed: move heads next to batch for the [B, 1, T, d] broadcast, then back.
    let xt = x.transpose(1, 2)?;
    crate::nn::apply_rope(&xt, cos, sin)?.transpose(1, 2)?.contiguous()
}

// ---------------------------------------------------------------------------------------------
// RMSNorm and SwiGLU
// ---------------------------------------------------------------------------------------------

struct RmsNorm {
    eps: f64,
}

impl RmsNorm {
    fn inv_rms<T: Real>(&self, row: &[T]) -> T {
        let n = T::from(row.len()).unwrap_or_else(T::one);
        let ms = row.iter().fold(T::zero(), |a, &v| a + v * v) / n;
        T::one() / (ms + T::from(self.eps).unwrap_or_else(T::zero)).sqrt()
    }

    fn forward<T: Real>(&self, x: &[T], w: &[T]) -> Vec<T> {
        let h = w.len();
        let mut y = vec![T::zero(); x.len()];
        y.par_chunks_mut(h).zip(x.par_chunks(h)).for_each(|(yr, xr)| {
            let inv = self.inv_rms(xr);
            yr.iter_mut().zip(xr).zip(w).for_each(|((y, &x), &w)| *y = x * inv * w);
        });
        y
    }

    fn backward<T: Real>(&self, x: &[T], w: &[T], g: &[T]) -> (Vec<T>, Vec<T>) {
        let h = w.len();
        let n = T::from(h).unwrap_or_else(T::one);
        let mut dx = vec![T::zero(); x.len()];
        // dw sums over rows: per fixed block of rows in parallel, then the blocks in order, so
        // the result does not depend on how rayon split the work (bitwise-reproducible runs).
        const ROWS: usize = 64;
        let partial: Vec<Vec<T>> = dx
            .par_chunks_mut(h * ROWS)
            .zip(x.par_chunks(h * ROWS).zip(g.par_chunks(h * ROWS)))
            .map(|(dxb, (xb, gb))| {
                let mut dw = vec![T::zero(); h];
                for (dxr, (xr, gr)) in dxb.chunks_mut(h).zip(xb.chunks(h).zip(gb.chunks(h))) {
                    let inv = self.inv_rms(xr);
                    // y = x̂ w with x̂ = x inv: dx = inv (g w - x̂ mean(g w x̂)), dw = Σ_rows g x̂.
                    let dot = (0..h).fold(T::zero(), |a, j| a + gr[j] * w[j] * xr[j] * inv) / n;
                    for j in 0..h {
                        let xhat = xr[j] * inv;
                        dxr[j] = inv * (gr[j] * w[j] - xhat * dot);
                        dw[j] = dw[j] + gr[j] * xhat;
                    }
                }
                dw
            })
            .collect();
        let mut dw = vec![T::zero(); h];
        for p in &partial {
            dw.iter_mut().zip(p).for_each(|(a, &b)| *a = *a + b);
        }
        (dx, dw)
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "mathforge-fused-rmsnorm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> CResult<(CpuStorage, Shape)> {
        let out = match s1.dtype() {
            DType::F32 => CpuStorage::F32(self.forward::<f32>(contiguous_slice(s1, l1, "rmsnorm x")?, contiguous_slice(s2, l2, "rmsnorm w")?)),
            DType::F64 => CpuStorage::F64(self.forward::<f64>(contiguous_slice(s1, l1, "rmsnorm x")?, contiguous_slice(s2, l2, "rmsnorm w")?)),
            dt => candle_core::bail!("fused rmsnorm: unsupported dtype {dt:?}"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        fn run<T: Real>(op: &RmsNorm, x: &Tensor, w: &Tensor, g: &Tensor) -> CResult<(Tensor, Tensor)> {
            let (dx, dw) = op.backward(&host_vec::<T>(x)?, &host_vec::<T>(w)?, &host_vec::<T>(&g.to_dtype(T::DTYPE)?)?);
            Ok((Tensor::from_vec(dx, x.shape(), x.device())?, Tensor::from_vec(dw, w.shape(), w.device())?))
        }
        let (dx, dw) = match x.dtype() {
            DType::F32 => run::<f32>(self, x, w, grad)?,
            DType::F64 => run::<f64>(self, x, w, grad)?,
            dt => candle_core::bail!("fused rmsnorm backward: unsupported dtype {dt:?}"),
        };
        Ok((Some(dx), Some(dw)))
    }
}

/// RMSNorm over the last dimension: `x / sqrt(mean(x^2) + eps) * w`; fused on CPU f32/f64.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> CResult<Tensor> {
    let h = x.dim(candle_core::D::Minus1)?;
    if w.dims() != [h] {
        candle_core::bail!("rmsnorm: weight {:?} does not match hidden size {h}", w.dims());
    }
    if supported(x) && w.dtype() == x.dtype() {
        return x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps });
    }
    let dt = x.dtype();
    let xc = x.to_dtype(crate::nn::compute_dtype(dt))?;
    let inv = (xc.sqr()?.mean_keepdim(candle_core::D::Minus1)? + eps)?.sqrt()?.recip()?;
    xc.broadcast_mul(&inv)?.to_dtype(dt)?.broadcast_mul(w)
}

struct SwiGlu;

fn sigmoid<T: Real>(a: T) -> T {
    T::one() / (T::one() + (-a).fexp())
}

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "mathforge-fused-swiglu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> CResult<(CpuStorage, Shape)> {
        fn run<T: Real>(a: &[T], u: &[T]) -> Vec<T> {
            let mut y = vec![T::zero(); a.len()];
            y.par_chunks_mut(4096).zip(a.par_chunks(4096).zip(u.par_chunks(4096))).for_each(|(y, (a, u))| {
                for i in 0..y.len() {
                    y[i] = a[i] * sigmoid(a[i]) * u[i];
                }
            });
            y
        }
        let out = match s1.dtype() {
            DType::F32 => CpuStorage::F32(run::<f32>(contiguous_slice(s1, l1, "swiglu gate")?, contiguous_slice(s2, l2, "swiglu up")?)),
            DType::F64 => CpuStorage::F64(run::<f64>(contiguous_slice(s1, l1, "swiglu gate")?, contiguous_slice(s2, l2, "swiglu up")?)),
            dt => candle_core::bail!("fused swiglu: unsupported dtype {dt:?}"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(&self, a: &Tensor, u: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        fn run<T: Real>(a: &Tensor, u: &Tensor, g: &Tensor) -> CResult<(Tensor, Tensor)> {
            let (av, uv, gv) = (host_vec::<T>(a)?, host_vec::<T>(u)?, host_vec::<T>(&g.to_dtype(T::DTYPE)?)?);
            let mut da = vec![T::zero(); av.len()];
            let mut du = vec![T::zero(); av.len()];
            da.par_chunks_mut(4096).zip(du.par_chunks_mut(4096)).enumerate().for_each(|(c, (da, du))| {
                let o = c * 4096;
                for i in 0..da.len() {
                    let (x, s) = (av[o + i], sigmoid(av[o + i]));
                    // d silu/dx = s (1 + x (1 - s))
                    da[i] = gv[o + i] * uv[o + i] * s * (T::one() + x * (T::one() - s));
                    du[i] = gv[o + i] * x * s;
                }
            });
            Ok((Tensor::from_vec(da, a.shape(), a.device())?, Tensor::from_vec(du, u.shape(), u.device())?))
        }
        let (da, du) = match a.dtype() {
            DType::F32 => run::<f32>(a, u, grad)?,
            DType::F64 => run::<f64>(a, u, grad)?,
            dt => candle_core::bail!("fused swiglu backward: unsupported dtype {dt:?}"),
        };
        Ok((Some(da), Some(du)))
    }
}

/// SwiGLU's gating `silu(gate) * up` (Shazeer 2020); fused on CPU f32/f64.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> CResult<Tensor> {
    if gate.dims() != up.dims() {
        candle_core::bail!("swiglu: gate {:?} and up {:?} differ in shape", gate.dims(), up.dims());
    }
    if supported(gate) && up.dtype() == gate.dtype() {
        return gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu);
    }
    gate.silu()? * up
}

// ---------------------------------------------------------------------------------------------
// Target-token log-probabilities
// ---------------------------------------------------------------------------------------------

struct TargetLogprob {
    vocab: usize,
}

fn logsumexp<T: Real>(row: &[T]) -> T {
    let max = row.iter().copied().fold(T::neg_infinity(), num_traits::Float::max);
    max + lanes_sum(row, |v| (v - max).fexp()).ln()
}

impl CustomOp2 for TargetLogprob {
    fn name(&self) -> &'static str {
        "mathforge-fused-target-logprob"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> CResult<(CpuStorage, Shape)> {
        let targets: &[u32] = contiguous_slice(s2, l2, "logprob targets")?;
        if let Some(&bad) = targets.iter().find(|&&t| t as usize >= self.vocab) {
            candle_core::bail!("target token {bad} >= vocabulary size {}", self.vocab);
        }
        fn run<T: Real>(x: &[T], targets: &[u32], v: usize) -> Vec<T> {
            x.par_chunks(v).zip(targets.par_iter()).map(|(row, &t)| row[t as usize] - logsumexp(row)).collect()
        }
        let out = match s1.dtype() {
            DType::F32 => CpuStorage::F32(run::<f32>(contiguous_slice(s1, l1, "logprob logits")?, targets, self.vocab)),
            DType::F64 => CpuStorage::F64(run::<f64>(contiguous_slice(s1, l1, "logprob logits")?, targets, self.vocab)),
            dt => candle_core::bail!("fused logprob: unsupported dtype {dt:?}"),
        };
        Ok((out, Shape::from(targets.len())))
    }

    fn bwd(&self, logits: &Tensor, targets: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(target_logprobs_grad(logits, targets, grad)?), None))
    }
}

/// The gradient of [`target_logprobs`] with respect to the logits: `grad[r] * ([j = t_r] -
/// softmax(logits[r])_j)` for `logits: [N, V]`, `targets: [N]`, `grad: [N]`. A host kernel on CPU
/// f32/f64, composed ops elsewhere.
pub fn target_logprobs_grad(logits: &Tensor, targets: &Tensor, grad: &Tensor) -> CResult<Tensor> {
    let (n, vocab) = logits.dims2()?;
    if targets.dims() != [n] || grad.dims() != [n] {
        candle_core::bail!("target logprobs grad: targets {:?} / grad {:?} do not match logits {:?}", targets.dims(), grad.dims(), logits.dims());
    }
    if !supported(logits) {
        let p = candle_nn::ops::softmax_last_dim(logits)?;
        let ids = Tensor::arange(0u32, vocab as u32, logits.device())?.unsqueeze(0)?;
        let onehot = ids.broadcast_eq(&targets.to_dtype(DType::U32)?.unsqueeze(1)?)?.to_dtype(logits.dtype())?;
        return (onehot - p)?.broadcast_mul(&grad.to_dtype(logits.dtype())?.unsqueeze(1)?);
    }
    {
        fn run<T: Real>(logits: &Tensor, targets: &[u32], g: &Tensor, v: usize) -> CResult<Tensor> {
            let (x, gv) = (host_vec::<T>(logits)?, host_vec::<T>(&g.to_dtype(T::DTYPE)?)?);
            let mut dx = vec![T::zero(); x.len()];
            dx.par_chunks_mut(v).zip(x.par_chunks(v)).enumerate().for_each(|(r, (dr, xr))| {
                // d(x_t - lse)/dx_j = [j = t] - softmax_j
                let lse = logsumexp(xr);
                let gr = gv[r];
                dr.iter_mut().zip(xr).for_each(|(d, &xv)| *d = -gr * (xv - lse).fexp());
                let t = targets[r] as usize;
                dr[t] = dr[t] + gr;
            });
            Tensor::from_vec(dx, logits.shape(), logits.device())
        }
        let tg = targets.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        if let Some(&bad) = tg.iter().find(|&&t| t as usize >= vocab) {
            candle_core::bail!("target token {bad} >= vocabulary size {vocab}");
        }
        let logits = logits.contiguous()?;
        match logits.dtype() {
            DType::F32 => run::<f32>(&logits, &tg, grad, vocab),
            DType::F64 => run::<f64>(&logits, &tg, grad, vocab),
            dt => candle_core::bail!("fused logprob backward: unsupported dtype {dt:?}"),
        }
    }
}

/// A contiguous copy of a CPU storage's view (the forward of ops whose value is computed outside
/// the op, such as gradient checkpointing's and [`crate::logprob`]'s fused lm_head).
pub(crate) fn copy_cpu_view(s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("copy: expected a contiguous tensor")
    };
    let copy = match s {
        CpuStorage::F32(v) => CpuStorage::F32(v[a..b].to_vec()),
        CpuStorage::F64(v) => CpuStorage::F64(v[a..b].to_vec()),
        CpuStorage::BF16(v) => CpuStorage::BF16(v[a..b].to_vec()),
        CpuStorage::F16(v) => CpuStorage::F16(v[a..b].to_vec()),
        other => candle_core::bail!("copy: unsupported dtype {:?}", other.dtype()),
    };
    Ok((copy, l.shape().clone()))
}

/// The CUDA counterpart of [`copy_cpu_view`] (a whole-buffer device copy; the view must start
/// at offset 0 and be contiguous, which a freshly computed tensor is).
#[cfg(feature = "cuda")]
pub(crate) fn copy_cuda_view(s: &candle_core::CudaStorage, l: &Layout) -> CResult<(candle_core::CudaStorage, Shape)> {
    if !l.is_contiguous() || l.start_offset() != 0 {
        candle_core::bail!("copy: expected a contiguous tensor at offset 0")
    }
    Ok((s.try_clone(l)?, l.shape().clone()))
}

/// `log softmax(logits)[target]` per row: `logits: [N, V]`, `targets: [N]` (u32) → `[N]`, in the
/// logits' dtype. Fused on CPU f32/f64 (no `[N, V]` intermediate is kept for the backward pass).
pub fn target_logprobs(logits: &Tensor, targets: &Tensor) -> CResult<Tensor> {
    let (n, v) = logits.dims2()?;
    if targets.dims() != [n] {
        candle_core::bail!("target logprobs: targets {:?} do not match logits {:?}", targets.dims(), logits.dims());
    }
    let targets = targets.to_dtype(DType::U32)?.contiguous()?;
    if supported(logits) {
        return logits.contiguous()?.apply_op2(&targets, TargetLogprob { vocab: v });
    }
    let lse = crate::nn::logsumexp_keepdim(logits)?;
    (logits.gather(&targets.unsqueeze(1)?, 1)? - lse)?.squeeze(1)
}
