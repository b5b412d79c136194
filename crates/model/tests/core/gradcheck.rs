//! Autograd gradients vs central finite differences in f64, one test per layer (issue 2, item 2):
//! RMSNorm, RoPE, attention (with a padding mask and GQA), SwiGLU MLP and the whole tiny decoder.
//! Each check reduces the layer output to a scalar with a fixed random weighting, so every output
//! element contributes a distinct gradient.
use super::util::*;
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use mathforge_model::checkpoint;
use mathforge_model::llama::{Attention, Mlp};
use mathforge_model::nn::{apply_rope, attention_bias, RmsNorm, Rope};

const EPS: f64 = 1e-5;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    // Deterministic pseudo-random values without relying on candle's unseeded RNG.
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f64> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn weighted_sum(y: &Tensor, seed: u64) -> Tensor {
    let w = randn(y.dims(), seed);
    (y * w).unwrap().sum_all().unwrap()
}

/// Like [`weighted_sum`] but ignoring padded query positions (`mask[b][t] == 0`, `y: [B,T,..]`).
/// Their outputs are unused by construction: a fully masked attention row is a softmax of scores
/// shifted by -1e9, which f64 rounds at ~1e-7, too coarse for finite differences to follow.
fn masked_weighted_sum(y: &Tensor, seed: u64, mask: &[Vec<f32>]) -> Tensor {
    let (b, t) = (y.dim(0).unwrap(), y.dim(1).unwrap());
    let m = Tensor::new(mask.to_vec(), &Device::Cpu).unwrap().to_dtype(DType::F64).unwrap();
    let mut shape = vec![b, t];
    shape.extend(std::iter::repeat(1).take(y.rank() - 2));
    let m = m.reshape(shape).unwrap();
    let w = randn(y.dims(), seed).broadcast_mul(&m).unwrap();
    (y * w).unwrap().sum_all().unwrap()
}

/// Compare d loss / d var from autograd with central differences on up to `samples` elements of
/// each var (spread over the tensor).
fn check(vars: &[(&str, &Var)], loss: &dyn Fn() -> Tensor, samples: usize) {
    let l = loss();
    let grads = l.backward().unwrap();
    for (name, var) in vars {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"))
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let shape = var.as_tensor().dims().to_vec();
        let orig = var.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let n = orig.len();
        let step = (n / samples.min(n)).max(1);
        let mut worst = 0.0f64;
        for i in (0..n).step_by(step).take(samples) {
            let mut p = orig.clone();
            p[i] += EPS;
            var.set(&Tensor::from_vec(p.clone(), shape.as_slice(), &Device::Cpu).unwrap()).unwrap();
            let lp = loss().to_scalar::<f64>().unwrap();
            p[i] -= 2.0 * EPS;
            var.set(&Tensor::from_vec(p, shape.as_slice(), &Device::Cpu).unwrap()).unwrap();
            let lm = loss().to_scalar::<f64>().unwrap();
            var.set(&Tensor::from_vec(orig.clone(), shape.as_slice(), &Device::Cpu).unwrap()).unwrap();
            let num = (lp - lm) / (2.0 * EPS);
            let err = (num - g[i]).abs() / (1e-3 + num.abs().max(g[i].abs()));
            worst = worst.max(err);
            assert!(err < 1e-5, "{name}[{i}]: autograd {} vs finite difference {num} (rel err {err:e})", g[i]);
        }
        assert!(worst.is_finite());
    }
}

fn var(t: Tensor) -> Var {
    Var::from_tensor(&t).unwrap()
}

#[test]
fn rmsnorm_gradients() {
    let x = var(randn(&[2, 3, 8], 1));
    let w = var(randn(&[8], 2).affine(0.5, 1.0).unwrap());
    let norm = RmsNorm { weight: w.as_tensor().clone(), eps: 1e-5 };
    let loss = || weighted_sum(&norm.forward(x.as_tensor()).unwrap(), 3);
    check(&[("x", &x), ("weight", &w)], &loss, 48);
}

#[test]
fn rope_gradients() {
    let x = var(randn(&[2, 2, 5, 8], 4));
    let rope = Rope::new(8, 100.0, 2.0, &Device::Cpu).unwrap();
    let pos = Tensor::new(vec![vec![0u32, 1, 2, 3, 4], vec![0, 0, 0, 1, 2]], &Device::Cpu).unwrap();
    let (cos, sin) = rope.cos_sin(&pos, DType::F64).unwrap();
    let loss = || weighted_sum(&apply_rope(x.as_tensor(), &cos, &sin).unwrap(), 5);
    check(&[("x", &x)], &loss, 80);
}

