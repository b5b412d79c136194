//! The Llama/Qwen2 decoder: embeddings → N × (RMSNorm → GQA attention with RoPE → residual,
//! RMSNorm → SwiGLU MLP → residual) → RMSNorm → lm_head (Touvron et al. 2023; DeepSeekMath §2.3
//! uses this architecture at 7B). Qwen2 differs only by the q/k/v bias, which [`Config`] carries.
//!
//! # API (used by sampling, training and scoring)
//! - [`Llama::new`]`(cfg, vb)`: one model code for two weight sources — a `VarBuilder` over mmaped
//!   safetensors (inference, see `checkpoint::load`) or over a `VarMap` (trainable, see
//!   `checkpoint::init_varmap` / `checkpoint::load_varmap`).
//! - [`Llama::forward`]`(input_ids [B,T] u32, attention_mask Option<[B,T]> 1=token 0=pad)`
//!   → logits `[B,T,V]`. Position ids come from the mask (`cumsum(mask) - 1`), so left- and
//!   right-padded rows give the same logits for their real tokens as unpadded ones.
//! - [`Llama::forward_hidden`] → final (normed) hidden states `[B,T,H]`; [`Llama::logits`] maps
//!   hidden states to logits (chunked log-probs, value heads and reward models start here).
//! - KV-cache decoding: [`KvCache`] is an explicit value (per layer `k, v: [B, kv_heads, S, d]`,
//!   RoPE already applied). [`Llama::forward_step`]`(input_ids [B,t], positions [B,t] u32,
//!   attn_mask [B, S+t] over cache+new tokens, &mut cache)` appends to the cache and returns the
//!   logits of the last new position `[B,V]`; [`Llama::forward_step_hidden`] returns all `t` hidden
//!   states. Rows of a batch may have different prompt lengths (left padding with per-row
//!   positions). [`KvCache::select_rows`] drops finished rows so no compute is spent on them.
//!
//! Every op used has a backward (see `nn.rs`), so the same `forward` trains.
//!
//! # Gradient checkpointing
//! [`Llama::set_gradient_checkpointing`] trades compute for memory (Chen et al. 2016, "Training
//! Deep Nets with Sublinear Memory Cost"; `gradient_checkpointing_enable()` in transformers): each
//! decoder layer's forward runs without an autograd graph and only its input is kept; the backward
//! pass re-runs that one layer with a graph, backpropagates the incoming gradient through it, and
//! frees it again. Peak activation memory falls from every layer's intermediates to one layer's
//! plus one `[B,T,H]` tensor per layer, for about one extra forward pass of compute. The layer's
//! weight gradients are produced inside that inner backward, so a trainer must take gradients with
//! [`Llama::backward`] (which merges them in) instead of `loss.backward()`.
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fused;
use crate::nn::{apply_rope, attention_bias, compute_dtype, Embedding, Linear, RmsNorm, Rope};
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Device, Layout, Module, Shape, Tensor, Var};
use candle_nn::VarBuilder;
use std::sync::{Arc, Mutex};

/// Per-layer key/value cache for incremental decoding; an explicit value so a sampler can hold,
/// shrink ([`KvCache::select_rows`]) or drop it, and so training never carries hidden state.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    /// An empty cache for a model with `cfg.num_layers` layers.
    pub fn new(cfg: &Config) -> Self {
        KvCache { layers: vec![None; cfg.num_layers] }
    }

    /// Number of cached positions `S` (0 when empty).
    pub fn seq_len(&self) -> usize {
        self.layers.first().and_then(|l| l.as_ref()).map(|(k, _)| k.dims()[2]).unwrap_or(0)
    }

    /// Number of rows `B` held (0 when empty).
    pub fn batch_size(&self) -> usize {
        self.layers.first().and_then(|l| l.as_ref()).map(|(k, _)| k.dims()[0]).unwrap_or(0)
    }

    /// `(k, v)` of layer `i`, each `[B, kv_heads, S, head_dim]`.
    pub fn layer(&self, i: usize) -> Option<&(Tensor, Tensor)> {
        self.layers.get(i).and_then(|l| l.as_ref())
    }

    /// Keep only the given batch rows, in the given order (e.g. drop finished sequences). An empty
    /// list empties the cache.
    pub fn select_rows(&mut self, rows: &[usize]) -> Result<()> {
        let b = self.batch_size();
        if let Some(&bad) = rows.iter().find(|&&r| r >= b) {
            return Err(Error::BadInput { what: "rows", msg: format!("row {bad} out of range for batch {b}") });
        }
        if rows.is_empty() {
            self.layers.iter_mut().for_each(|l| *l = None);
            return Ok(());
        }
        for l in self.layers.iter_mut() {
            if let Some((k, v)) = l.take() {
                let idx = Tensor::from_vec(rows.iter().map(|&r| r as u32).collect::<Vec<_>>(), rows.len(), k.device())?;
                *l = Some((k.index_select(&idx, 0)?, v.index_select(&idx, 0)?));
            }
        }
        Ok(())
    }
}

