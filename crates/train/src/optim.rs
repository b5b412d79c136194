//! AdamW with fp32 master weights and fp32 moments, gradient accumulation over micro-batches,
//! global-norm clipping and NaN/inf detection.
//!
//! Algorithm: AdamW with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay
//! Regularization", ICLR 2019, Algorithm 2), in the exact operation order of PyTorch's
//! `torch.optim.AdamW` (single-tensor path): `p *= 1 - lr*wd`; `m = b1*m + (1-b1)*g`;
//! `v = b2*v + (1-b2)*g^2`; `p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)`.
//! Defaults are DeepSeekMath's (§2.3 and §3.1: beta1 0.9, beta2 0.95, weight decay 0.1).
//!
//! Why master weights: the paper's RL stage uses lr 1e-6 (§4.2). A bf16 weight of magnitude 0.01
//! has a spacing of 6e-5, so `w - 1e-6` rounds back to `w` and the update is lost. We keep an fp32
//! copy of every non-fp32 parameter, apply the update there, and write the rounded value back into
//! the model's `Var`; small updates accumulate in the master until they show in bf16.
//!
//! Weight decay is applied to parameters of rank >= 2 only (matrices, embeddings) unless
//! `decay_all` is set: decaying RMSNorm gains towards 0 is harmful and is the common practice
//! (nanoGPT, Megatron). This is a choice the paper does not state.
use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// AdamW hyper-parameters (the learning rate comes from the schedule at each step).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// First-moment decay (paper §2.3: 0.9).
    pub beta1: f64,
    /// Second-moment decay (paper §2.3: 0.95).
    pub beta2: f64,
    /// Denominator epsilon (PyTorch default 1e-8).
    pub eps: f64,
    /// Decoupled weight decay (paper §2.3: 0.1).
    pub weight_decay: f64,
    /// Decay rank-1 parameters (norm gains, biases) too.
    pub decay_all: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, decay_all: false }
    }
}

