//! CLI tests for `mathforge model init|info` and `mathforge score`.
use super::util::{ok, run};
use std::path::Path;

const CFG: &str = r#"{"model_type":"llama","hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,
"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":40,"max_position_embeddings":16,
"bos_token_id":1,"eos_token_id":2,"initializer_range":0.5}"#;

/// A WordLevel tokenizer over `w0..w{n-1}` with whitespace splitting.
fn tokenizer(path: &Path, n: usize) {
    let vocab: serde_json::Map<String, serde_json::Value> = (0..n).map(|i| (format!("w{i}"), serde_json::json!(i))).collect();
    let j = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "w0"}
    });
    std::fs::write(path, j.to_string()).unwrap();
}

fn init(dir: &Path, extra: &[&str]) -> String {
    let cfg = dir.join("cfg.json");
    std::fs::write(&cfg, CFG).unwrap();
    let out = dir.join("m");
    let mut args = vec!["model", "init", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--seed", "3"];
    args.extend_from_slice(extra);
    ok(&args)
}

#[test]
fn model_init_then_info() {
    let dir = tempfile::tempdir().unwrap();
    let said = init(dir.path(), &[]);
    assert!(said.contains("wrote") && said.contains("llama"), "{said}");
    let m = dir.path().join("m");
    for f in ["config.json", "model.safetensors", "generation_config.json"] {
        assert!(m.join(f).is_file(), "{f}");
    }
    let info = ok(&["model", "info", m.to_str().unwrap()]);
    assert!(info.contains("parameters") && info.contains("AdamW"), "{info}");
    let j: serde_json::Value = serde_json::from_str(&ok(&["model", "info", "--json", m.to_str().unwrap()])).unwrap();
    // embed 40x32 + lm_head 40x32 + 2 layers x (2 norms 32 + q 32x32 + k,v 16x32 + o 32x32 + 3 x 64x32) + norm 32
    let per_layer = 2 * 32 + 32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 64 * 32;
    assert_eq!(j["parameters"], 2 * 40 * 32 + 2 * per_layer + 32);
    assert_eq!(j["stored_dtypes"][0], "F32");

    // Refuses to overwrite; --force and sharding work; bf16 storage.
    let again = run(&["model", "init", "--config", dir.path().join("cfg.json").to_str().unwrap(), "--out", m.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    init(dir.path(), &["--force", "--max-shard-size", "10KB", "--dtype", "bf16"]);
    assert!(m.join("model.safetensors.index.json").is_file());
    assert!(!m.join("model.safetensors").exists());
    let j: serde_json::Value = serde_json::from_str(&ok(&["model", "info", "--json", m.to_str().unwrap()])).unwrap();
    assert_eq!(j["stored_dtypes"][0], "BF16");
    assert!(j["files"].as_u64().unwrap() > 1);
}

#[test]
fn model_errors_name_the_field_or_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.json");
    std::fs::write(&cfg, r#"{"model_type":"llama","hidden_size":32}"#).unwrap();
    let out = run(&["model", "init", "--config", cfg.to_str().unwrap(), "--out", dir.path().join("x").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json") && err.contains("intermediate_size"), "{err}");
    // A tokenizer bigger than the embedding.
    let tok = dir.path().join("tok.json");
    tokenizer(&tok, 50);
    let c = dir.path().join("cfg.json");
    std::fs::write(&c, CFG).unwrap();
    let out = run(&["model", "init", "--config", c.to_str().unwrap(), "--out", dir.path().join("y").to_str().unwrap(), "--tokenizer", tok.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vocab_size is 40"));
    // info on a directory without weights.
    let out = run(&["model", "info", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_has_examples() {
    for args in [&["model", "init", "--help"][..], &["model", "info", "--help"], &["score", "--help"]] {
        assert!(ok(args).contains("mathforge"), "{args:?}");
    }
}

#[test]
fn score_texts_and_pairs_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("tok.json");
    tokenizer(&tok, 40);
    init(dir.path(), &["--tokenizer", tok.to_str().unwrap()]);
    let m = dir.path().join("m");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\":1,\"text\":\"w5 w6 w7 w8\"}\n{\"id\":2,\"prompt\":\"w5 w6 \",\"completion\":\"w7 w8\"}\n{\"id\":3,\"nothing\":true}\nnot json\n{\"id\":4,\"text\":\"w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3 w3\"}\n",
    )
    .unwrap();
    let outp = dir.path().join("out.jsonl");
    let res = run(&["score", "--model", m.to_str().unwrap(), "--input", input.to_str().unwrap(), "--output", outp.to_str().unwrap(), "--batch-size", "2", "--chunk", "2"]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("scored 2") && err.contains("skipped 3") && err.contains("context window"), "{err}");
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(&outp).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let lp = |r: &serde_json::Value| -> Vec<f64> { r["logprobs"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
    let (text, pair) = (&rows[0], &rows[1]);
    assert_eq!(text["id"], 1);
    assert_eq!(text["tokens"], serde_json::json!(["w5", "w6", "w7", "w8"]));
    assert_eq!(pair["tokens"], serde_json::json!(["w7", "w8"]));
    let (a, b) = (lp(text), lp(pair));
    assert!(a.iter().all(|&x| x < 0.0));
    // The pair's completion log-probs are the text's last two (same prefix, same tokens).
    for (x, y) in a[2..].iter().zip(&b) {
        assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }
    let sum: f64 = b.iter().sum();
    assert!((pair["sum_logprob"].as_f64().unwrap() - sum).abs() < 1e-4);
    assert_eq!(pair["num_tokens"], 2);
    assert!(pair["is_greedy"].is_boolean());
}