/// Grouped-query self-attention with RoPE and optional q/k/v/o bias (public for gradient checks).
#[derive(Debug, Clone)]
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    /// Load the four projections under `vb` (`q_proj`, `k_proj`, `v_proj`, `o_proj`).
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let (h, d) = (cfg.hidden_size, cfg.head_dim);
        Ok(Attention {
            q_proj: Linear::new(h, cfg.num_heads * d, cfg.qkv_bias, vb.pp("q_proj"))?,
            k_proj: Linear::new(h, cfg.num_kv_heads * d, cfg.qkv_bias, vb.pp("k_proj"))?,
            v_proj: Linear::new(h, cfg.num_kv_heads * d, cfg.qkv_bias, vb.pp("v_proj"))?,
            o_proj: Linear::new(cfg.num_heads * d, h, cfg.o_bias, vb.pp("o_proj"))?,
            num_heads: cfg.num_heads,
            num_kv_heads: cfg.num_kv_heads,
            head_dim: d,
        })
    }

    /// `x: [B,t,H]`, `cos/sin: [B,1,t,d]`, `bias: [B,1,t,S]` (S = cached + t; see
    /// `nn::attention_bias`); `cache` is one layer's slot, appended to when given.
    pub fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        bias: &Tensor,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        Ok(self.forward2(&x.reshape((b * t, h))?, (b, t), cos, sin, bias, cache)?.reshape((b, t, ()))?)
    }

    /// [`Attention::forward`] on the flattened residual stream `x: [B·t, H]` → `[B·t, H]`.
    fn forward2(
        &self,
        x: &Tensor,
        (b, t): (usize, usize),
        cos: &Tensor,
        sin: &Tensor,
        bias: &Tensor,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let (nh, nkv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        if cache.is_none() {
            // Whole-sequence path (training, scoring, prefill without a cache): the fused kernels
            // of `fused.rs` in the projections' own [B, T, heads, d] layout, no transposes.
            let (q, k, v) = self.project(x, (b, t), cos, sin)?;
            return self.attend(&q, &k, &v, bias);
        }
        let q = self.q_proj.forward(x)?.reshape((b, t, nh, d))?.transpose(1, 2)?.contiguous()?;
        let k = self.k_proj.forward(x)?.reshape((b, t, nkv, d))?.transpose(1, 2)?.contiguous()?;
        let v = self.v_proj.forward(x)?.reshape((b, t, nkv, d))?.transpose(1, 2)?.contiguous()?;
        let q = apply_rope(&q, cos, sin)?;
        let mut k = apply_rope(&k, cos, sin)?;
        let mut v = v;
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            // Detached: when the weights are trainable `Var`s (sampling from the policy during RL),
            // a cache that kept its autograd history would chain every decoding step's cache and
            // activations together (O(steps^2) memory); decoding never needs gradients.
            *slot = Some((k.detach(), v.detach()));
        }
        let out = fused::attention_heads_first(&q, &k, &v, bias, 1.0 / (d as f64).sqrt())?;
        let out = out.transpose(1, 2)?.reshape((b * t, nh * d))?;
        Ok(self.o_proj.forward(&out)?)
    }
}

