//! Helpers: run the built `mathforge` binary and capture its output; build a tiny model with it.
#![allow(dead_code)]
use std::process::{Command, Output};

/// Path of the binary under test (built by cargo for integration tests).
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mathforge"))
}

/// Run with args; returns the output (does not assert success).
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("spawn mathforge")
}

/// Run and assert exit 0; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "mathforge {:?} failed: {}\n{}",
        args,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// `MATHFORGE_SHARED_DATA` as a path, or `None` (with a printed skip reason).
pub fn shared_data(test: &str) -> Option<std::path::PathBuf> {
    match std::env::var_os("MATHFORGE_SHARED_DATA") {
        Some(p) => Some(std::path::PathBuf::from(p)),
        None => {
            eprintln!("skipping {test}: MATHFORGE_SHARED_DATA is not set");
            None
        }
    }
}

/// A tiny random Llama (2 layers, width 32, `max_pos` positions) made through the binary:
/// `tokenizer train` on `corpus` (300 tokens, into `dir/tok`), then `model init`. Returns the
/// model folder (`dir/model`).
pub fn tiny_cli_model(dir: &std::path::Path, corpus: &str, max_pos: usize) -> std::path::PathBuf {
    let s = |p: &std::path::Path| p.to_str().expect("utf-8 temp path").to_string();
    let (text, tok, conf, model) =
        (dir.join("corpus.txt"), dir.join("tok"), dir.join("config.json"), dir.join("model"));
    std::fs::write(&text, corpus).unwrap();
    ok(&["tokenizer", "train", "--input", &s(&text), "--vocab-size", "300", "--out", &s(&tok)]);
    let config = serde_json::json!({
        "model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300,
        "max_position_embeddings": max_pos, "initializer_range": 0.02, "bos_token_id": 0,
        "eos_token_id": 1
    });
    std::fs::write(&conf, config.to_string()).unwrap();
    let tok_file = s(&tok.join("tokenizer.json"));
    ok(&["model", "init", "--config", &s(&conf), "--out", &s(&model), "--tokenizer", &tok_file]);
    model
}
