//! CLI tests for `mathforge tokenizer` and `mathforge generate`: train a tokenizer, init a tiny
//! random model with it (`mathforge model init`), generate from `--prompt` and from a JSONL file.
use crate::util::{ok, run};
use std::path::Path;

fn write_corpus(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("corpus.txt");
    let text: String = (0..300)
        .map(|i| format!("User: what is {i} plus {}?\n\nAssistant: The answer is {}.\n", i + 1, 2 * i + 1))
        .collect();
    std::fs::write(&p, text).unwrap();
    p
}

/// A trained tokenizer folder and a tiny random llama that uses it.
fn tiny_model(dir: &Path) -> std::path::PathBuf {
    let corpus = write_corpus(dir);
    let tok = dir.join("tok");
    ok(&["tokenizer", "train", "--input", corpus.to_str().unwrap(), "--vocab-size", "300", "--out", tok.to_str().unwrap()]);
    let cfg = dir.join("config.json");
    std::fs::write(
        &cfg,
        r#"{"model_type":"llama","hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,
        "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":300,"max_position_embeddings":64,
        "initializer_range":0.3,"bos_token_id":0,"eos_token_id":1}"#,
    )
    .unwrap();
    let model = dir.join("model");
    ok(&[
        "model",
        "init",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--tokenizer",
        tok.join("tokenizer.json").to_str().unwrap(),
    ]);
    std::fs::copy(tok.join("tokenizer_config.json"), model.join("tokenizer_config.json")).unwrap();
    model
}

#[test]
fn tokenizer_train_splits_digits_and_writes_hf_files() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write_corpus(dir.path());
    let out = dir.path().join("tok");
    let stdout =
        ok(&["tokenizer", "train", "--input", corpus.to_str().unwrap(), "--vocab-size", "320", "--out", out.to_str().unwrap()]);
    // Merges were learned (more than bytes + specials) within the requested size.
    let vocab: usize = stdout.split("vocab ").nth(1).and_then(|r| r.split(',').next()).unwrap().parse().unwrap();
    assert!(vocab > 259 && vocab <= 320, "{stdout}");
    assert!(out.join("tokenizer.json").is_file() && out.join("tokenizer_config.json").is_file());
    let enc = ok(&["tokenizer", "encode", "--tokenizer", out.to_str().unwrap(), "--text", "2048"]);
    let v: serde_json::Value = serde_json::from_str(enc.trim()).unwrap();
    assert_eq!(v["tokens"], serde_json::json!(["<｜begin▁of▁sentence｜>", "2", "0", "4", "8"]));
    // Bad input: a missing file and a too-small vocabulary are one-line errors.
    let r = run(&["tokenizer", "train", "--input", "/nonexistent.txt", "--vocab-size", "300", "--out", out.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("/nonexistent.txt"));
    let r = run(&["tokenizer", "train", "--input", corpus.to_str().unwrap(), "--vocab-size", "10", "--out", out.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("too small"));
}

#[test]
fn generate_prompt_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let m = model.to_str().unwrap();
    // --prompt, greedy, EOS ignored: exactly max-new-tokens tokens, reproducible.
    let args = ["generate", "--model", m, "--prompt", "What is 2+3?", "--chat", "--max-new-tokens", "7", "--ignore-eos", "--json"];
    let a = ok(&args);
    let v: serde_json::Value = serde_json::from_str(a.trim()).unwrap();
    assert_eq!(v["num_tokens"], 7);
    assert_eq!(v["finish_reason"], "length");
    assert_eq!(v["prompt"], "User: What is 2+3?\n\nAssistant:");
    assert_eq!(v["logprobs"].as_array().unwrap().len(), 7);
    assert_eq!(ok(&args), a);

    // --input/--output with n samples; other input fields are copied; same seed, same file.
    let inp = dir.path().join("prompts.jsonl");
    std::fs::write(
        &inp,
        "{\"id\": \"a\", \"prompt\": \"1+1?\"}\n{\"id\": \"b\", \"messages\": [{\"role\": \"user\", \"content\": \"2+2?\"}]}\n",
    )
    .unwrap();
    let out1 = dir.path().join("out1.jsonl");
    let out2 = dir.path().join("out2.jsonl");
    for out in [&out1, &out2] {
        ok(&[
            "generate", "--model", m, "--input", inp.to_str().unwrap(), "--output", out.to_str().unwrap(), "--chat",
            "--n", "3", "--temperature", "1.0", "--top-p", "0.9", "--seed", "5", "--max-new-tokens", "6",
        ]);
    }
    let text = std::fs::read_to_string(&out1).unwrap();
    assert_eq!(text, std::fs::read_to_string(&out2).unwrap());
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[5]["id"], "b");
    assert_eq!(lines[5]["sample_index"], 2);
    assert_eq!(lines[3]["prompt"], "User: 2+2?\n\nAssistant:");
    for l in &lines {
        let n = l["num_tokens"].as_u64().unwrap();
        assert!(n >= 1 && n <= 6);
        assert!(["eos", "length"].contains(&l["finish_reason"].as_str().unwrap()));
    }
}

#[test]
fn generate_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let m = model.to_str().unwrap();
    let long = "word ".repeat(100);
    let r = run(&["generate", "--model", m, "--prompt", &long]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("context window"), "{err}");
    let r = run(&["generate", "--model", m, "--prompt", "x", "--top-p", "0"]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("top_p"));
    let r = run(&["generate", "--model", dir.path().join("nope").to_str().unwrap(), "--prompt", "x"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("tokenizer.json"));
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"prompt\": 3}\n").unwrap();
    let out = dir.path().join("o.jsonl");
    let r = run(&["generate", "--model", m, "--input", bad.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("bad.jsonl:1") && err.contains("prompt"), "{err}");
}

#[test]
fn help_has_examples() {
    assert!(ok(&["generate", "--help"]).contains("Examples:"));
    assert!(ok(&["tokenizer", "train", "--help"]).contains("Examples:"));
}