impl Attention {
    /// RoPE'd queries `[B,t,nh,d]` and keys, values `[B,t,nkv,d]` of `x: [B·t,H]`.
    fn project(&self, x: &Tensor, (b, t): (usize, usize), cos: &Tensor, sin: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let (nh, nkv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let q = self.q_proj.forward(x)?.reshape((b, t, nh, d))?;
        let k = self.k_proj.forward(x)?.reshape((b, t, nkv, d))?;
        let v = self.v_proj.forward(x)?.reshape((b, t, nkv, d))?;
        Ok((fused::rope(&q, cos, sin)?, fused::rope(&k, cos, sin)?, v))
    }

    /// Fused attention of `q: [B,t,nh,d]` over `k, v: [B,S,nkv,d]` (`bias: [B,1,t,S]`), then
    /// o_proj → `[B·t, H]`.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, t, nh, d) = q.dims4()?;
        let out = fused::attention(q, k, v, bias, 1.0 / (d as f64).sqrt())?;
        Ok(self.o_proj.forward(&out.reshape((b * t, nh * d))?)?)
    }
}

/// SwiGLU feed-forward block (public for gradient checks).
#[derive(Debug, Clone)]
pub struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    /// Load `gate_proj`, `up_proj`, `down_proj` under `vb`.
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Mlp {
            gate_proj: Linear::new(h, i, false, vb.pp("gate_proj"))?,
            up_proj: Linear::new(h, i, false, vb.pp("up_proj"))?,
            down_proj: Linear::new(i, h, false, vb.pp("down_proj"))?,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // SwiGLU (Shazeer 2020): down(silu(gate(x)) * up(x)).
        let g = fused::swiglu(&self.gate_proj.forward(x)?, &self.up_proj.forward(x)?)?;
        self.down_proj.forward(&g)
    }
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        Ok(DecoderLayer {
            input_layernorm: RmsNorm::new(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("input_layernorm"))?,
            self_attn: Attention::new(cfg, vb.pp("self_attn"))?,
            post_attention_layernorm: RmsNorm::new(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("post_attention_layernorm"))?,
            mlp: Mlp::new(cfg, vb.pp("mlp"))?,
        })
    }

    /// Every weight tensor of the layer (the trainable `Var`s when built from a `VarMap`).
    fn weights(&self) -> Vec<&Tensor> {
        let a = &self.self_attn;
        let m = &self.mlp;
        let mut w = vec![&self.input_layernorm.weight, &self.post_attention_layernorm.weight];
        for l in [&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj, &m.gate_proj, &m.up_proj, &m.down_proj] {
            w.push(&l.weight);
            if let Some(b) = &l.bias {
                w.push(b);
            }
        }
        w
    }

    /// The same layer with detached weights: its forward records no autograd graph.
    fn detached(&self) -> DecoderLayer {
        let a = &self.self_attn;
        DecoderLayer {
            input_layernorm: self.input_layernorm.detached(),
            self_attn: Attention {
                q_proj: a.q_proj.detached(),
                k_proj: a.k_proj.detached(),
                v_proj: a.v_proj.detached(),
                o_proj: a.o_proj.detached(),
                ..a.clone()
            },
            post_attention_layernorm: self.post_attention_layernorm.detached(),
            mlp: Mlp {
                gate_proj: self.mlp.gate_proj.detached(),
                up_proj: self.mlp.up_proj.detached(),
                down_proj: self.mlp.down_proj.detached(),
            },
        }
    }

    /// Checkpointed forward (see the module docs): the value of `forward(x)`, computed without a
    /// graph; in the backward pass the layer is recomputed and its weight gradients go to `stash`.
    fn forward_checkpointed(
        &self,
        x: &Tensor,
        bt: (usize, usize),
        cos: &Tensor,
        sin: &Tensor,
        bias: &Tensor,
        stash: &CheckpointGrads,
    ) -> Result<Tensor> {
        let out = self.detached().forward(&x.detach(), bt, cos, sin, bias, None)?.contiguous()?;
        let op = LayerCheckpoint {
            layer: self.clone(),
            bt,
            cos: cos.clone(),
            sin: sin.clone(),
            bias: bias.clone(),
            stash: stash.clone(),
            out: Mutex::new(Some(out)),
        };
        Ok(x.apply_op1(op)?)
    }

    /// One layer on the flattened residual stream `x: [B·t, H]` (`bt = (B, t)`) → `[B·t, H]`.
    fn forward(
        &self,
        x: &Tensor,
        bt: (usize, usize),
        cos: &Tensor,
        sin: &Tensor,
        bias: &Tensor,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let h = self.self_attn.forward2(&self.input_layernorm.forward(x)?, bt, cos, sin, bias, cache)?;
        self.finish(&(x + h)?)
    }

    /// The MLP half of the layer on the post-attention residual stream.
    fn finish(&self, x: &Tensor) -> Result<Tensor> {
        let m = self.mlp.forward(&self.post_attention_layernorm.forward(x)?)?;
        Ok((x + m)?)
    }

    /// One layer of [`Llama::forward_hidden_shared_prefix`]: the prefixes `xp: [P,Tp,H]` as a
    /// whole sequence, then the suffixes `xs: [B,Ts,H]` attending over their own prefix's keys
    /// and values (`rows: [B]` picks it) followed by their own. Differentiable throughout: a
    /// prefix's gradient sums over the suffixes that read it.
    #[allow(clippy::too_many_arguments)]
    fn forward_shared(
        &self,
        xp: &Tensor,
        xs: Option<&Tensor>,
        rows: &Tensor,
        (bt_p, cos_p, sin_p, bias_p): ((usize, usize), &Tensor, &Tensor, &Tensor),
        (bt_s, cos_s, sin_s, bias_s): ((usize, usize), &Tensor, &Tensor, &Tensor),
    ) -> Result<(Tensor, Option<Tensor>)> {
        let a = &self.self_attn;
        let (q, k, v) = a.project(&self.input_layernorm.forward(xp)?, bt_p, cos_p, sin_p)?;
        let hp = a.attend(&q, &k, &v, bias_p)?;
        let outp = self.finish(&(xp + hp)?)?;
        let Some(xs) = xs else { return Ok((outp, None)) };
        let (qs, ks, vs) = a.project(&self.input_layernorm.forward(xs)?, bt_s, cos_s, sin_s)?;
        let ks = Tensor::cat(&[&k.index_select(rows, 0)?, &ks], 1)?;
        let vs = Tensor::cat(&[&v.index_select(rows, 0)?, &vs], 1)?;
        let hs = a.attend(&qs, &ks, &vs, bias_s)?;
        Ok((outp, Some(self.finish(&(xs + hs)?)?)))
    }
}

