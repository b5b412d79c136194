//! CLI tests for `mathforge train`: help with examples, config-file errors that name the key or
//! file, and flags overriding the file (checked through the resolved `config.toml`).
use crate::util::{ok, run};

#[test]
fn train_help_has_examples() {
    for verb in ["pretrain", "sft", "grpo"] {
        let out = ok(&["train", verb, "--help"]);
        assert!(out.contains("Example") && out.contains("--config"), "{verb}: {out}");
    }
}

#[test]
fn unknown_config_key_is_named_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, "lr = 0.001\nwarmup_steps = 5\n").unwrap();
    let out = run(&["train", "pretrain", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run.toml") && err.contains("unknown key `warmup_steps`"), "{err}");
    assert!(err.contains("did you mean `warmup-steps`"), "{err}");
}

#[test]
fn missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        run(&["train", "pretrain", "--config", dir.path().join("nope.toml").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
    let missing = dir.path().join("missing.jsonl");
    let spec = format!("math:1:{}", missing.display());
    let out = run(&[
        "train",
        "pretrain",
        "--model-config",
        "x.json",
        "--tokenizer",
        "t",
        "--data",
        &spec,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.jsonl") && err.contains("does not exist"), "{err}");
}
