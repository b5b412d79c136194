//! The decoder: cached decoding equals the full forward, padding does not change real tokens'
//! logits, bad inputs are errors.
use super::util::*;
use candle_core::{DType, Device, Tensor};
use mathforge_model::{Error, KvCache};

/// Row 0 has a 5-token prompt, row 1 a 3-token prompt left-padded by 2; then 4 decoded tokens each.
#[test]
fn cached_decode_matches_full_forward_with_left_padding() {
    for cfg in [tiny_llama(), tiny_qwen2()] {
        let m = model(&cfg, 7, DType::F32);
        let prompts = [vec![3u32, 9, 4, 11, 2], vec![0, 0, 5, 17, 8]];
        let pmask = [vec![1f32; 5], vec![0., 0., 1., 1., 1.]];
        let gen = [vec![21u32, 6, 30, 1], vec![13, 40, 2, 19]];
        // Full sequences for the reference forward.
        let full: Vec<Vec<u32>> = (0..2).map(|b| [prompts[b].clone(), gen[b].clone()].concat()).collect();
        let fmask: Vec<Vec<f32>> = (0..2).map(|b| [pmask[b].clone(), vec![1.; 4]].concat()).collect();
        let ref_logits = m.forward(&ids(&full), Some(&Tensor::new(fmask.clone(), &Device::Cpu).unwrap())).unwrap();

        let mut cache = KvCache::new(&cfg);
        let pos = mathforge_model::llama::positions_from_mask(&pmask);
        let logits = m
            .forward_step(&ids(&prompts), &Tensor::new(pos.clone(), &Device::Cpu).unwrap(), &Tensor::new(pmask.to_vec(), &Device::Cpu).unwrap(), &mut cache)
            .unwrap();
        assert_eq!(cache.seq_len(), 5);
        let want = ref_logits.narrow(1, 4, 1).unwrap().squeeze(1).unwrap();
        assert!(max_abs_diff(&logits, &want) < 1e-4, "{:?} prefill", cfg.arch);
        let mut next_pos: Vec<u32> = pos.iter().map(|r| r[4] + 1).collect();
        for step in 0..3 {
            let tok: Vec<Vec<u32>> = (0..2).map(|b| vec![gen[b][step]]).collect();
            let p: Vec<Vec<u32>> = next_pos.iter().map(|&x| vec![x]).collect();
            let mask: Vec<Vec<f32>> = fmask.iter().map(|r| r[..5 + step + 1].to_vec()).collect();
            let logits = m
                .forward_step(&ids(&tok), &Tensor::new(p, &Device::Cpu).unwrap(), &Tensor::new(mask, &Device::Cpu).unwrap(), &mut cache)
                .unwrap();
            let want = ref_logits.narrow(1, 5 + step, 1).unwrap().squeeze(1).unwrap();
            let d = max_abs_diff(&logits, &want);
            assert!(d < 1e-4, "{:?} step {step}: {d}", cfg.arch);
            next_pos.iter_mut().for_each(|x| *x += 1);
        }
        // Padding invariance: row 1 alone, unpadded, gives the same logits for its real tokens.
        let alone: Vec<u32> = full[1][2..].to_vec();
        let solo = m.forward(&ids(&[alone]), None).unwrap();
        let d = max_abs_diff(&solo, &ref_logits.narrow(0, 1, 1).unwrap().narrow(1, 2, 7).unwrap());
        assert!(d < 1e-4, "{:?} padding changed logits: {d}", cfg.arch);

        // Drop row 0 (finished); row 1 continues alone with the last generated token.
        cache.select_rows(&[1]).unwrap();
        assert_eq!(cache.batch_size(), 1);
        let mask = vec![fmask[1].clone()];
        let logits = m
            .forward_step(&ids(&[vec![gen[1][3]]]), &Tensor::new(vec![vec![next_pos[1]]], &Device::Cpu).unwrap(), &Tensor::new(mask, &Device::Cpu).unwrap(), &mut cache)
            .unwrap();
        let want = ref_logits.narrow(0, 1, 1).unwrap().narrow(1, 8, 1).unwrap().squeeze(1).unwrap();
        assert!(max_abs_diff(&logits, &want) < 1e-4, "{:?} after select_rows", cfg.arch);
    }
}

