//! Batched KV-cache generation on a tiny random model with a trained byte-level BPE tokenizer:
//! batched greedy equals one-by-one greedy and the full-sequence forward, seeded sampling is
//! reproducible and independent of batch composition, finished rows leave the batch, stop strings
//! and EOS end sequences, bad prompts are clear errors (issue 2, item 5).
use candle_core::{DType, Device, Tensor};
use mathforge_model::generate::{generate, Completion, GenerateOptions, GenerateStats};
use mathforge_model::sampling::{FinishReason, SamplingParams};
use mathforge_model::tokenizer::{train_bpe, BpeTrainConfig, Tokenizer};
use mathforge_model::{checkpoint, Config, Llama};

fn tokenizer() -> Tokenizer {
    let lines: Vec<String> = (0..100)
        .map(|i| format!("User: what is {i} plus {i}?\n\nAssistant: The answer is {}.\n", 2 * i))
        .collect();
    train_bpe(lines.into_iter(), &BpeTrainConfig { vocab_size: 300, ..Default::default() }).unwrap()
}

fn setup(window: usize) -> (Llama, Tokenizer) {
    let tok = tokenizer();
    let cfg = Config::from_json_str(&format!(
        r#"{{"model_type":"llama","hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,
        "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":{},"max_position_embeddings":{window},
        "rope_theta":10000.0,"rms_norm_eps":1e-5,"initializer_range":0.3}}"#,
        tok.vocab_size()
    ))
    .unwrap();
    let model = checkpoint::init_model(&cfg, 11, DType::F32, &Device::Cpu).unwrap().0;
    (model, tok)
}

fn prompts(tok: &Tokenizer) -> Vec<Vec<u32>> {
    ["What is 2+3?", "Compute 17 times 4, then add 1.", "x", "Let f(x) = x^2. Find f(12)."]
        .iter()
        .map(|p| tok.encode(&mathforge_model::chat::prompt(p), true).unwrap())
        .collect()
}

fn run(
    model: &Llama,
    tok: &Tokenizer,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
    opts: &GenerateOptions,
) -> (Vec<Vec<Completion>>, GenerateStats) {
    generate(model, tok, prompts, params, opts, |_| {}).unwrap()
}

fn no_eos() -> GenerateOptions {
    GenerateOptions { ignore_eos: true, ..Default::default() }
}

