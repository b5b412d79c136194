//! Autograd gradients vs central finite differences in f64, one test per layer (issue 2, item 2):
//! RMSNorm, RoPE, attention (with a padding mask and GQA), SwiGLU MLP and the whole tiny decoder.
//! Each check reduces the layer output to a scalar with a fixed random weighting, so every output
//! element contributes a distinct gradient.
use super::util::*;
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use mathforge_model::{checkpoint, fused};
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

/// `varmap_vb` in f64 (non-trivial biases and norms); a plain init in other dtypes.
fn varmap_in(cfg: &mathforge_model::Config, seed: u64, dtype: DType) -> (VarMap, VarBuilder<'static>) {
    if dtype == DType::F64 {
        return varmap_vb(cfg, seed);
    }
    let vm = checkpoint::init_varmap(cfg, seed, dtype, &Device::Cpu).unwrap();
    let vb = VarBuilder::from_varmap(&vm, dtype, &Device::Cpu);
    (vm, vb)
}

/// Every weight of `vm` (but `skip`) has a gradient in both stores, equal to `tol` times the
/// largest entry of the first.
fn assert_same_weight_grads(
    vm: &VarMap,
    (ga, la): (&candle_core::backprop::GradStore, &str),
    (gb, lb): (&candle_core::backprop::GradStore, &str),
    tol: f64,
    skip: &[&str],
) {
    let mut n = 0;
    for (name, v) in vm.data().lock().unwrap().iter() {
        if skip.contains(&name.as_str()) {
            continue;
        }
        let a = ga.get(v.as_tensor()).unwrap_or_else(|| panic!("{la}: no gradient for {name}"));
        let b = gb.get(v.as_tensor()).unwrap_or_else(|| panic!("{lb}: no gradient for {name}"));
        let a = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let b = b.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let scale = a.iter().fold(0f64, |m, x| m.max(x.abs())).max(1e-3);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= tol * scale, "{name}: {la} {x} vs {lb} {y}");
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} weights compared");
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

#[test]
fn fused_rope_gradients() {
    // [B, T, heads, d] layout, as the projections produce it.
    let x = var(randn(&[2, 5, 3, 8], 12));
    let rope = Rope::new(8, 100.0, 2.0, &Device::Cpu).unwrap();
    let pos = Tensor::new(vec![vec![0u32, 1, 2, 3, 4], vec![0, 0, 0, 1, 2]], &Device::Cpu).unwrap();
    let (cos, sin) = rope.cos_sin(&pos, DType::F64).unwrap();
    let loss = || weighted_sum(&fused::rope(x.as_tensor(), &cos, &sin).unwrap(), 13);
    check(&[("x", &x)], &loss, 80);
    // Same values as the composed rotate-half op on the [B, heads, T, d] layout.
    let a = fused::rope(x.as_tensor(), &cos, &sin).unwrap();
    let b = apply_rope(&x.as_tensor().transpose(1, 2).unwrap(), &cos, &sin).unwrap().transpose(1, 2).unwrap();
    assert!(max_abs_diff(&a, &b) < 1e-12);
}

#[test]
fn fused_target_logprob_gradients() {
    let logits = var(randn(&[6, 11], 14).affine(3.0, 0.0).unwrap());
    let targets = Tensor::new(&[0u32, 10, 3, 3, 7, 1], &Device::Cpu).unwrap();
    let loss = || weighted_sum(&fused::target_logprobs(logits.as_tensor(), &targets).unwrap(), 15);
    check(&[("logits", &logits)], &loss, 66);
    let bad = Tensor::new(&[0u32, 11, 3, 3, 7, 1], &Device::Cpu).unwrap();
    let err = fused::target_logprobs(logits.as_tensor(), &bad).unwrap_err().to_string();
    assert!(err.contains("11") && err.contains("vocabulary"), "{err}");
}