#[test]
fn right_padding_matches_unpadded() {
    let cfg = tiny_llama();
    let m = model(&cfg, 1, DType::F32);
    let batch = ids(&[vec![5, 6, 7, 8], vec![9, 10, 0, 0]]);
    let mask = Tensor::new(vec![vec![1u32, 1, 1, 1], vec![1, 1, 0, 0]], &Device::Cpu).unwrap();
    let padded = m.forward(&batch, Some(&mask)).unwrap();
    let solo = m.forward(&ids(&[vec![9, 10]]), None).unwrap();
    assert!(max_abs_diff(&padded.narrow(0, 1, 1).unwrap().narrow(1, 0, 2).unwrap(), &solo) < 1e-5);
    assert_eq!(padded.dims(), &[2, 4, cfg.vocab_size]);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let cfg = tiny_llama();
    let m = model(&cfg, 1, DType::F32);
    let e = m.forward(&ids(&[vec![1, 2, 99]]), None).unwrap_err();
    assert!(e.to_string().contains("vocab_size"), "{e}");
    let long = ids(&[vec![1u32; 65]]);
    assert!(matches!(m.forward(&long, None).unwrap_err(), Error::ContextTooLong { position: 64, max: 64 }));
    let bad_mask = Tensor::new(vec![vec![1u32, 1]], &Device::Cpu).unwrap();
    assert!(m.forward(&ids(&[vec![1, 2, 3]]), Some(&bad_mask)).unwrap_err().to_string().contains("attention_mask"));
    let mut cache = KvCache::new(&cfg);
    let e = m
        .forward_step(&ids(&[vec![1, 2]]), &ids(&[vec![0, 1]]), &Tensor::new(vec![vec![1u32; 3]], &Device::Cpu).unwrap(), &mut cache)
        .unwrap_err();
    assert!(e.to_string().contains("attn_mask"), "{e}");
    assert!(cache.select_rows(&[0]).is_err());
}

#[test]
fn bf16_is_close_to_f32() {
    let cfg = tiny_llama();
    let a = model(&cfg, 3, DType::F32);
    let b = model(&cfg, 3, DType::BF16);
    let x = ids(&[vec![1, 2, 3, 4, 5, 6]]);
    let la = a.forward(&x, None).unwrap();
    let lb = b.forward(&x, None).unwrap();
    assert_eq!(lb.dtype(), DType::BF16);
    let d = max_abs_diff(&la, &lb);
    assert!(d < 0.1, "bf16 drifted {d}");
}

/// Sampling from a trainable model (RL rollouts use the policy's `Var`s): the KV cache must not
/// keep autograd history, or every decoding step's cache and activations stay alive (this held
/// 2.5 GB in a one-step GRPO run of a 55M model).
#[test]
fn kv_cache_from_trainable_weights_has_no_autograd_history() {
    let cfg = tiny_llama();
    let vm = mathforge_model::checkpoint::init_varmap(&cfg, 3, DType::F32, &Device::Cpu).unwrap();
    let m = mathforge_model::Llama::new(&cfg, candle_nn::VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let mut cache = KvCache::new(&cfg);
    let mut mask = vec![1u32; 3];
    let logits = m
        .forward_step(&ids(&[vec![3, 4, 5]]), &Tensor::new(&[[0u32, 1, 2]], &Device::Cpu).unwrap(), &Tensor::new(vec![mask.clone()], &Device::Cpu).unwrap(), &mut cache)
        .unwrap();
    assert!(logits.track_op(), "the logits of a trainable model do carry a graph (sanity check)");
    mask.push(1);
    m.forward_step(&ids(&[vec![6]]), &Tensor::new(&[[3u32]], &Device::Cpu).unwrap(), &Tensor::new(vec![mask], &Device::Cpu).unwrap(), &mut cache).unwrap();
    for i in 0..cfg.num_layers {
        let (k, v) = cache.layer(i).unwrap();
        assert_eq!(k.dims()[2], 4);
        assert!(!k.track_op() && !v.track_op(), "layer {i}: cached k/v keep autograd history");
    }
}