#[test]
fn greedy_batched_equals_one_by_one_and_full_forward() {
    let (model, tok) = setup(128);
    let ps = prompts(&tok);
    let params = SamplingParams { max_new_tokens: 12, ..Default::default() };
    let (batched, stats) = run(&model, &tok, &ps, &params, &no_eos());
    assert_eq!(stats.generated_tokens, 4 * 12);
    for (i, p) in ps.iter().enumerate() {
        let (alone, _) = run(&model, &tok, std::slice::from_ref(p), &params, &no_eos());
        assert_eq!(batched[i][0].token_ids, alone[0][0].token_ids, "prompt {i}");
        assert_eq!(batched[i][0].finish_reason, FinishReason::Length);
        assert_eq!(batched[i][0].text, tok.decode(&batched[i][0].token_ids, true).unwrap());

        // The KV-cache path agrees with one full forward over prompt + completion: each
        // generated token is the argmax there, and its log-prob matches.
        let c = &batched[i][0];
        let full: Vec<u32> = p.iter().chain(c.token_ids.iter()).copied().collect();
        let t = full.len();
        let ids = Tensor::from_vec(full, (1, t), &Device::Cpu).unwrap();
        let logits = model.forward(&ids, None).unwrap().squeeze(0).unwrap();
        let logp = candle_nn::ops::log_softmax(&logits, 1).unwrap().to_vec2::<f32>().unwrap();
        for (k, (&tokid, &lp)) in c.token_ids.iter().zip(&c.logprobs).enumerate() {
            let row = &logp[p.len() - 1 + k];
            let argmax = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
            assert_eq!(argmax as u32, tokid, "prompt {i} step {k}");
            assert!((row[tokid as usize] - lp).abs() < 1e-4, "prompt {i} step {k}: {} vs {lp}", row[tokid as usize]);
        }
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_independent_of_batching() {
    let (model, tok) = setup(128);
    let ps = prompts(&tok);
    let params = SamplingParams { temperature: 1.0, top_p: 0.95, top_k: 50, max_new_tokens: 10, n: 3, seed: 7, ..Default::default() };
    let (a, stats) = run(&model, &tok, &ps, &params, &no_eos());
    let (b, _) = run(&model, &tok, &ps, &params, &no_eos());
    assert_eq!(a, b, "same seed, same output");
    assert_eq!(stats.forward_calls, 1 + 9, "one prefill for all prompts (n replicated), 9 decode steps");
    // One prompt at a time (max_batch 3 = one prompt's n samples) gives the same sequences.
    let (c, stats_c) = run(&model, &tok, &ps, &params, &GenerateOptions { max_batch: 3, ..no_eos() });
    assert_eq!(stats_c.forward_calls, 4 * 10);
    for i in 0..ps.len() {
        for j in 0..3 {
            assert_eq!(a[i][j].token_ids, c[i][j].token_ids, "prompt {i} sample {j}");
        }
        assert!(a[i][0].token_ids != a[i][1].token_ids || a[i][1].token_ids != a[i][2].token_ids, "samples differ");
    }
    // A different seed changes the samples.
    let (d, _) = run(&model, &tok, &ps, &SamplingParams { seed: 8, ..params.clone() }, &no_eos());
    assert_ne!(a, d);
}

#[test]
fn finished_rows_leave_the_batch() {
    // Window 64: a 50-token prompt can generate at most 14 tokens, a short prompt all 30.
    let (model, tok) = setup(64);
    let short = tok.encode("Hi", true).unwrap();
    let long: Vec<u32> = (0..50).map(|i| 10 + i as u32).collect();
    let params = SamplingParams { max_new_tokens: 30, ..Default::default() };
    let (out, stats) = run(&model, &tok, &[short, long], &params, &no_eos());
    assert_eq!(out[0][0].token_ids.len(), 30);
    assert_eq!(out[1][0].token_ids.len(), 14);
    assert_eq!(out[1][0].finish_reason, FinishReason::Length);
    // Prefill (2 rows) + 13 steps with both rows + 16 steps with only the short one.
    assert_eq!(stats.forward_calls, 30);
    assert_eq!(stats.forward_rows, 2 + 13 * 2 + 16);
}

#[test]
fn eos_ends_a_sequence_and_is_kept_in_the_ids() {
    let (model, tok) = setup(128);
    let ps = prompts(&tok);
    let params = SamplingParams { max_new_tokens: 12, ..Default::default() };
    let (free, free_stats) = run(&model, &tok, &ps, &params, &no_eos());
    // Declare prompt 1's 4th greedy token an EOS id: that row stops there, others stop at their
    // first occurrence of it (if any).
    let eos_tok = free[1][0].token_ids[3];
    let opts = GenerateOptions { eos_ids: Some(vec![eos_tok]), ..Default::default() };
    let (out, stats) = run(&model, &tok, &ps, &params, &opts);
    for (i, c) in out.iter().enumerate() {
        let c = &c[0];
        match free[i][0].token_ids.iter().position(|&t| t == eos_tok) {
            Some(at) => {
                assert_eq!(c.finish_reason, FinishReason::Eos, "prompt {i}");
                assert_eq!(c.token_ids, free[i][0].token_ids[..=at], "prompt {i}");
                assert_eq!(c.logprobs.len(), at + 1);
            }
            None => assert_eq!(c.finish_reason, FinishReason::Length),
        }
    }
    assert_eq!(out[1][0].token_ids.len(), 4);
    assert!(stats.forward_rows < free_stats.forward_rows);
}

#[test]
fn stop_strings_cut_the_text() {
    let (model, tok) = setup(128);
    let ps = prompts(&tok);
    let params = SamplingParams { max_new_tokens: 16, ..Default::default() };
    let (free, _) = run(&model, &tok, &ps[..1], &params, &no_eos());
    let ids = &free[0][0].token_ids;
    // A stop string: the text of the first printable-ASCII token after the third.
    let stop = ids[3..]
        .iter()
        .map(|&t| tok.decode(&[t], true).unwrap())
        .find(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        .expect("some ASCII token among 13 random ones");
    let full = tok.decode(ids, true).unwrap();
    let at = full.find(&stop).unwrap();
    let (out, _) = run(&model, &tok, &ps[..1], &SamplingParams { stop: vec![stop.clone()], ..params }, &no_eos());
    let c = &out[0][0];
    assert_eq!(c.finish_reason, FinishReason::Stop);
    assert_eq!(c.text, full[..at], "text cut before {stop:?}");
    assert!(ids.starts_with(&c.token_ids) && c.token_ids.len() < ids.len() + 1);
    assert!(tok.decode(&c.token_ids, true).unwrap().contains(&stop), "the stop-completing token is kept");
}

#[test]
fn bad_prompts_are_clear_errors() {
    let (model, tok) = setup(32);
    let params = SamplingParams { max_new_tokens: 4, ..Default::default() };
    let long: Vec<u32> = vec![5; 32];
    let err = generate(&model, &tok, &[vec![5, 6], long], &params, &no_eos(), |_| {}).unwrap_err().to_string();
    assert!(err.contains("prompt 1") && err.contains("context window"), "{err}");
    let err = generate(&model, &tok, &[vec![]], &params, &no_eos(), |_| {}).unwrap_err().to_string();
    assert!(err.contains("prompt 0") && err.contains("empty"), "{err}");
    let err = generate(&model, &tok, &[vec![100_000]], &params, &no_eos(), |_| {}).unwrap_err().to_string();
    assert!(err.contains("vocab_size"), "{err}");
    let bad = SamplingParams { top_p: 1.5, ..params };
    let err = generate(&model, &tok, &[vec![5]], &bad, &no_eos(), |_| {}).unwrap_err().to_string();
    assert!(err.contains("top_p"), "{err}");
}

/// The fast CPU decoder (`decode.rs`, the default for f32 on the CPU) against candle's KV-cache
/// path: the same tokens and log-probs (to 1e-4) for greedy and seeded nucleus sampling with
/// several samples per prompt, on a Llama (GQA, tied embeddings) and a Qwen2 (q/k/v bias, one kv
/// head, untied lm_head, RoPE base 1e6 with linear scaling); plus its logits after a prefill
/// and after decode steps against `Llama::forward_step` directly.
#[test]
fn fast_cpu_decoder_equals_the_candle_path() {
    let tok = tokenizer();
    let v = tok.vocab_size();
    let configs = [
        format!(
            r#"{{"model_type":"llama","hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,
            "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":{v},"max_position_embeddings":96,
            "tie_word_embeddings":true,"initializer_range":0.3}}"#
        ),
        format!(
            r#"{{"model_type":"qwen2","hidden_size":48,"intermediate_size":40,"num_hidden_layers":3,
            "num_attention_heads":4,"num_key_value_heads":1,"vocab_size":{v},"max_position_embeddings":96,
            "tie_word_embeddings":false,"rope_theta":1000000.0,"rope_scaling":{{"type":"linear","factor":2.0}},
            "initializer_range":0.3}}"#
        ),
        // A vocabulary wider than the tokenizer's (ids past it are never fed), so that a decode
        // step's lm_head is split into several vocabulary blocks (one per worker of the pool).
        format!(
            r#"{{"model_type":"llama","hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,
            "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":{},"max_position_embeddings":96,
            "tie_word_embeddings":false,"initializer_range":0.3}}"#,
            v + 1337
        ),
    ];
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    pool.install(|| fast_cpu_cases(&tok, &configs));
}