/// One parameter: the model's variable, its fp32 master copy (None when the variable is fp32
/// itself, to save memory) and its fp32 moments.
struct Param {
    name: String,
    var: Var,
    master: Option<Tensor>,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

impl Param {
    fn master_f32(&self) -> Tensor {
        match &self.master {
            Some(t) => t.clone(),
            None => self.var.as_tensor().detach(),
        }
    }
}

/// AdamW over named variables.
pub struct AdamW {
    cfg: AdamWConfig,
    params: Vec<Param>,
    step: u64,
    /// Update CPU parameters in one host loop (off only to test it against the tensor path).
    host_path: bool,
}

impl AdamW {
    /// Build over `vars` (name, variable). Names must be unique; they key the saved state.
    /// Parameters are kept in name order so the state file and the update order are deterministic.
    pub fn new(mut vars: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for w in vars.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(Error::Msg(format!("duplicate parameter name `{}`", w[0].0)));
            }
        }
        let mut params = Vec::with_capacity(vars.len());
        for (name, var) in vars {
            let t = var.as_tensor();
            let master = match t.dtype() {
                DType::F32 => None,
                _ => Some(t.to_dtype(DType::F32)?.detach()),
            };
            let m = Tensor::zeros(t.shape(), DType::F32, t.device())?;
            let v = m.clone();
            let decay = cfg.decay_all || t.rank() >= 2;
            params.push(Param { name, var, master, m, v, decay });
        }
        Ok(AdamW { cfg, params, step: 0, host_path: true })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// Number of optimizer steps taken.
    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// Names of the parameters, in update order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|p| p.name.as_str())
    }

    /// The variables, in update order (for the gradient accumulator).
    pub fn vars(&self) -> Vec<(String, Var)> {
        self.params.iter().map(|p| (p.name.clone(), p.var.clone())).collect()
    }

    /// Total parameter count.
    pub fn num_params(&self) -> usize {
        self.params.iter().map(|p| p.var.as_tensor().elem_count()).sum()
    }

    /// Apply one update with learning rate `lr` from averaged, already clipped gradients.
    /// Parameters with no gradient (unused this step) are left untouched, moments included, as
    /// PyTorch does for `p.grad is None`.
    pub fn step(&mut self, grads: &Grads, lr: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let bc1 = 1.0 - b1.powi(t);
        let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
        let step_size = lr / bc1;
        for (i, p) in self.params.iter_mut().enumerate() {
            let Some(g) = grads.grads.get(i).and_then(|g| g.as_ref()) else { continue };
            if self.host_path && g.device().is_cpu() {
                // One pass over host memory instead of a dozen tensor ops (each allocating):
                // the same f32 operations in the same order as the tensor path below (candle's
                // scalar ops are `x * a + b` with `a, b` rounded to f32).
                let wd = if p.decay && self.cfg.weight_decay != 0.0 { Some((1.0 - lr * self.cfg.weight_decay) as f32) } else { None };
                let (b1f, nb1, b2f, nb2) = (b1 as f32, (1.0 - b1) as f32, b2 as f32, (1.0 - b2) as f32);
                let (inv_bc2, eps, ss) = ((1.0 / bc2_sqrt) as f32, self.cfg.eps as f32, step_size as f32);
                let shape = p.var.as_tensor().shape().clone();
                let dev = g.device().clone();
                let host = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?) };
                let (mut w, mut m, mut v, g) = (host(&p.master_f32())?, host(&p.m)?, host(&p.v)?, host(g)?);
                for j in 0..w.len() {
                    let mut wj = w[j];
                    if let Some(d) = wd {
                        wj = wj * d + 0.0;
                    }
                    let gj = g[j];
                    m[j] = (m[j] * b1f + 0.0) + (gj * nb1 + 0.0);
                    v[j] = (v[j] * b2f + 0.0) + (gj * gj * nb2 + 0.0);
                    let denom = (v[j].sqrt() * inv_bc2 + 0.0) * 1.0 + eps;
                    w[j] = wj - ((m[j] / denom) * ss + 0.0);
                }
                p.m = Tensor::from_vec(m, &shape, &dev)?;
                p.v = Tensor::from_vec(v, &shape, &dev)?;
                let w = Tensor::from_vec(w, &shape, &dev)?;
                match &mut p.master {
                    Some(master) => {
                        p.var.set(&w.to_dtype(p.var.dtype())?)?;
                        *master = w;
                    }
                    None => p.var.set(&w)?,
                }
                continue;
            }
            let mut w = p.master_f32();
            if p.decay && self.cfg.weight_decay != 0.0 {
                w = w.affine(1.0 - lr * self.cfg.weight_decay, 0.0)?;
            }
            p.m = ((&p.m * b1)? + (g * (1.0 - b1))?)?;
            p.v = ((&p.v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let denom = ((p.v.sqrt()? / bc2_sqrt)? + self.cfg.eps)?;
            let w = (w - ((&p.m / denom)? * step_size)?)?;
            match &mut p.master {
                Some(master) => {
                    p.var.set(&w.to_dtype(p.var.dtype())?)?;
                    *master = w;
                }
                None => p.var.set(&w)?,
            }
        }
        Ok(())
    }

    /// The optimizer state as named fp32 tensors: `exp_avg.<name>`, `exp_avg_sq.<name>` and,
    /// for non-fp32 variables, `master.<name>`. Saved as safetensors by the checkpoint.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::with_capacity(self.params.len() * 3);
        for p in &self.params {
            out.push((format!("exp_avg.{}", p.name), p.m.clone()));
            out.push((format!("exp_avg_sq.{}", p.name), p.v.clone()));
            if let Some(m) = &p.master {
                out.push((format!("master.{}", p.name), m.clone()));
            }
        }
        Ok(out)
    }

    /// Restore the state written by [`AdamW::state_tensors`] after `steps_taken` steps. The
    /// variables are set from the master copies so the model matches the saved optimizer exactly.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, steps_taken: u64) -> Result<()> {
        let get = |key: String, like: &Tensor| -> Result<Tensor> {
            let t = state
                .get(&key)
                .ok_or_else(|| Error::Msg(format!("optimizer state is missing tensor `{key}`")))?;
            if t.shape() != like.shape() {
                return Err(Error::Msg(format!(
                    "optimizer state tensor `{key}` has shape {:?}, the model has {:?}",
                    t.shape(),
                    like.shape()
                )));
            }
            Ok(t.to_dtype(DType::F32)?.to_device(like.device())?)
        };
        for p in &mut self.params {
            let like = p.var.as_tensor().clone();
            p.m = get(format!("exp_avg.{}", p.name), &like)?;
            p.v = get(format!("exp_avg_sq.{}", p.name), &like)?;
            if let Some(master) = &mut p.master {
                *master = get(format!("master.{}", p.name), &like)?;
                p.var.set(&master.to_dtype(p.var.dtype())?)?;
            }
        }
        self.step = steps_taken;
        Ok(())
    }
}