/// The fused attention against the composed one (values and all three gradients), in f32 and f64,
/// with GQA, left padding, and more query rows than one block of the fused kernel (128).
#[test]
fn fused_attention_matches_composed_ops() {
    for dtype in [DType::F64, DType::F32] {
        let (b, t, nh, nkv, d) = (2, 150, 4, 2, 8);
        let mut mask = vec![vec![1f32; t]; b];
        mask[1][..17].iter_mut().for_each(|m| *m = 0.0);
        let bias = attention_bias(&mask, 0, t, dtype, &Device::Cpu).unwrap();
        let q = var(randn(&[b, t, nh, d], 21).to_dtype(dtype).unwrap());
        let k = var(randn(&[b, t, nkv, d], 22).to_dtype(dtype).unwrap());
        let v = var(randn(&[b, t, nkv, d], 23).to_dtype(dtype).unwrap());
        let w = randn(&[b, t, nh, d], 24).to_dtype(dtype).unwrap();
        let run = |f: &dyn Fn(&Tensor, &Tensor, &Tensor, &Tensor, f64) -> candle_core::Result<Tensor>| {
            let y = f(q.as_tensor(), k.as_tensor(), v.as_tensor(), &bias, 0.35).unwrap();
            let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let grads: Vec<Tensor> = [&q, &k, &v].iter().map(|x| g.get(x.as_tensor()).unwrap().clone()).collect();
            (y, grads)
        };
        let (yf, gf) = run(&fused::attention);
        let (yc, gc) = run(&fused::attention_composed);
        let tol = if dtype == DType::F64 { 1e-10 } else { 2e-5 };
        assert!(max_abs_diff(&yf, &yc) < tol, "{dtype:?} output: {}", max_abs_diff(&yf, &yc));
        for (name, (a, c)) in ["dq", "dk", "dv"].iter().zip(gf.iter().zip(&gc)) {
            assert!(max_abs_diff(a, c) < tol, "{dtype:?} {name}: {}", max_abs_diff(a, c));
        }
    }
}