/// Weight gradients produced by the backward passes of checkpointed layers, waiting for
/// [`Llama::backward`] to merge them into the step's `GradStore`: (weight, gradient) pairs.
#[derive(Clone, Default)]
struct CheckpointGrads(Arc<Mutex<Vec<(Tensor, Tensor)>>>);

impl std::fmt::Debug for CheckpointGrads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointGrads")
    }
}

impl CheckpointGrads {
    fn take(&self) -> Result<Vec<(Tensor, Tensor)>> {
        let mut g = self.0.lock().map_err(|_| Error::Msg("checkpoint gradient lock poisoned".into()))?;
        Ok(std::mem::take(&mut *g))
    }
}

/// `y = op(x)`: the value of `out` (one layer's output, computed without a graph, handed over
/// once and dropped after the forward copies it, so the graph keeps only `x` and `y`) with the
/// gradient of `layer(x)` in the backward pass. See the module docs.
struct LayerCheckpoint {
    layer: DecoderLayer,
    bt: (usize, usize),
    cos: Tensor,
    sin: Tensor,
    bias: Tensor,
    stash: CheckpointGrads,
    out: Mutex<Option<Tensor>>,
}

impl LayerCheckpoint {
    fn take_out(&self) -> candle_core::Result<Tensor> {
        self.out
            .lock()
            .map_err(|_| candle_core::Error::Msg("checkpointed layer: lock poisoned".into()))?
            .take()
            .ok_or_else(|| candle_core::Error::Msg("checkpointed layer: forward run twice".into()))
    }
}