fn varmap_vb(cfg: &mathforge_model::Config, seed: u64) -> (VarMap, VarBuilder<'static>) {
    let vm = checkpoint::init_varmap(cfg, seed, DType::F64, &Device::Cpu).unwrap();
    // Non-trivial biases and norm weights, so their gradients are exercised away from init values.
    for (i, (name, v)) in vm.data().lock().unwrap().iter().enumerate() {
        if name.ends_with(".bias") || name.ends_with("norm.weight") {
            let t = randn(v.as_tensor().dims(), 100 + i as u64).affine(0.3, if name.ends_with(".bias") { 0.0 } else { 1.0 }).unwrap();
            v.set(&t).unwrap();
        }
    }
    let vb = VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu);
    (vm, vb)
}

fn get(vm: &VarMap, name: &str) -> Var {
    vm.data().lock().unwrap().get(name).unwrap_or_else(|| panic!("{name}")).clone()
}

#[test]
fn attention_gradients_with_mask_and_gqa() {
    let cfg = tiny_qwen2(); // 4 query heads on 1 kv head, q/k/v bias
    let (vm, vb) = varmap_vb(&cfg, 9);
    let attn = Attention::new(&cfg, vb.pp("model.layers.0.self_attn")).unwrap();
    let x = var(randn(&[2, 4, cfg.hidden_size], 6));
    let rope = Rope::new(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling_factor, &Device::Cpu).unwrap();
    // Row 1 is left-padded by one token.
    let mask = vec![vec![1f32; 4], vec![0., 1., 1., 1.]];
    let pos = Tensor::new(mathforge_model::llama::positions_from_mask(&mask), &Device::Cpu).unwrap();
    let (cos, sin) = rope.cos_sin(&pos, DType::F64).unwrap();
    let bias = attention_bias(&mask, 0, 4, DType::F64, &Device::Cpu).unwrap();
    let loss = || masked_weighted_sum(&attn.forward(x.as_tensor(), &cos, &sin, &bias, None).unwrap(), 7, &mask);
    let q = get(&vm, "model.layers.0.self_attn.q_proj.weight");
    let kb = get(&vm, "model.layers.0.self_attn.k_proj.bias");
    let v = get(&vm, "model.layers.0.self_attn.v_proj.weight");
    let o = get(&vm, "model.layers.0.self_attn.o_proj.weight");
    check(&[("x", &x), ("q_proj.weight", &q), ("k_proj.bias", &kb), ("v_proj.weight", &v), ("o_proj.weight", &o)], &loss, 24);
}

#[test]
fn mlp_gradients() {
    let cfg = tiny_llama();
    let (vm, vb) = varmap_vb(&cfg, 10);
    let mlp = Mlp::new(&cfg, vb.pp("model.layers.1.mlp")).unwrap();
    let x = var(randn(&[2, 3, cfg.hidden_size], 8));
    let loss = || weighted_sum(&mlp.forward(x.as_tensor()).unwrap(), 9);
    let g = get(&vm, "model.layers.1.mlp.gate_proj.weight");
    let u = get(&vm, "model.layers.1.mlp.up_proj.weight");
    let d = get(&vm, "model.layers.1.mlp.down_proj.weight");
    check(&[("x", &x), ("gate", &g), ("up", &u), ("down", &d)], &loss, 24);
}

#[test]
fn full_decoder_gradients_through_chunked_logprobs() {
    for cfg in [tiny_llama(), tiny_qwen2()] {
        let (vm, vb) = varmap_vb(&cfg, 11);
        let model = mathforge_model::Llama::new(&cfg, vb).unwrap();
        let input = ids(&[vec![3, 7, 1, 9, 4], vec![0, 5, 2, 8, 6]]);
        let mask_rows = vec![vec![1f32; 5], vec![0., 1., 1., 1., 1.]];
        let mask = Tensor::new(mask_rows.clone(), &Device::Cpu).unwrap();
        let targets = ids(&[vec![7, 1, 9, 4, 2], vec![5, 2, 8, 6, 11]]);
        let loss = || {
            let lp = mathforge_model::logprob::token_logprobs(&model, &input, Some(&mask), &targets, 2).unwrap();
            masked_weighted_sum(&lp, 12, &mask_rows)
        };
        let names = [
            "model.embed_tokens.weight",
            "model.layers.0.input_layernorm.weight",
            "model.layers.0.self_attn.k_proj.weight",
            "model.layers.1.mlp.down_proj.weight",
            "model.norm.weight",
        ];
        let vars: Vec<(&str, Var)> = names.iter().map(|n| (*n, get(&vm, n))).collect();
        let refs: Vec<(&str, &Var)> = vars.iter().map(|(n, v)| (*n, v)).collect();
        check(&refs, &loss, 12);
    }
}