fn fast_cpu_cases(tok: &Tokenizer, configs: &[String]) {
    let v = tok.vocab_size();
    for (ci, json) in configs.iter().enumerate() {
        let cfg = Config::from_json_str(json).unwrap();
        let model = checkpoint::init_model(&cfg, 40 + ci as u64, DType::F32, &Device::Cpu).unwrap().0;
        let fast = mathforge_model::decode::FastDecoder::new(&model).unwrap().expect("f32 CPU model");
        let ps = prompts(&tok);
        for params in [
            SamplingParams { max_new_tokens: 10, ..Default::default() },
            SamplingParams { max_new_tokens: 10, temperature: 1.0, top_p: 0.9, n: 3, seed: 7, ..Default::default() },
        ] {
            let (a, _) = run(&model, &tok, &ps, &params, &no_eos());
            let (b, _) = run(&model, &tok, &ps, &params, &GenerateOptions { fast_cpu: false, ..no_eos() });
            for (ga, gb) in a.iter().zip(&b) {
                for (x, y) in ga.iter().zip(gb) {
                    assert_eq!(x.token_ids, y.token_ids, "config {ci}");
                    for (p, q) in x.logprobs.iter().zip(&y.logprobs) {
                        assert!((p - q).abs() < 1e-4, "config {ci}: {p} vs {q}");
                    }
                }
            }
        }
        // Logits directly: prefill prompt 1, then three decode steps.
        let p = &ps[1];
        let mut cache = fast.new_cache();
        let mut kv = mathforge_model::KvCache::new(&cfg);
        let mut toks = p.clone();
        let mut next: Vec<u32> = p.clone();
        for step in 0..4 {
            let lf = fast.forward(&mut [mathforge_model::decode::Job { cache: &mut cache, tokens: &next }]).unwrap().remove(0);
            let past = toks.len() - next.len();
            let t = next.len();
            let ids = Tensor::from_vec(next.clone(), (1, t), &Device::Cpu).unwrap();
            let pos = Tensor::from_vec((past as u32..(past + t) as u32).collect::<Vec<_>>(), (1, t), &Device::Cpu).unwrap();
            let mask = Tensor::ones((1, past + t), DType::F32, &Device::Cpu).unwrap();
            let lc = model.forward_step(&ids, &pos, &mask, &mut kv).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(lf.len(), lc.len());
            for (x, y) in lf.iter().zip(&lc) {
                assert!((x - y).abs() < 1e-4 * y.abs().max(1.0), "config {ci} step {step}: {x} vs {y}");
            }
            assert_eq!(cache.len(), toks.len());
            let t = (step * 37 + 5) as u32 % v as u32;
            toks.push(t);
            next = vec![t];
        }
    }
}