impl candle_core::CustomOp1 for LayerCheckpoint {
    fn name(&self) -> &'static str {
        "checkpointed-decoder-layer"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = self.take_out()?;
        let (storage, l) = out.storage_and_layout();
        match &*storage {
            candle_core::Storage::Cpu(s) => fused::copy_cpu_view(s, l),
            _ => candle_core::bail!("checkpointed layer: output not on the CPU"),
        }
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, _: &candle_core::CudaStorage, _: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let out = self.take_out()?;
        let (storage, l) = out.storage_and_layout();
        match &*storage {
            candle_core::Storage::Cuda(s) => fused::copy_cuda_view(s, l),
            _ => candle_core::bail!("checkpointed layer: output not on the GPU"),
        }
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // Recompute this layer with a graph from a fresh leaf, push the incoming gradient through
        // it (`backward` seeds ones, so d(y * g)/dy = g), and hand the weight gradients over.
        let xv = Var::from_tensor(&x.detach())?;
        let y = self
            .layer
            .forward(xv.as_tensor(), self.bt, &self.cos, &self.sin, &self.bias, None)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let mut grads = (y * grad.detach())?.backward()?;
        let gx = grads.remove(xv.as_tensor());
        let mut stash = self.stash.0.lock().map_err(|_| candle_core::Error::Msg("checkpoint gradient lock poisoned".into()))?;
        for w in self.layer.weights() {
            if let Some(g) = grads.remove(w) {
                stash.push((w.clone(), g));
            }
        }
        Ok(gx)
    }
}

/// A Llama/Qwen2 causal language model. See the module docs for the API.
#[derive(Debug, Clone)]
pub struct Llama {
    cfg: Config,
    embed_tokens: Embedding,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: Rope,
    dtype: DType,
    device: Device,
    /// Set when gradient checkpointing is on (see the module docs).
    checkpoint: Option<CheckpointGrads>,
}

