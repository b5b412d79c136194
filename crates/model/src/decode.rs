//! A CPU decoder for f32 models that bypasses candle's per-op machinery: the sampler's engine on
//! the CPU (GRPO rollouts, maj@k and pass@k sampling, greedy evaluation).
//!
//! On a small model a candle decode step is dominated by per-op costs, not arithmetic: ~100 ops
//! per token per layer, each allocating its output and handing its work to the thread pool, and
//! `x · Wᵀ` read through a transposed view, which the `gemm` crate runs at half speed for the few
//! rows of a decode step (measured: 24.6 µs vs 10.1 µs for 16×128×256). This module keeps a
//! snapshot of the weights in the layout the step wants and runs a layer as five matrix products
//! on reused buffers:
//!
//! - **Weights, transposed and fused**: `W_qkv [H, (nh + 2 nkv) d]` (q, k, v projections side by
//!   side), `W_o [nh d, H]`, `W_gate|up [H, 2I]`, `W_down [I, H]`, `lm_head [H, V]`.
//! - **Residual adds inside the products**: `x += attn · W_o` and `x += act · W_down` accumulate
//!   into the residual stream (no temporary, no add op).
//! - **Per-sequence caches**: every sequence owns its keys and values (`[len, nkv, d]` per layer,
//!   real tokens only, RoPE applied), so no padding, no mask and no cache concatenation; dropping
//!   a finished row drops its cache, and `n` samples of a prompt clone the prefilled cache.
//! - **One task per thread, not per op**: a step splits its sequences into one contiguous chunk
//!   per worker, and each worker runs its chunk through every layer alone (sequential `gemm`).
//!   Sequences are independent, so no barrier is needed between ops.
//!
//! The math is the candle model's (RMSNorm, RoPE with HF's rotate-half, GQA attention, SwiGLU;
//! Qwen2's q/k/v bias), in f32, with the summation order of the products the only difference
//! (tests hold logits to 1e-4 of `Llama::forward_step` and greedy tokens equal). Models in
//! other dtypes or on other devices keep the candle path (`FastDecoder::new` returns `None`).
use crate::llama::Llama;
use crate::{Error, Result};
use candle_core::DType;
use rayon::prelude::*;
use std::collections::HashMap;

/// Largest model (parameters) the decoder snapshots: the snapshot is a full f32 copy of the
/// weights, so bigger models stay on the candle path rather than double their memory.
pub const MAX_PARAMS: usize = 400_000_000;

struct Layer {
    ln1: Vec<f32>,
    /// `[H, nh·d + 2·nkv·d]`.
    wqkv: Vec<f32>,
    bqkv: Option<Vec<f32>>,
    /// `[nh·d, H]`.
    wo: Vec<f32>,
    bo: Option<Vec<f32>>,
    ln2: Vec<f32>,
    /// `[H, 2I]`: gate columns, then up columns.
    wgu: Vec<f32>,
    /// `[I, H]`.
    wd: Vec<f32>,
}

/// A weight snapshot of a [`Llama`] laid out for decoding (see the module docs).
pub struct FastDecoder {
    h: usize,
    nh: usize,
    nkv: usize,
    d: usize,
    inter: usize,
    vocab: usize,
    eps: f32,
    /// `[V, H]`; `None` with tied embeddings, whose rows are read from `lm_head`'s columns
    /// instead (one copy of the largest matrix of a small model, not two).
    embed: Option<Vec<f32>>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    /// `[H, V]`.
    lm_head: Vec<f32>,
    inv_freq: Vec<f32>,
}

/// The keys and values of one sequence: per layer `[len, nkv, d]`, RoPE applied.
#[derive(Clone, Debug, Default)]
pub struct SeqCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

impl SeqCache {
    /// Positions held (the next token's position id).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is held yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One sequence's share of a forward call: its cache and the tokens to append (a whole prompt
/// when prefilling, the last sampled token when decoding).
pub struct Job<'a> {
    /// Appended to in place.
    pub cache: &'a mut SeqCache,
    /// At least one token.
    pub tokens: &'a [u32],
}

/// A raw pointer that rayon tasks writing disjoint parts of one buffer may share.
struct SendPtr(*mut f32);
// SAFETY: only used for writes to disjoint regions, each by one task (see `lm_head_rows`).
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// `[rows, cols]` row-major → `[cols, rows]`.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