/// Averaged fp32 gradients of one optimizer step, aligned with [`AdamW`]'s parameter order.
#[derive(Clone)]
pub struct Grads {
    grads: Vec<Option<Tensor>>,
}

impl Grads {
    /// Global L2 norm over all gradients (the quantity `clip_grad_norm_` measures).
    pub fn global_norm(&self) -> Result<f64> {
        let mut sq = 0f64;
        for g in self.grads.iter().flatten() {
            sq += g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        }
        Ok(sq.sqrt())
    }

    /// Scale all gradients so their global norm is at most `max_norm` (PyTorch's
    /// `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when it is below 1). Returns the norm
    /// before clipping. A non-finite norm is an error: the step must not be applied.
    pub fn clip(&mut self, max_norm: f64, step: u64) -> Result<f64> {
        let norm = self.global_norm()?;
        if !norm.is_finite() {
            return Err(Error::NonFinite { what: "gradient norm".into(), step, value: norm });
        }
        if max_norm > 0.0 {
            let coef = max_norm / (norm + 1e-6);
            if coef < 1.0 {
                for g in self.grads.iter_mut().flatten() {
                    *g = (&*g * coef)?;
                }
            }
        }
        Ok(norm)
    }

    /// The gradient of parameter `i` (in [`AdamW`] order), if it received one.
    pub fn get(&self, i: usize) -> Option<&Tensor> {
        self.grads.get(i).and_then(|g| g.as_ref())
    }
}

/// Sums gradients of several micro-batches (each weighted) into fp32, so an optimizer step can
/// cover a batch that does not fit in memory at once. Gradients are converted to fp32 before
/// summing so bf16 rounding does not compound over micro-batches.
pub struct GradAccumulator {
    vars: Vec<Var>,
    sums: Vec<Option<Tensor>>,
    micro_batches: usize,
}

impl GradAccumulator {
    /// An empty accumulator for the optimizer's parameters.
    pub fn new(opt: &AdamW) -> Self {
        let vars: Vec<Var> = opt.params.iter().map(|p| p.var.clone()).collect();
        let sums = vec![None; vars.len()];
        GradAccumulator { vars, sums, micro_batches: 0 }
    }

    /// Add `weight * grad` for every parameter present in `store` (typically
    /// `weight = 1 / micro_batches`, or this micro-batch's share of the step's tokens). The store is
    /// consumed one gradient at a time, so the backward pass's gradients and their weighted fp32
    /// copies are never all alive together (at most one extra tensor), and a weight of 1 on the
    /// first micro-batch keeps the gradient itself without copying it.
    pub fn add(&mut self, mut store: GradStore, weight: f64) -> Result<()> {
        for (var, sum) in self.vars.iter().zip(self.sums.iter_mut()) {
            if let Some(g) = store.remove(var.as_tensor()) {
                let g = g.to_dtype(DType::F32)?;
                let g = if weight == 1.0 { g } else { (g * weight)? };
                *sum = Some(match sum.take() {
                    Some(s) => (s + g)?,
                    None => g,
                });
            }
        }
        self.micro_batches += 1;
        Ok(())
    }

    /// Micro-batches added since the last [`GradAccumulator::take`].
    pub fn micro_batches(&self) -> usize {
        self.micro_batches
    }

    /// The accumulated gradients; the accumulator is reset.
    pub fn take(&mut self) -> Grads {
        self.micro_batches = 0;
        let grads = std::mem::replace(&mut self.sums, vec![None; self.vars.len()]);
        Grads { grads }
    }
}

