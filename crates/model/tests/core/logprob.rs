//! Chunked log-probs equal the naive full-vocabulary log-softmax, for every chunk size.
use super::util::*;
use candle_core::{DType, Device, Tensor, D};
use mathforge_model::logprob::{next_token_logprobs, token_logprobs, token_logprobs_and_greedy};

#[test]
fn chunked_logprobs_equal_naive_log_softmax() {
    let cfg = tiny_qwen2();
    let m = model(&cfg, 5, DType::F32);
    let input = ids(&[vec![3, 7, 1, 9, 4, 2, 8], vec![0, 0, 5, 2, 8, 6, 1]]);
    let mask = Tensor::new(vec![vec![1u32; 7], vec![0, 0, 1, 1, 1, 1, 1]], &Device::Cpu).unwrap();
    let targets = ids(&[vec![7, 1, 9, 4, 2, 8, 0], vec![1, 1, 2, 8, 6, 1, 3]]);
    let logits = m.forward(&input, Some(&mask)).unwrap();
    let naive = candle_nn::ops::log_softmax(&logits, D::Minus1)
        .unwrap()
        .gather(&targets.unsqueeze(2).unwrap(), 2)
        .unwrap()
        .squeeze(2)
        .unwrap();
    for chunk in [1, 3, 7, 100] {
        let lp = token_logprobs(&m, &input, Some(&mask), &targets, chunk).unwrap();
        assert_eq!(lp.dims(), &[2, 7]);
        let d = max_abs_diff(&lp, &naive);
        assert!(d < 1e-5, "chunk {chunk}: {d}");
    }
    // Shifted convenience form.
    let next = next_token_logprobs(&m, &input, Some(&mask), 2).unwrap();
    let want = token_logprobs(&m, &input, Some(&mask), &targets, 4).unwrap().narrow(1, 0, 6).unwrap();
    // targets[:, t] == input[:, t+1] for t < 6 in row 0 only.
    assert!(max_abs_diff(&next.narrow(0, 0, 1).unwrap(), &want.narrow(0, 0, 1).unwrap()) < 1e-5);
    // Greedy flags agree with argmax of the full logits.
    let hidden = m.forward_hidden(&input, Some(&mask)).unwrap();
    let (lps, greedy) = token_logprobs_and_greedy(&m, &hidden, &targets, 3).unwrap();
    let am = logits.argmax(D::Minus1).unwrap().to_vec2::<u32>().unwrap();
    let tv = targets.to_vec2::<u32>().unwrap();
    let naive_v = naive.to_vec2::<f32>().unwrap();
    for b in 0..2 {
        for t in 0..7 {
            assert_eq!(greedy[b][t], am[b][t] == tv[b][t]);
            assert!((lps[b][t] - naive_v[b][t]).abs() < 1e-5);
        }
    }
    // A target equal to the argmax is greedy.
    let am_t = logits.argmax(D::Minus1).unwrap();
    let (_, g) = token_logprobs_and_greedy(&m, &hidden, &am_t, 3).unwrap();
    assert!(g.iter().flatten().all(|&x| x));
}

#[test]
fn logprobs_reject_mismatched_targets() {
    let cfg = tiny_llama();
    let m = model(&cfg, 5, DType::F32);
    let e = token_logprobs(&m, &ids(&[vec![1, 2, 3]]), None, &ids(&[vec![1, 2]]), 2).unwrap_err();
    assert!(e.to_string().contains("targets"), "{e}");
}