/// A `[B, T]` mask tensor (any dtype) as host rows of 0/1 floats.
fn mask_rows(mask: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(mask.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

/// Position ids from a padding mask: `cumsum(mask) - 1`, clamped at 0 (pads get 0; they are
/// never attended to).
pub fn positions_from_mask(mask: &[Vec<f32>]) -> Vec<Vec<u32>> {
    mask.iter()
        .map(|row| {
            let mut c = 0u32;
            row.iter()
                .map(|&m| {
                    if m != 0.0 {
                        c += 1;
                    }
                    c.saturating_sub(1)
                })
                .collect()
        })
        .collect()
}

impl Llama {
    /// Build the model from `vb` (mmaped safetensors or a `VarMap`); tensor names follow HF.
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let device = vb.device().clone();
        let dtype = vb.dtype();
        let m = vb.pp("model");
        let embed_tokens = Embedding::new(cfg.vocab_size, cfg.hidden_size, m.pp("embed_tokens"))?;
        let layers = (0..cfg.num_layers)
            .map(|i| DecoderLayer::new(cfg, m.pp(format!("layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::new(cfg.hidden_size, cfg.rms_norm_eps, m.pp("norm"))?;
        let lm_head = if cfg.tie_word_embeddings {
            Linear { weight: embed_tokens.weight.clone(), bias: None }
        } else {
            Linear::new(cfg.hidden_size, cfg.vocab_size, false, vb.pp("lm_head"))?
        };
        let rope = Rope::new(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling_factor, &device)?;
        Ok(Llama { cfg: cfg.clone(), embed_tokens, layers, norm, lm_head, rope, dtype, device, checkpoint: None })
    }

    /// Turn gradient checkpointing on or off (see the module docs). With it on, whole-sequence
    /// forwards whose input carries a graph keep only each layer's input, and gradients must be
    /// taken with [`Llama::backward`].
    pub fn set_gradient_checkpointing(&mut self, on: bool) {
        self.checkpoint = if on { Some(CheckpointGrads::default()) } else { None };
    }

    /// The same model over detached weights (shared storage, no copy): its forwards record no
    /// autograd graph, which is what sampling and scoring with a model under training want.
    /// Unlike a frozen copy it follows the optimizer's in-place updates of the weights.
    pub fn detached(&self) -> Llama {
        Llama {
            cfg: self.cfg.clone(),
            embed_tokens: Embedding { weight: self.embed_tokens.weight.detach() },
            layers: self.layers.iter().map(DecoderLayer::detached).collect(),
            norm: self.norm.detached(),
            lm_head: self.lm_head.detached(),
            rope: self.rope.clone(),
            dtype: self.dtype,
            device: self.device.clone(),
            checkpoint: None,
        }
    }

    /// Whether gradient checkpointing is on.
    pub fn gradient_checkpointing(&self) -> bool {
        self.checkpoint.is_some()
    }

    /// `loss.backward()`, plus the weight gradients of checkpointed layers (identical to a plain
    /// backward when checkpointing is off). Use this for every loss that depends on this model.
    pub fn backward(&self, loss: &Tensor) -> Result<GradStore> {
        let Some(stash) = &self.checkpoint else {
            return Ok(loss.backward()?);
        };
        stash.take()?; // leftovers of a backward taken without this method
        let mut grads = loss.backward()?;
        for (w, g) in stash.take()? {
            let sum = match grads.remove(&w) {
                Some(prev) => (prev + g)?,
                None => g,
            };
            grads.insert(&w, sum);
        }
        Ok(grads)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Weight dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// All weights with their HF names, in [`Config::tensor_shapes`] order (tied lm_head omitted,
    /// as `save_pretrained` does).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("model.embed_tokens.weight".to_string(), self.embed_tokens.weight.clone())];
        let lin = |out: &mut Vec<(String, Tensor)>, name: String, l: &Linear| {
            out.push((format!("{name}.weight"), l.weight.clone()));
            if let Some(b) = &l.bias {
                out.push((format!("{name}.bias"), b.clone()));
            }
        };
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            out.push((format!("{p}.input_layernorm.weight"), layer.input_layernorm.weight.clone()));
            let a = &layer.self_attn;
            for (n, l) in [("q_proj", &a.q_proj), ("k_proj", &a.k_proj), ("v_proj", &a.v_proj), ("o_proj", &a.o_proj)] {
                lin(&mut out, format!("{p}.self_attn.{n}"), l);
            }
            out.push((format!("{p}.post_attention_layernorm.weight"), layer.post_attention_layernorm.weight.clone()));
            for (n, l) in [("gate_proj", &layer.mlp.gate_proj), ("up_proj", &layer.mlp.up_proj), ("down_proj", &layer.mlp.down_proj)] {
                lin(&mut out, format!("{p}.mlp.{n}"), l);
            }
        }
        out.push(("model.norm.weight".to_string(), self.norm.weight.clone()));
        if !self.cfg.tie_word_embeddings {
            out.push(("lm_head.weight".to_string(), self.lm_head.weight.clone()));
        }
        out
    }

    fn check_ids(&self, input_ids: &Tensor) -> Result<(usize, usize)> {
        let (b, t) = input_ids.dims2().map_err(|_| Error::BadInput {
            what: "input_ids",
            msg: format!("expected shape [B, T], got {:?}", input_ids.dims()),
        })?;
        if input_ids.dtype() != DType::U32 {
            return Err(Error::BadInput { what: "input_ids", msg: format!("expected u32, got {:?}", input_ids.dtype()) });
        }
        if b * t > 0 {
            let max = input_ids.flatten_all()?.max(0)?.to_scalar::<u32>()? as usize;
            if max >= self.cfg.vocab_size {
                return Err(Error::BadInput {
                    what: "input_ids",
                    msg: format!("token id {max} >= vocab_size {}", self.cfg.vocab_size),
                });
            }
        }
        Ok((b, t))
    }

    fn check_positions(&self, positions: &[Vec<u32>]) -> Result<()> {
        let max = positions.iter().flat_map(|r| r.iter().copied()).max().unwrap_or(0) as usize;
        if max >= self.cfg.max_position_embeddings {
            return Err(Error::ContextTooLong { position: max, max: self.cfg.max_position_embeddings });
        }
        Ok(())
    }

    fn run_layers(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        bias: &Tensor,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (cos, sin) = self.rope.cos_sin(positions, self.dtype)?;
        let (b, t) = input_ids.dims2()?;
        // The residual stream stays `[B·T, H]` through the layers (see `Linear::forward`).
        let mut x = self.embed_tokens.forward(&input_ids.flatten_all()?)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = match (&self.checkpoint, slot) {
                (Some(stash), None) if x.track_op() => {
                    layer.forward_checkpointed(&x, (b, t), &cos, &sin, bias, stash)?
                }
                (_, slot) => layer.forward(&x, (b, t), &cos, &sin, bias, slot)?,
            };
        }
        Ok(self.norm.forward(&x)?.reshape((b, t, ()))?)
    }

    /// Final hidden states `[B,T,H]` (after the last RMSNorm) for a padded batch.
    pub fn forward_hidden(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, t) = self.check_ids(input_ids)?;
        let mask = match attention_mask {
            Some(m) => {
                if m.dims() != [b, t] {
                    return Err(Error::BadInput {
                        what: "attention_mask",
                        msg: format!("expected shape [{b}, {t}] like input_ids, got {:?}", m.dims()),
                    });
                }
                mask_rows(m)?
            }
            None => vec![vec![1.0; t]; b],
        };
        let pos = positions_from_mask(&mask);
        self.check_positions(&pos)?;
        let positions = Tensor::new(pos, &self.device)?;
        let bias = attention_bias(&mask, 0, t, compute_dtype(self.dtype), &self.device)?;
        self.run_layers(input_ids, &positions, &bias, None)
    }

    /// Final hidden states of sequences that share prefixes, computing each prefix once (the G
    /// samples of one prompt in GRPO): sequence `b` is prefix `rows[b]` followed by suffix `b`.
    /// `prefix_ids, prefix_mask: [P,Tp]` are left-padded (every prefix ends at column `Tp-1`),
    /// `suffix_ids, suffix_mask: [B,Ts]` right-padded (`Ts` may be 0). Returns the prefix hidden
    /// states `[P,Tp,H]` and the suffix ones `[B,Ts,H]` (`None` when `Ts = 0`), equal to
    /// [`Llama::forward_hidden`] on the concatenated rows, at `P·Tp + B·Ts` instead of
    /// `B·(Tp+Ts)` positions. Ignores gradient checkpointing (callers fall back to
    /// `forward_hidden` when it is on).
    pub fn forward_hidden_shared_prefix(
        &self,
        prefix_ids: &Tensor,
        prefix_mask: &Tensor,
        rows: &[usize],
        suffix_ids: &Tensor,
        suffix_mask: &Tensor,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (p, tp) = self.check_ids(prefix_ids)?;
        let (b, ts) = self.check_ids(suffix_ids)?;
        let bad = |what: &'static str, msg: String| Error::BadInput { what, msg };
        if prefix_mask.dims() != [p, tp] {
            return Err(bad("prefix_mask", format!("expected shape [{p}, {tp}], got {:?}", prefix_mask.dims())));
        }
        if suffix_mask.dims() != [b, ts] {
            return Err(bad("suffix_mask", format!("expected shape [{b}, {ts}], got {:?}", suffix_mask.dims())));
        }
        if rows.len() != b || rows.iter().any(|&r| r >= p) {
            return Err(bad("rows", format!("need {b} prefix indices below {p}, got {rows:?}")));
        }
        if tp == 0 {
            return Err(bad("prefix_ids", "prefixes must not be empty".into()));
        }
        let pm = mask_rows(prefix_mask)?;
        let pos_p = positions_from_mask(&pm);
        self.check_positions(&pos_p)?;
        let lens: Vec<u32> = pm.iter().map(|r| r.iter().filter(|&&m| m != 0.0).count() as u32).collect();
        let sm = mask_rows(suffix_mask)?;
        let pos_s: Vec<Vec<u32>> =
            rows.iter().map(|&r| (0..ts as u32).map(|j| lens[r] + j).collect()).collect();
        self.check_positions(&pos_s)?;
        let dt = compute_dtype(self.dtype);
        let (cos_p, sin_p) = self.rope.cos_sin(&Tensor::new(pos_p, &self.device)?, self.dtype)?;
        let bias_p = attention_bias(&pm, 0, tp, dt, &self.device)?;
        let mut xp = self.embed_tokens.forward(&prefix_ids.flatten_all()?)?;
        let idx = Tensor::from_vec(rows.iter().map(|&r| r as u32).collect::<Vec<_>>(), b, &self.device)?;
        let mut xs = None;
        let (mut cos_s, mut sin_s, mut bias_s) = (cos_p.clone(), sin_p.clone(), bias_p.clone());
        if ts > 0 && b > 0 {
            (cos_s, sin_s) = self.rope.cos_sin(&Tensor::new(pos_s, &self.device)?, self.dtype)?;
            let keys: Vec<Vec<f32>> = rows.iter().zip(&sm).map(|(&r, s)| [pm[r].as_slice(), s].concat()).collect();
            bias_s = attention_bias(&keys, tp, ts, dt, &self.device)?;
            xs = Some(self.embed_tokens.forward(&suffix_ids.flatten_all()?)?);
        }
        for layer in &self.layers {
            let (np, ns) = layer.forward_shared(
                &xp,
                xs.as_ref(),
                &idx,
                ((p, tp), &cos_p, &sin_p, &bias_p),
                ((b, ts), &cos_s, &sin_s, &bias_s),
            )?;
            (xp, xs) = (np, ns);
        }
        let hp = self.norm.forward(&xp)?.reshape((p, tp, ()))?;
        let hs = xs.map(|x| self.norm.forward(&x)?.reshape((b, ts, ()))).transpose()?;
        Ok((hp, hs))
    }

    /// Logits `[B,T,V]` for a padded batch (`attention_mask`: 1 = token, 0 = pad).
    pub fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self.forward_hidden(input_ids, attention_mask)?;
        self.logits(&h)
    }

    /// Apply the lm_head to hidden states `[..., H]` → `[..., V]`.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(self.lm_head.forward(hidden)?)
    }

    /// The lm_head weight `[V, H]` (the embedding when tied).
    pub fn lm_head_weight(&self) -> &Tensor {
        &self.lm_head.weight
    }

    /// Incremental step: run `t` new tokens per row on top of `cache`, appending their keys and
    /// values; returns hidden states `[B,t,H]`. `positions [B,t]` (u32) are per-row position ids;
    /// `attn_mask [B, S+t]` marks which cached and new slots are real tokens (1) or padding (0).
    pub fn forward_step_hidden(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        attn_mask: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        let (b, t) = self.check_ids(input_ids)?;
        let past = cache.seq_len();
        if past > 0 && cache.batch_size() != b {
            return Err(Error::BadInput {
                what: "input_ids",
                msg: format!("batch {b} but cache holds {} rows", cache.batch_size()),
            });
        }
        if positions.dims() != [b, t] {
            return Err(Error::BadInput {
                what: "positions",
                msg: format!("expected shape [{b}, {t}], got {:?}", positions.dims()),
            });
        }
        if attn_mask.dims() != [b, past + t] {
            return Err(Error::BadInput {
                what: "attn_mask",
                msg: format!("expected shape [{b}, {}] (cached {past} + new {t}), got {:?}", past + t, attn_mask.dims()),
            });
        }
        let positions = positions.to_dtype(DType::U32)?;
        self.check_positions(&positions.to_vec2::<u32>()?)?;
        let mask = mask_rows(attn_mask)?;
        let bias = attention_bias(&mask, past, t, compute_dtype(self.dtype), &self.device)?;
        self.run_layers(input_ids, &positions, &bias, Some(cache))
    }

    /// Like [`Llama::forward_step_hidden`] but returns the logits of the last new position `[B,V]`
    /// (all a sampler needs; skips the lm_head for the other `t - 1` positions).
    pub fn forward_step(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        attn_mask: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        let h = self.forward_step_hidden(input_ids, positions, attn_mask, cache)?;
        let t = h.dim(1)?;
        let last = h.narrow(1, t - 1, 1)?.squeeze(1)?;
        self.logits(&last)
    }
}