/// Read a scalar loss and fail with [`Error::NonFinite`] if it is NaN or infinite.
pub fn finite_loss(loss: &Tensor, step: u64) -> Result<f64> {
    let v = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if !v.is_finite() {
        return Err(Error::NonFinite { what: "loss".into(), step, value: v });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn one_step_grads(opt: &AdamW, loss: &Tensor) -> Grads {
        let mut acc = GradAccumulator::new(opt);
        acc.add(loss.backward().unwrap(), 1.0).unwrap();
        acc.take()
    }

    /// Three AdamW steps on f(w) = sum((x @ w + b - y)^2), against PyTorch 2.15 (float64):
    ///
    /// ```python
    /// import torch
    /// torch.set_default_dtype(torch.float64)
    /// w = torch.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True)
    /// b = torch.tensor([0.1, -0.2], requires_grad=True)
    /// x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]]); y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    /// opt = torch.optim.AdamW([{"params": [w]}, {"params": [b], "weight_decay": 0.0}],
    ///                         lr=0.1, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, foreach=False)
    /// for _ in range(3):
    ///     opt.zero_grad(); (((x @ w + b) - y) ** 2).sum().backward(); opt.step()
    /// print(w.tolist(), b.tolist())
    /// ```
    /// printed `TORCH_W` / `TORCH_B` below. `reference_adamw` (a float64 transcription of the
    /// update rule with analytic gradients) must agree with them too.
    #[test]
    fn adamw_matches_pytorch_update_rule() {
        let dev = Device::Cpu;
        let w =
            Var::from_tensor(&Tensor::new(&[[0.5f32, -1.0], [2.0, 0.25]], &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::new(&[0.1f32, -0.2], &dev).unwrap()).unwrap();
        let x = Tensor::new(&[[1.0f32, 2.0], [-1.0, 0.5]], &dev).unwrap();
        let y = Tensor::new(&[[1.0f32, 0.0], [0.0, 1.0]], &dev).unwrap();
        let cfg =
            AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, decay_all: false };
        let mut opt =
            AdamW::new(vec![("w".into(), w.clone()), ("b".into(), b.clone())], cfg).unwrap();
        for _ in 0..3 {
            let pred = x.matmul(w.as_tensor()).unwrap().broadcast_add(b.as_tensor()).unwrap();
            let loss = (pred - &y).unwrap().sqr().unwrap().sum_all().unwrap();
            let g = one_step_grads(&opt, &loss);
            opt.step(&g, 0.1).unwrap();
        }
        const TORCH_W: [f64; 4] =
            [0.18982710550726226, -0.7181120649740815, 1.6451079490408587, 0.49644675904801183];
        const TORCH_B: [f64; 2] = [-0.1985450421330444, 0.0575821092145387];
        let (ew, eb) = reference_adamw(3, 0.1);
        for (a, b) in ew.iter().zip(TORCH_W).chain(eb.iter().zip(TORCH_B)) {
            assert!((a - b).abs() < 1e-12, "transcription {a} vs torch {b}");
        }
        let got_w: Vec<f32> = w.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let got_b: Vec<f32> = b.as_tensor().to_vec1().unwrap();
        for (g, e) in got_w.iter().zip(ew.iter()).chain(got_b.iter().zip(eb.iter())) {
            assert!((*g as f64 - e).abs() < 1e-5, "got {g}, expected {e}");
        }
    }

    /// The host loop (CPU) and the tensor path (other devices) give bitwise the same weights
    /// and moments, with and without decay, over several steps with varied gradients.
    #[test]
    fn host_update_equals_the_tensor_path() {
        let dev = Device::Cpu;
        let run = |host: bool| {
            let w = Var::from_tensor(&Tensor::new(&[[0.5f32, -1.0, 3.0], [2.0, 0.25, -0.7]], &dev).unwrap()).unwrap();
            let b = Var::from_tensor(&Tensor::new(&[0.1f32, -0.2, 0.05], &dev).unwrap()).unwrap();
            let mut opt = AdamW::new(vec![("w".into(), w.clone()), ("b".into(), b.clone())], AdamWConfig::default()).unwrap();
            opt.host_path = host;
            let x = Tensor::new(&[[1.0f32, 2.0], [-1.0, 0.5], [0.3, -2.0]], &dev).unwrap();
            for k in 0..4 {
                let y = x.matmul(w.as_tensor()).unwrap().broadcast_add(b.as_tensor()).unwrap();
                let loss = (y.sqr().unwrap() * (k as f64 + 0.5)).unwrap().sin().unwrap().sum_all().unwrap();
                let g = one_step_grads(&opt, &loss);
                opt.step(&g, 0.03 * (k + 1) as f64).unwrap();
            }
            let mut out: Vec<Vec<f32>> = vec![];
            for (_, t) in opt.state_tensors().unwrap() {
                out.push(t.flatten_all().unwrap().to_vec1().unwrap());
            }
            out.push(w.as_tensor().flatten_all().unwrap().to_vec1().unwrap());
            out.push(b.as_tensor().to_vec1().unwrap());
            out
        };
        let (a, b) = (run(true), run(false));
        assert_eq!(a.len(), 6);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{x:?} vs {y:?}");
        }
    }

    /// float64 transcription of PyTorch `_single_tensor_adamw` for the problem above (analytic
    /// gradients of the quadratic), kept independent of candle so it checks our tensor code.
    fn reference_adamw(steps: i32, lr: f64) -> (Vec<f64>, Vec<f64>) {
        let x = [[1.0, 2.0], [-1.0, 0.5]];
        let y = [[1.0, 0.0], [0.0, 1.0]];
        let mut w = [0.5, -1.0, 2.0, 0.25];
        let mut b = [0.1, -0.2];
        let (b1, b2, eps, wd) = (0.9f64, 0.95f64, 1e-8, 0.1);
        let (mut mw, mut vw, mut mb, mut vb) = ([0.0; 4], [0.0; 4], [0.0; 2], [0.0; 2]);
        for t in 1..=steps {
            // residual r[i][j] = sum_k x[i][k] w[k][j] + b[j] - y[i][j]
            let mut r = [[0.0; 2]; 2];
            for i in 0..2 {
                for j in 0..2 {
                    r[i][j] = x[i][0] * w[j] + x[i][1] * w[2 + j] + b[j] - y[i][j];
                }
            }
            let mut gw = [0.0; 4];
            let mut gb = [0.0; 2];
            for k in 0..2 {
                for j in 0..2 {
                    gw[k * 2 + j] = (0..2).map(|i| 2.0 * r[i][j] * x[i][k]).sum();
                }
            }
            for j in 0..2 {
                gb[j] = (0..2).map(|i| 2.0 * r[i][j]).sum();
            }
            let bc1 = 1.0 - b1.powi(t);
            let bc2s = (1.0 - b2.powi(t)).sqrt();
            for i in 0..4 {
                w[i] *= 1.0 - lr * wd;
                mw[i] = b1 * mw[i] + (1.0 - b1) * gw[i];
                vw[i] = b2 * vw[i] + (1.0 - b2) * gw[i] * gw[i];
                w[i] -= lr / bc1 * mw[i] / (vw[i].sqrt() / bc2s + eps);
            }
            for i in 0..2 {
                mb[i] = b1 * mb[i] + (1.0 - b1) * gb[i];
                vb[i] = b2 * vb[i] + (1.0 - b2) * gb[i] * gb[i];
                b[i] -= lr / bc1 * mb[i] / (vb[i].sqrt() / bc2s + eps);
            }
        }
        (w.to_vec(), b.to_vec())
    }

    /// Hand-computed first step: with m = 0.1 g, v = 0.05 g^2 and bias corrections 0.1 and 0.05,
    /// the step is exactly lr * sign(g) (up to eps), after decay p * (1 - lr * wd).
    #[test]
    fn first_step_is_lr_times_sign() {
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[[1.0f32, -2.0]], &dev).unwrap()).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
        // loss = 3*w0 - 5*w1: gradient (3, -5)
        let c = Tensor::new(&[[3.0f32, -5.0]], &dev).unwrap();
        let loss = (w.as_tensor() * &c).unwrap().sum_all().unwrap();
        let g = one_step_grads(&opt, &loss);
        opt.step(&g, 0.01).unwrap();
        let got: Vec<f32> = w.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let e0 = 1.0 * (1.0 - 0.01 * 0.1) - 0.01;
        let e1 = -2.0 * (1.0 - 0.01 * 0.1) + 0.01;
        assert!((got[0] as f64 - e0).abs() < 1e-6, "{got:?}");
        assert!((got[1] as f64 - e1).abs() < 1e-6, "{got:?}");
    }

    /// The reason for master weights: lr 1e-6 (paper §4.2) on bf16 weights near 0.01. Plain bf16
    /// AdamW (candle-nn's, which updates the bf16 variable in place) never moves the weight; ours
    /// accumulates the update in fp32 and the bf16 weight follows.
    #[test]
    fn lr_1e6_update_survives_bf16() {
        let dev = Device::Cpu;
        let init =
            Tensor::new(&[0.01f32, -0.01, 0.02], &dev).unwrap().to_dtype(DType::BF16).unwrap();
        let cfg = AdamWConfig { weight_decay: 0.0, ..Default::default() };
        let ours = Var::from_tensor(&init).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), ours.clone())], cfg).unwrap();
        let naive = Var::from_tensor(&init).unwrap();
        let mut naive_opt = candle_nn::AdamW::new(
            vec![naive.clone()],
            candle_nn::ParamsAdamW {
                lr: 1e-6,
                beta1: 0.9,
                beta2: 0.95,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        )
        .unwrap();
        use candle_nn::Optimizer;
        for _ in 0..100 {
            // loss = sum(w): gradient 1 everywhere, so each step moves w by ~ -1e-6.
            let loss = ours.as_tensor().sum_all().unwrap();
            let g = one_step_grads(&opt, &loss);
            opt.step(&g, 1e-6).unwrap();
            let nl = naive.as_tensor().sum_all().unwrap();
            naive_opt.backward_step(&nl).unwrap();
        }
        let start: Vec<f32> = init.to_dtype(DType::F32).unwrap().to_vec1().unwrap();
        let naive_now: Vec<f32> =
            naive.as_tensor().to_dtype(DType::F32).unwrap().to_vec1().unwrap();
        assert_eq!(naive_now, start, "plain bf16 AdamW loses lr 1e-6 updates");
        let ours_now: Vec<f32> = ours.as_tensor().to_dtype(DType::F32).unwrap().to_vec1().unwrap();
        let state = opt.state_tensors().unwrap();
        let master = &state.iter().find(|(n, _)| n == "master.w").unwrap().1;
        let master: Vec<f32> = master.to_vec1().unwrap();
        for i in 0..3 {
            // 100 steps of ~1e-6 each: the master moved by ~1e-4 ...
            assert!(((start[i] - master[i]) as f64 - 1e-4).abs() < 2e-6, "master {master:?}");
            // ... and the bf16 weight is the master rounded, so it moved too.
            assert!(ours_now[i] < start[i], "bf16 weight moved: {ours_now:?} vs {start:?}");
        }
    }

    #[test]
    fn clip_scales_to_max_norm_and_rejects_nan() {
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[0.0f32, 0.0], &dev).unwrap()).unwrap();
        let opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
        let c = Tensor::new(&[3.0f32, 4.0], &dev).unwrap();
        let loss = (w.as_tensor() * &c).unwrap().sum_all().unwrap();
        let mut g = one_step_grads(&opt, &loss);
        let norm = g.clip(1.0, 0).unwrap();
        assert!((norm - 5.0).abs() < 1e-9);
        let clipped: Vec<f32> = g.get(0).unwrap().to_vec1().unwrap();
        assert!((clipped[0] - 0.6).abs() < 1e-6 && (clipped[1] - 0.8).abs() < 1e-6, "{clipped:?}");

        let nan = Tensor::new(&[f32::NAN, 1.0], &dev).unwrap();
        let loss = (w.as_tensor() * &nan).unwrap().sum_all().unwrap();
        let mut g = one_step_grads(&opt, &loss);
        assert!(matches!(g.clip(1.0, 7), Err(Error::NonFinite { step: 7, .. })));
        assert!(matches!(finite_loss(&loss, 7), Err(Error::NonFinite { .. })));
    }

    /// Two micro-batches of weight 1/2 give the same gradient as the full batch.
    #[test]
    fn accumulation_equals_full_batch() {
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[[0.3f32], [-0.7]], &dev).unwrap()).unwrap();
        let opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
        let x = Tensor::new(&[[1.0f32, 2.0], [3.0, -1.0], [0.5, 0.5], [-2.0, 1.0]], &dev).unwrap();
        let y = Tensor::new(&[[1.0f32], [0.0], [2.0], [-1.0]], &dev).unwrap();
        let mse = |x: &Tensor, y: &Tensor| {
            (x.matmul(w.as_tensor()).unwrap() - y).unwrap().sqr().unwrap().mean_all().unwrap()
        };
        let full = one_step_grads(&opt, &mse(&x, &y));
        let mut acc = GradAccumulator::new(&opt);
        for k in 0..2 {
            let l = mse(&x.narrow(0, 2 * k, 2).unwrap(), &y.narrow(0, 2 * k, 2).unwrap());
            acc.add(l.backward().unwrap(), 0.5).unwrap();
        }
        assert_eq!(acc.micro_batches(), 2);
        let parts = acc.take();
        let a: Vec<f32> = full.get(0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = parts.get(0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