#[test]
fn fused_swiglu_and_rmsnorm_match_composed_ops_in_f32() {
    let a = var(randn(&[3, 7, 16], 31).affine(4.0, 0.0).unwrap().to_dtype(DType::F32).unwrap());
    let u = var(randn(&[3, 7, 16], 32).to_dtype(DType::F32).unwrap());
    let w = randn(&[3, 7, 16], 33).to_dtype(DType::F32).unwrap();
    let f = fused::swiglu(a.as_tensor(), u.as_tensor()).unwrap();
    let c = (a.as_tensor().silu().unwrap() * u.as_tensor()).unwrap();
    assert!(max_abs_diff(&f, &c) < 1e-5);
    let gf = (&f * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let gc = (&c * &w).unwrap().sum_all().unwrap().backward().unwrap();
    for x in [&a, &u] {
        assert!(max_abs_diff(gf.get(x.as_tensor()).unwrap(), gc.get(x.as_tensor()).unwrap()) < 1e-5);
    }
    let nw = var(randn(&[16], 34).affine(0.5, 1.0).unwrap().to_dtype(DType::F32).unwrap());
    let f = fused::rms_norm(u.as_tensor(), nw.as_tensor(), 1e-6).unwrap();
    let inv = (u.as_tensor().sqr().unwrap().mean_keepdim(2).unwrap() + 1e-6).unwrap().sqrt().unwrap().recip().unwrap();
    let c = u.as_tensor().broadcast_mul(&inv).unwrap().broadcast_mul(nw.as_tensor()).unwrap();
    assert!(max_abs_diff(&f, &c) < 1e-5);
    let gf = (&f * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let gc = (&c * &w).unwrap().sum_all().unwrap().backward().unwrap();
    for x in [&u, &nw] {
        assert!(max_abs_diff(gf.get(x.as_tensor()).unwrap(), gc.get(x.as_tensor()).unwrap()) < 1e-4);
    }
}

/// Gradient checkpointing (recompute each layer in the backward pass) must give the gradients of
/// the plain graph for every weight, in f64 and in f32 (fused kernels), with a padding mask, GQA
/// and q/k/v biases; and only through `Llama::backward`, which merges the recomputed layers'
/// weight gradients (a plain `loss.backward()` sees none of them).
#[test]
fn gradient_checkpointing_matches_the_plain_graph() {
    for (cfg, dtype) in [(tiny_llama(), DType::F64), (tiny_qwen2(), DType::F64), (tiny_llama(), DType::F32)] {
        let (vm, vb) = varmap_in(&cfg, 13, dtype);
        let plain = mathforge_model::Llama::new(&cfg, vb).unwrap();
        let mut ckpt = plain.clone();
        ckpt.set_gradient_checkpointing(true);
        assert!(ckpt.gradient_checkpointing() && !plain.gradient_checkpointing());
        let input = ids(&[vec![3, 7, 1, 9, 4], vec![0, 5, 2, 8, 6]]);
        let mask_rows = vec![vec![1f32; 5], vec![0., 1., 1., 1., 1.]];
        let mask = Tensor::new(mask_rows.clone(), &Device::Cpu).unwrap();
        let targets = ids(&[vec![7, 1, 9, 4, 2], vec![5, 2, 8, 6, 11]]);
        let loss_of = |m: &mathforge_model::Llama| {
            let lp = mathforge_model::logprob::token_logprobs(m, &input, Some(&mask), &targets, 2).unwrap();
            masked_weighted_sum(&lp.to_dtype(DType::F64).unwrap(), 14, &mask_rows)
        };
        let (lp, lc) = (loss_of(&plain), loss_of(&ckpt));
        let (vp, vc) = (lp.to_scalar::<f64>().unwrap(), lc.to_scalar::<f64>().unwrap());
        assert!((vp - vc).abs() <= 1e-12 * vp.abs().max(1.0), "{dtype:?}: loss {vp} vs {vc}");
        let gp = plain.backward(&lp).unwrap();
        let gc = ckpt.backward(&lc).unwrap();
        let tol = if dtype == DType::F64 { 1e-10 } else { 1e-5 };
        assert_same_weight_grads(&vm, (&gp, "plain"), (&gc, "checkpointed"), tol, &[]);
        // Without the merge the layers' weights get no gradient at all.
        let bare = loss_of(&ckpt).backward().unwrap();
        let w = get(&vm, "model.layers.0.mlp.up_proj.weight");
        assert!(bare.get(w.as_tensor()).is_none(), "layer weight gradient leaked into a plain backward");
    }
}

/// The checkpointed path against finite differences too (not only against the plain graph).
#[test]
fn gradient_checkpointing_passes_finite_differences() {
    let cfg = tiny_qwen2();
    let (vm, vb) = varmap_vb(&cfg, 15);
    let mut model = mathforge_model::Llama::new(&cfg, vb).unwrap();
    model.set_gradient_checkpointing(true);
    let input = ids(&[vec![3, 7, 1, 9], vec![0, 5, 2, 8]]);
    let mask_rows = vec![vec![1f32; 4], vec![0., 1., 1., 1.]];
    let mask = Tensor::new(mask_rows.clone(), &Device::Cpu).unwrap();
    let targets = ids(&[vec![7, 1, 9, 4], vec![5, 2, 8, 6]]);
    let loss = || {
        let lp = mathforge_model::logprob::token_logprobs(&model, &input, Some(&mask), &targets, 4).unwrap();
        masked_weighted_sum(&lp, 16, &mask_rows)
    };
    let names = ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.gate_proj.weight", "model.layers.1.post_attention_layernorm.weight"];
    let grads = model.backward(&loss()).unwrap();
    for name in names {
        let v = get(&vm, name);
        let g = grads.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let orig = v.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let shape = v.as_tensor().dims().to_vec();
        for k in (0..orig.len()).step_by((orig.len() / 6).max(1)).take(6) {
            let at = |d: f64| {
                let mut w = orig.clone();
                w[k] += d;
                v.set(&Tensor::from_vec(w, shape.as_slice(), &Device::Cpu).unwrap()).unwrap();
                loss().to_scalar::<f64>().unwrap()
            };
            let fd = (at(EPS) - at(-EPS)) / (2.0 * EPS);
            v.set(&Tensor::from_vec(orig.clone(), shape.as_slice(), &Device::Cpu).unwrap()).unwrap();
            assert!((fd - g[k]).abs() <= 1e-6 * fd.abs().max(1.0), "{name}[{k}]: autograd {} vs fd {fd}", g[k]);
        }
    }
}

/// The shared-prefix forward (each prompt run once, its G completions attending to its keys and
/// values) must equal `forward_hidden` on the concatenated rows, in value and in every weight's
/// gradient: prefixes of different lengths (left-padded), a prefix shared by three rows, a suffix
/// with no real token, GQA and q/k/v bias; f64 and f32 (fused kernels).
#[test]
fn shared_prefix_forward_matches_concatenated_rows() {
    let prefixes = [vec![3u32, 7, 1], vec![9, 4, 2, 8, 5]];
    let rows = [0usize, 1, 0, 1, 0];
    let suffixes = [vec![6u32, 2, 10, 1], vec![11, 3], vec![], vec![4, 4, 7], vec![5]];
    for (cfg, dtype) in [(tiny_llama(), DType::F64), (tiny_qwen2(), DType::F64), (tiny_llama(), DType::F32)] {
        let (vm, vb) = varmap_in(&cfg, 21, dtype);
        let model = mathforge_model::Llama::new(&cfg, vb).unwrap();
        let pad = |rs: &[Vec<u32>], left: bool| {
            let t = rs.iter().map(Vec::len).max().unwrap();
            let (mut ids, mut mask) = (vec![], vec![]);
            for r in rs {
                let (p, m) = (vec![0u32; t - r.len()], vec![0f32; t - r.len()]);
                let ones = vec![1f32; r.len()];
                if left {
                    ids.push([p, r.clone()].concat());
                    mask.push([m, ones].concat());
                } else {
                    ids.push([r.clone(), p].concat());
                    mask.push([ones, m].concat());
                }
            }
            (Tensor::new(ids, &Device::Cpu).unwrap(), Tensor::new(mask, &Device::Cpu).unwrap())
        };
        let (pids, pmask) = pad(&prefixes, true);
        let (sids, smask) = pad(&suffixes, false);
        let (hp, hs) = model.forward_hidden_shared_prefix(&pids, &pmask, &rows, &sids, &smask).unwrap();
        let hs = hs.unwrap();
        let tp = pids.dim(1).unwrap();
        // Each row's real positions, prefix then suffix, stacked: [N, H].
        let mut shared = vec![];
        for (b, &r) in rows.iter().enumerate() {
            let lp = prefixes[r].len();
            shared.push(hp.narrow(0, r, 1).unwrap().narrow(1, tp - lp, lp).unwrap().squeeze(0).unwrap());
            if !suffixes[b].is_empty() {
                shared.push(hs.narrow(0, b, 1).unwrap().narrow(1, 0, suffixes[b].len()).unwrap().squeeze(0).unwrap());
            }
        }
        let shared = Tensor::cat(&shared, 0).unwrap().to_dtype(DType::F64).unwrap();
        let full: Vec<Vec<u32>> = rows.iter().zip(&suffixes).map(|(&r, s)| [prefixes[r].clone(), s.clone()].concat()).collect();
        let (fids, fmask) = pad(&full, false);
        let hf = model.forward_hidden(&fids, Some(&fmask)).unwrap();
        let plain = Tensor::cat(
            &full.iter().enumerate().map(|(b, f)| hf.narrow(0, b, 1).unwrap().narrow(1, 0, f.len()).unwrap().squeeze(0).unwrap()).collect::<Vec<_>>(),
            0,
        )
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
        assert_eq!(shared.dims(), plain.dims());
        let tol = if dtype == DType::F64 { 1e-10 } else { 2e-5 };
        let (a, b) = (shared.flatten_all().unwrap().to_vec1::<f64>().unwrap(), plain.flatten_all().unwrap().to_vec1::<f64>().unwrap());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= tol * x.abs().max(1.0), "{dtype:?} hidden: {x} vs {y}");
        }
        let gs = weighted_sum(&shared, 22).backward().unwrap();
        let gp = weighted_sum(&plain, 22).backward().unwrap();
        // Hidden states stop before the lm_head.
        assert_same_weight_grads(&vm, (&gp, "plain"), (&gs, "shared"), tol * 10.0, &["lm_head.weight"]);
    }
}
