//! Fixtures shared by the train integration tests (`mod util;` in each test file): a byte-level
//! BPE tokenizer trained on the test's own texts and a tiny Llama `config.json` (2 layers, width
//! 32) sized to it, readers for the files a run writes, and a quickly trained outcome reward model.
#![allow(dead_code)]
use mathforge_model::tokenizer::{train_bpe, BpeTrainConfig};
use mathforge_train::rm::RmConfig;
use mathforge_train::trainer::CommonConfig;
use std::path::{Path, PathBuf};

/// Train a 300-token BPE on `texts` into `root/tok/` and write `root/config.json` for a tiny
/// Llama with `max_pos` positions. Returns (tokenizer folder, config path).
pub fn tiny_model(root: &Path, texts: &[String], max_pos: usize) -> (PathBuf, PathBuf) {
    let tok = train_bpe(
        texts.iter().map(String::as_str),
        &BpeTrainConfig { vocab_size: 300, ..Default::default() },
    )
    .unwrap();
    let tok_dir = root.join("tok");
    tok.save_dir(&tok_dir, Some(2 * max_pos)).unwrap();
    let cfg = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": tok.vocab_size(), "max_position_embeddings": max_pos,
        "rms_norm_eps": 1e-5, "tie_word_embeddings": false, "bos_token_id": 0, "eos_token_id": 1,
        "pad_token_id": 2, "initializer_range": 0.02
    });
    let cfg_path = root.join("config.json");
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    (tok_dir, cfg_path)
}

/// The records of `<run>/metrics.jsonl`.
pub fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Write `rows` as JSONL.
pub fn write_jsonl(path: &Path, rows: &[serde_json::Value]) {
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// ORM data where the label is whether the final answer equals a + b: learnable from the text.
pub fn orm_rows(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let (a, b) = (i % 9, (i / 9) % 7);
            let right = i % 2 == 0;
            let ans = if right { a + b } else { a + b + 1 + i % 3 };
            serde_json::json!({"prompt": format!("What is {a} + {b}?"), "completion": format!("{a} + {b} = {ans}\n#### {ans}"), "label": u8::from(right)})
        })
        .collect()
}

/// Write [`orm_rows`]`(16)` to `dir/orm.jsonl` and train an outcome reward model on it with
/// `common` (its `out`, `steps`, model and tokenizer). Returns the run folder.
pub fn train_orm(dir: &Path, common: CommonConfig) -> PathBuf {
    let data = dir.join("orm.jsonl");
    write_jsonl(&data, &orm_rows(16));
    let rm =
        RmConfig { common, train_file: Some(data.display().to_string()), ..Default::default() };
    mathforge_train::rm::run(&rm, None, |_| {}).unwrap()
}