/// `c[m×n] (+)= a[m×k] · b[k×n]`, all row-major and contiguous, on the calling thread.
fn matmul(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "decode matmul: operand too small");
    // SAFETY: the bounds of all three operands are checked above; `c` is exclusively borrowed.
    unsafe { gemm_rows(m, n, k, c.as_mut_ptr(), n, a.as_ptr(), k, b.as_ptr(), n, accumulate) }
}

/// `c (+)= a · b` for row-major `[m, k]`, `[k, n]` and `[m, n]` operands whose rows are `lda`,
/// `ldb` and `ldc` floats apart (column blocks of wider matrices), on the calling thread.
///
/// # Safety
/// Every row of each operand must lie inside its allocation, and no other thread may access
/// the `[m, n]` block of `c` during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_rows(m: usize, n: usize, k: usize, c: *mut f32, ldc: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, accumulate: bool) {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        gemm::gemm(
            m, n, k, c, 1, ldc as isize, accumulate, a, 1, lda as isize, b, 1, ldb as isize, 1.0, 1.0, false, false,
            false, gemm::Parallelism::None,
        );
    }
}

/// `e^x` in f32 without libm (Cephes `expf`: `x = n ln2 + r`, a degree-6 polynomial in `r`, the
/// exponent set through the float's bits); branch-free so loops over it vectorize. Relative
/// error ~2e-7; `0` below -87.3, `+inf` above 88.7, NaN stays NaN.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // `max`/`min` (not `clamp`) so that NaN becomes -87.3 here: the integer cast below must not
    // see NaN; the NaN itself is passed through by the last select.
    let xc = x.max(-87.3).min(88.7);
    // Round to nearest through the 1.5·2^23 trick (no `round` instruction needed).
    let n = (xc * LOG2E + 12_582_912.0) - 12_582_912.0;
    let r = xc - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // SAFETY: `n` is an integer in [-126, 128] (x clamped above), so the cast is exact.
    let scale = f32::from_bits(((unsafe { n.to_int_unchecked::<i32>() } + 127) as u32) << 23);
    let out = y * scale;
    if x < -87.3 {
        0.0
    } else if x > 88.7 {
        f32::INFINITY
    } else if x.is_nan() {
        x
    } else {
        out
    }
}

/// Dot product with 8 independent accumulators (vectorizes without reassociation).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Sum with 8 independent accumulators (vectorizes without reassociation).
#[inline(always)]
fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let c = a.chunks_exact(8);
    let r = c.remainder();
    for x in c {
        for i in 0..8 {
            acc[i] += x[i];
        }
    }
    acc.iter().sum::<f32>() + r.iter().sum::<f32>()
}

/// Maximum in 8 fixed lanes (no running dependency through `f32::max`'s NaN handling).
#[inline(always)]
pub(crate) fn lanes_max(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let c = a.chunks_exact(8);
    let r = c.remainder();
    for x in c {
        for i in 0..8 {
            acc[i] = if x[i] > acc[i] { x[i] } else { acc[i] };
        }
    }
    acc.iter().chain(r).fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

#[inline(always)]
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let h = w.len();
    for (xr, or) in x.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
        let inv = 1.0 / (dot(xr, xr) / h as f32 + eps).sqrt();
        for ((o, &xv), &wv) in or.iter_mut().zip(xr).zip(w) {
            *o = xv * inv * wv;
        }
    }
}