/// The tempered log-probs RL trainers score rollouts with are `log_softmax(logits / T)`: at
/// T = 0.5 and T = 2 they match the naive computation, differ from T = 1, and still sum to one
/// over the vocabulary; a zero, negative or NaN temperature is refused.
#[test]
fn tempered_logprobs_are_log_softmax_of_scaled_logits() {
    use mathforge_model::logprob::tempered_logprobs_from_hidden;
    let cfg = tiny_llama();
    let m = model(&cfg, 7, DType::F32);
    let input = ids(&[vec![3, 7, 1, 9, 4], vec![2, 5, 2, 8, 6]]);
    let targets = ids(&[vec![7, 1, 9, 4, 2], vec![5, 2, 8, 6, 1]]);
    let hidden = m.forward_hidden(&input, None).unwrap();
    let logits = m.forward(&input, None).unwrap();
    let plain = tempered_logprobs_from_hidden(&m, &hidden, &targets, 2, 1.0).unwrap();
    for t in [0.5f64, 2.0] {
        let naive = candle_nn::ops::log_softmax(&(&logits / t).unwrap(), D::Minus1)
            .unwrap()
            .gather(&targets.unsqueeze(2).unwrap(), 2)
            .unwrap()
            .squeeze(2)
            .unwrap();
        let lp = tempered_logprobs_from_hidden(&m, &hidden, &targets, 2, t).unwrap();
        assert!(max_abs_diff(&lp, &naive) < 1e-5, "T={t}");
        assert!(max_abs_diff(&lp, &plain) > 1e-3, "T={t} must change the distribution");
        // Probabilities of every vocabulary entry at one position sum to 1.
        let v = cfg.vocab_size as u32;
        let all = Tensor::arange(0u32, v, &Device::Cpu).unwrap().reshape((1, v as usize)).unwrap();
        let h0 = hidden.narrow(0, 0, 1).unwrap().narrow(1, 2, 1).unwrap();
        let h0 = h0.broadcast_as((1, v as usize, h0.dim(2).unwrap())).unwrap().contiguous().unwrap();
        let p: f32 = tempered_logprobs_from_hidden(&m, &h0, &all, 64, t)
            .unwrap()
            .exp()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!((p - 1.0).abs() < 1e-4, "T={t}: sum {p}");
    }
    for bad in [0.0, -1.0, f64::NAN] {
        let e = tempered_logprobs_from_hidden(&m, &hidden, &targets, 2, bad).unwrap_err();
        assert!(e.to_string().contains("temperature"), "{e}");
    }
}

/// The fused lm_head log-prob op (logits recomputed chunk by chunk in the backward pass) has the
/// gradients of the naive `log_softmax(h W^T / T)[target]` for the hidden states and the weight,
/// at T = 1 and T = 0.7, in f64, for chunk sizes that do and do not divide the row count; an
/// out-of-range target is refused by name.
#[test]
fn fused_linear_logprobs_have_the_naive_gradients() {
    use candle_core::Var;
    use mathforge_model::logprob::linear_target_logprobs;
    let dev = Device::Cpu;
    let (n, h, v) = (7usize, 5usize, 11usize);
    let r = |seed: u64, len: usize| -> Vec<f64> {
        (0..len).map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f64 / 500.0) - 1.0).collect()
    };
    let hid = Var::from_tensor(&Tensor::from_vec(r(1, n * h), (n, h), &dev).unwrap()).unwrap();
    let w = Var::from_tensor(&Tensor::from_vec(r(2, v * h), (v, h), &dev).unwrap()).unwrap();
    let tg = Tensor::new(&[3u32, 0, 10, 4, 4, 7, 1], &dev).unwrap();
    let coef = Tensor::from_vec(r(3, n), n, &dev).unwrap();
    for t in [1.0f64, 0.7] {
        let naive = candle_nn::ops::log_softmax(&(hid.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap() / t).unwrap(), D::Minus1)
            .unwrap()
            .gather(&tg.unsqueeze(1).unwrap(), 1)
            .unwrap()
            .squeeze(1)
            .unwrap();
        let gn = (&naive * &coef).unwrap().sum_all().unwrap().backward().unwrap();
        for chunk in [1usize, 3, 7, 64] {
            let lp = linear_target_logprobs(hid.as_tensor(), w.as_tensor(), &tg, chunk, t).unwrap();
            assert!(max_abs_diff(&lp, &naive) < 1e-12, "T={t} chunk={chunk}: values");
            let gf = (&lp * &coef).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, var) in [("hidden", &hid), ("weight", &w)] {
                let a = gn.get(var.as_tensor()).unwrap();
                let b = gf.get(var.as_tensor()).unwrap_or_else(|| panic!("no {name} gradient"));
                assert!(max_abs_diff(a, b) < 1e-12, "T={t} chunk={chunk}: {name} gradient");
            }
        }
    }
    let bad = Tensor::new(&[3u32, 0, 11, 4, 4, 7, 1], &dev).unwrap();
    let e = linear_target_logprobs(hid.as_tensor(), w.as_tensor(), &bad, 3, 1.0).unwrap_err();
    assert!(e.to_string().contains("vocab_size"), "{e}");
}