impl FastDecoder {
    /// Snapshot `model`'s weights, or `None` when the model is not an f32 model on the CPU, or
    /// larger than [`MAX_PARAMS`].
    pub fn new(model: &Llama) -> Result<Option<FastDecoder>> {
        if !model.device().is_cpu() || model.dtype() != DType::F32 {
            return Ok(None);
        }
        if std::env::var_os("MATHFORGE_FAST_CPU").is_some_and(|v| v == "0") {
            return Ok(None); // escape hatch: candle's ops everywhere (A/B, debugging)
        }
        let cfg = model.config();
        let named: HashMap<String, candle_core::Tensor> = model.named_tensors().into_iter().collect();
        if named.values().map(|t| t.elem_count()).sum::<usize>() > MAX_PARAMS {
            return Ok(None);
        }
        let get = |name: &str| -> Result<Vec<f32>> {
            let t = named.get(name).ok_or_else(|| Error::Msg(format!("fast decoder: no tensor {name}")))?;
            Ok(t.flatten_all()?.to_vec1::<f32>()?)
        };
        let opt = |name: &str| -> Result<Option<Vec<f32>>> { named.contains_key(name).then(|| get(name)).transpose() };
        let (h, nh, nkv, d, inter) = (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size);
        let (qd, kvd) = (nh * d, nkv * d);
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let p = format!("model.layers.{i}");
            let a = format!("{p}.self_attn");
            let (wq, wk, wv) = (get(&format!("{a}.q_proj.weight"))?, get(&format!("{a}.k_proj.weight"))?, get(&format!("{a}.v_proj.weight"))?);
            let n = qd + 2 * kvd;
            let mut wqkv = vec![0f32; h * n];
            for (w, off, rows) in [(&wq, 0, qd), (&wk, qd, kvd), (&wv, qd + kvd, kvd)] {
                for r in 0..rows {
                    for c in 0..h {
                        wqkv[c * n + off + r] = w[r * h + c];
                    }
                }
            }
            let bqkv = match (opt(&format!("{a}.q_proj.bias"))?, opt(&format!("{a}.k_proj.bias"))?, opt(&format!("{a}.v_proj.bias"))?) {
                (Some(q), Some(k), Some(v)) => Some([q, k, v].concat()),
                (None, None, None) => None,
                _ => return Err(Error::Msg(format!("fast decoder: layer {i} has bias on only some of q/k/v"))),
            };
            let (wg, wu) = (get(&format!("{p}.mlp.gate_proj.weight"))?, get(&format!("{p}.mlp.up_proj.weight"))?);
            let mut wgu = vec![0f32; h * 2 * inter];
            for (w, off) in [(&wg, 0), (&wu, inter)] {
                for r in 0..inter {
                    for c in 0..h {
                        wgu[c * 2 * inter + off + r] = w[r * h + c];
                    }
                }
            }
            layers.push(Layer {
                ln1: get(&format!("{p}.input_layernorm.weight"))?,
                wqkv,
                bqkv,
                wo: transpose(&get(&format!("{a}.o_proj.weight"))?, h, qd),
                bo: opt(&format!("{a}.o_proj.bias"))?,
                ln2: get(&format!("{p}.post_attention_layernorm.weight"))?,
                wgu,
                wd: transpose(&get(&format!("{p}.mlp.down_proj.weight"))?, h, inter),
            });
        }
        let embed = get("model.embed_tokens.weight")?;
        let (embed, lm) = if cfg.tie_word_embeddings { (None, embed) } else { (Some(embed), get("lm_head.weight")?) };
        // The inverse frequencies exactly as `nn::Rope` computes them (f32, then / factor).
        let inv_freq = (0..d / 2)
            .map(|i| (1.0f32 / (cfg.rope_theta as f32).powf((2 * i) as f32 / d as f32)) / cfg.rope_scaling_factor as f32)
            .collect();
        Ok(Some(FastDecoder {
            h,
            nh,
            nkv,
            d,
            inter,
            vocab: cfg.vocab_size,
            eps: cfg.rms_norm_eps as f32,
            embed,
            layers,
            norm: get("model.norm.weight")?,
            lm_head: transpose(&lm, cfg.vocab_size, h),
            inv_freq,
        }))
    }

    /// An empty cache for one sequence.
    pub fn new_cache(&self) -> SeqCache {
        SeqCache { k: vec![Vec::new(); self.layers.len()], v: vec![Vec::new(); self.layers.len()], len: 0 }
    }

    /// Run every job's tokens through the model, appending to its cache, and return the logits
    /// `[V]` after each job's last token, in job order. The jobs are split into one chunk per
    /// worker of the current rayon pool.
    pub fn forward(&self, jobs: &mut [Job<'_>]) -> Result<Vec<Vec<f32>>> {
        self.run(jobs, false)
    }

    /// Like [`FastDecoder::forward`], but the logits after every token: `[t·V]` per job.
    pub fn forward_all(&self, jobs: &mut [Job<'_>]) -> Result<Vec<Vec<f32>>> {
        self.run(jobs, true)
    }

    /// Log-probs of completions under `softmax(logits / temperature)`, the scoring pass of RL
    /// (reference and old-policy log-probs): row `r` is completion `rows[r].1` after prompt
    /// `prompts[rows[r].0]`. Each prompt is run once and its cache cloned into its rows (GRPO's
    /// G samples share one prefill). Returns one log-prob per completion token.
    pub fn score(&self, prompts: &[&[u32]], rows: &[(usize, &[u32])], temperature: f32) -> Result<Vec<Vec<f32>>> {
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(Error::BadInput { what: "temperature", msg: format!("must be finite and > 0, got {temperature}") });
        }
        if let Some((r, _)) = rows.iter().find(|(p, _)| *p >= prompts.len()) {
            return Err(Error::BadInput { what: "rows", msg: format!("prompt index {r} out of range for {} prompts", prompts.len()) });
        }
        let mut caches: Vec<SeqCache> = prompts.iter().map(|_| self.new_cache()).collect();
        let mut jobs: Vec<Job> = caches.iter_mut().zip(prompts).map(|(cache, &tokens)| Job { cache, tokens }).collect();
        let first = self.forward(&mut jobs)?;
        let mut row_caches: Vec<SeqCache> =
            rows.iter().filter(|(_, c)| c.len() > 1).map(|(p, _)| caches[*p].clone()).collect();
        let mut jobs: Vec<Job> = rows
            .iter()
            .filter(|(_, c)| c.len() > 1)
            .zip(row_caches.iter_mut())
            .map(|((_, c), cache)| Job { cache, tokens: &c[..c.len() - 1] })
            .collect();
        let rest = self.forward_all(&mut jobs)?;
        let v = self.vocab;
        let inv_t = 1.0 / temperature;
        let lp = |logits: &[f32], target: u32| -> f32 {
            let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x * inv_t));
            // Fixed 8-lane chunks so the exponentials vectorize.
            let mut acc = [0f32; 8];
            let chunks = logits.chunks_exact(8);
            let rest: f32 = chunks.remainder().iter().map(|&x| exp_f32(x * inv_t - max)).sum();
            for c in chunks {
                for i in 0..8 {
                    acc[i] += exp_f32(c[i] * inv_t - max);
                }
            }
            logits[target as usize] * inv_t - max - (acc.iter().sum::<f32>() + rest).ln()
        };
        let mut rest = rest.into_iter();
        let mut out = Vec::with_capacity(rows.len());
        for (p, c) in rows {
            let mut lps = Vec::with_capacity(c.len());
            if let Some(&t0) = c.first() {
                if t0 as usize >= v {
                    return Err(Error::BadInput { what: "completion", msg: format!("token id {t0} >= vocab_size {v}") });
                }
                lps.push(lp(&first[*p], t0));
            }
            if c.len() > 1 {
                let all = rest.next().ok_or_else(|| Error::Msg("fast decoder: missing scored row".into()))?;
                for (k, &t) in c[1..].iter().enumerate() {
                    lps.push(lp(&all[k * v..(k + 1) * v], t));
                }
            }
            out.push(lps);
        }
        Ok(out)
    }

    fn run(&self, jobs: &mut [Job<'_>], all: bool) -> Result<Vec<Vec<f32>>> {
        if let Some(j) = jobs.iter().find(|j| j.tokens.is_empty()) {
            return Err(Error::BadInput { what: "tokens", msg: format!("a decode job at position {} has no token", j.cache.len) });
        }
        if let Some(&bad) = jobs.iter().flat_map(|j| j.tokens.iter()).find(|&&t| t as usize >= self.vocab) {
            return Err(Error::BadInput { what: "tokens", msg: format!("token id {bad} >= vocab_size {}", self.vocab) });
        }
        let threads = rayon::current_num_threads().max(1).min(jobs.len().max(1));
        let out = if threads <= 1 {
            self.forward_chunk(jobs, all)
        } else {
            let chunk = jobs.len().div_ceil(threads);
            let parts: Vec<Vec<Vec<f32>>> = jobs.par_chunks_mut(chunk).map(|c| self.forward_chunk(c, all)).collect();
            parts.into_iter().flatten().collect()
        };
        if all {
            return Ok(out);
        }
        // One row per job (a decode step): the lm_head runs once over all rows, split by vocabulary
        // block across the workers. Per-worker row chunks would each stream the whole `[H, V]`
        // matrix from memory for a few rows; this streams it once.
        let normed: Vec<f32> = out.concat();
        Ok(self.lm_head_rows(&normed, jobs.len()).chunks_exact(self.vocab).map(<[f32]>::to_vec).collect())
    }

    /// `logits [n, V] = normed [n, H] · lm_head [H, V]`, in vocabulary blocks of at least 512
    /// columns, one rayon task each.
    fn lm_head_rows(&self, normed: &[f32], n: usize) -> Vec<f32> {
        let (h, v) = (self.h, self.vocab);
        let mut logits = vec![0f32; n * v];
        if n == 0 || v == 0 {
            return logits;
        }
        let blocks = rayon::current_num_threads().max(1).min(v.div_ceil(512));
        let width = v.div_ceil(blocks).next_multiple_of(16);
        let starts: Vec<usize> = (0..v).step_by(width).collect();
        assert!(normed.len() >= n * h && self.lm_head.len() == h * v, "decode lm_head: operand too small");
        let dst = SendPtr(logits.as_mut_ptr());
        starts.par_iter().for_each(|&c0| {
            let dst = &dst;
            // SAFETY: `normed` is `[n, h]`, `lm_head` `[h, v]` and `logits` `[n, v]` (checked
            // above); this task alone writes its columns `[c0, c0 + width)` of `logits`.
            unsafe {
                gemm_rows(n, width.min(v - c0), h, dst.0.add(c0), v, normed.as_ptr(), h, self.lm_head.as_ptr().add(c0), v, false)
            }
        });
        logits
    }

    /// [`FastDecoder::forward`] for one chunk, on the calling thread; compiled a second time
    /// for AVX2 + FMA and picked at run time (the crate is built for baseline x86-64). Returns
    /// each job's logits after every token (`all`), or else one vector: the final-normed hidden
    /// state after each job's last token, `[jobs, H]`, for [`FastDecoder::lm_head_rows`].
    fn forward_chunk(&self, jobs: &mut [Job<'_>], all: bool) -> Vec<Vec<f32>> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function is compiled for (checked above).
            return unsafe { self.forward_chunk_avx2(jobs, all) };
        }
        self.forward_chunk_generic(jobs, all)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_chunk_avx2(&self, jobs: &mut [Job<'_>], all: bool) -> Vec<Vec<f32>> {
        self.forward_chunk_generic(jobs, all)
    }

    #[inline(always)]
    fn forward_chunk_generic(&self, jobs: &mut [Job<'_>], all: bool) -> Vec<Vec<f32>> {
        let (h, nh, nkv, d, inter) = (self.h, self.nh, self.nkv, self.d, self.inter);
        let (qd, kvd) = (nh * d, nkv * d);
        let nqkv = qd + 2 * kvd;
        let rep = nh / nkv;
        let half = d / 2;
        let scale = 1.0 / (d as f32).sqrt();
        let m: usize = jobs.iter().map(|j| j.tokens.len()).sum();
        let mut x = vec![0f32; m * h];
        for (row, &t) in jobs.iter().flat_map(|j| j.tokens.iter()).enumerate() {
            let (t, xr) = (t as usize, &mut x[row * h..(row + 1) * h]);
            match &self.embed {
                Some(e) => xr.copy_from_slice(&e[t * h..(t + 1) * h]),
                None => xr.iter_mut().enumerate().for_each(|(j, v)| *v = self.lm_head[j * self.vocab + t]),
            }
        }
        // cos/sin per token: `[m, d/2]` (the two halves of a head share them).
        let (mut cos, mut sin) = (vec![0f32; m * half], vec![0f32; m * half]);
        let mut row = 0;
        for j in jobs.iter() {
            for t in 0..j.tokens.len() {
                let pos = (j.cache.len + t) as f32;
                for i in 0..half {
                    let a = pos * self.inv_freq[i];
                    cos[row * half + i] = a.cos();
                    sin[row * half + i] = a.sin();
                }
                row += 1;
            }
        }
        let max_len = jobs.iter().map(|j| j.cache.len + j.tokens.len()).max().unwrap_or(0);
        let mut xn = vec![0f32; m * h];
        let mut qkv = vec![0f32; m * nqkv];
        let mut att = vec![0f32; m * qd];
        let mut gu = vec![0f32; m * 2 * inter];
        let mut act = vec![0f32; m * inter];
        let mut scores = vec![0f32; max_len];
        let rope = |v: &mut [f32], c: &[f32], s: &[f32]| {
            // HF rotate-half: (x1, x2) → (x1 cos - x2 sin, x2 cos + x1 sin).
            for i in 0..half {
                let (a, b) = (v[i], v[i + half]);
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        };
        for (li, l) in self.layers.iter().enumerate() {
            rms_norm(&x, &l.ln1, self.eps, &mut xn);
            matmul(m, nqkv, h, &xn, &l.wqkv, &mut qkv, false);
            if let Some(b) = &l.bqkv {
                qkv.chunks_exact_mut(nqkv).for_each(|r| r.iter_mut().zip(b).for_each(|(v, &bv)| *v += bv));
            }
            let mut row0 = 0;
            for j in jobs.iter_mut() {
                let t = j.tokens.len();
                let c0 = j.cache.len;
                let (kc, vc) = (&mut j.cache.k[li], &mut j.cache.v[li]);
                for tt in 0..t {
                    let r = row0 + tt;
                    let (c, s) = (&cos[r * half..(r + 1) * half], &sin[r * half..(r + 1) * half]);
                    let q_k = &mut qkv[r * nqkv..(r + 1) * nqkv];
                    for hh in 0..nh + nkv {
                        rope(&mut q_k[hh * d..(hh + 1) * d], c, s);
                    }
                    kc.extend_from_slice(&q_k[qd..qd + kvd]);
                    vc.extend_from_slice(&q_k[qd + kvd..]);
                }
                for tt in 0..t {
                    let r = row0 + tt;
                    let len = c0 + tt + 1; // causal: the cache up to and including this token
                    for hh in 0..nh {
                        let g = hh / rep;
                        let q = &qkv[r * nqkv + hh * d..r * nqkv + (hh + 1) * d];
                        let sc = &mut scores[..len];
                        for (p, s) in sc.iter_mut().enumerate() {
                            *s = dot(q, &kc[p * kvd + g * d..p * kvd + (g + 1) * d]) * scale;
                        }
                        let max = lanes_max(sc);
                        // Two passes: the exp loop vectorizes only without the running sum.
                        sc.iter_mut().for_each(|s| *s = exp_f32(*s - max));
                        let inv = 1.0 / sum(sc);
                        let out = &mut att[r * qd + hh * d..r * qd + (hh + 1) * d];
                        out.iter_mut().for_each(|o| *o = 0.0);
                        for (p, &w) in sc.iter().enumerate() {
                            let w = w * inv;
                            let vr = &vc[p * kvd + g * d..p * kvd + (g + 1) * d];
                            out.iter_mut().zip(vr).for_each(|(o, &vv)| *o += w * vv);
                        }
                    }
                }
                row0 += t;
            }
            matmul(m, h, qd, &att, &l.wo, &mut x, true);
            if let Some(b) = &l.bo {
                x.chunks_exact_mut(h).for_each(|r| r.iter_mut().zip(b).for_each(|(v, &bv)| *v += bv));
            }
            rms_norm(&x, &l.ln2, self.eps, &mut xn);
            matmul(m, 2 * inter, h, &xn, &l.wgu, &mut gu, false);
            for (a, r) in act.chunks_exact_mut(inter).zip(gu.chunks_exact(2 * inter)) {
                let (g, u) = r.split_at(inter);
                for ((o, &gv), &uv) in a.iter_mut().zip(g).zip(u) {
                    *o = gv / (1.0 + exp_f32(-gv)) * uv; // SwiGLU: silu(gate) · up
                }
            }
            matmul(m, h, inter, &act, &l.wd, &mut x, true);
        }
        if all {
            // Every token: final norm, lm_head, split per job.
            rms_norm(&x, &self.norm, self.eps, &mut xn); // the layers' scratch buffer, no copy of x
            let mut logits = vec![0f32; m * self.vocab];
            matmul(m, self.vocab, h, &xn, &self.lm_head, &mut logits, false);
            let mut out = Vec::with_capacity(jobs.len());
            let mut row = 0;
            for j in jobs.iter_mut() {
                let t = j.tokens.len();
                out.push(logits[row * self.vocab..(row + t) * self.vocab].to_vec());
                row += t;
                j.cache.len += t;
            }
            return out;
        }
        // The last token of each job: final norm, lm_head.
        let mut last = vec![0f32; jobs.len() * h];
        let mut row = 0;
        for (i, j) in jobs.iter_mut().enumerate() {
            row += j.tokens.len();
            last[i * h..(i + 1) * h].copy_from_slice(&x[(row - 1) * h..row * h]);
            j.cache.len += j.tokens.len();
        }
        let mut normed = vec![0f32; last.len()];
        rms_norm(&last, &self.norm, self.eps, &mut normed);
        vec![normed] // the caller applies the lm_head to every chunk's rows at once
    }
}

#[cfg(test)]
mod tests {
    use super::exp_f32;

    #[test]
    fn exp_matches_libm() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (exp_f32(x) as f64, (x as f64).exp());
            worst = worst.max(((a - b) / b).abs());
            x += 0.0173;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp_f32(-1e9), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(1e9), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
    }
}
