//! CLI tests for `mathforge train`: help with examples, config-file errors that name the key or
//! file, and flags overriding the file (checked through the resolved `config.toml`).
use crate::util::{ok, run, tiny_cli_model};

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

#[test]
fn ppo_and_rm_help_and_config_keys() {
    for verb in ["ppo", "rm"] {
        let out = ok(&["train", verb, "--help"]);
        assert!(out.contains("Example") && out.contains("--config"), "{verb}: {out}");
    }
    let out = ok(&["train", "ppo", "--help"]);
    for flag in ["--vf-coef", "--lam", "--gamma", "--critic-init", "--reward-model"] {
        assert!(out.contains(flag), "{flag}: {out}");
    }
    // A PPO key in an RM config is unknown there, and the error names key and file.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rm.toml");
    std::fs::write(&cfg, "kind = \"prm\"\nvf-coef = 0.1\n").unwrap();
    let out = run(&["train", "rm", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rm.toml") && err.contains("unknown key `vf-coef`"), "{err}");
    let out = run(&["train", "rm", "--kind", "xrm", "--init", "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("orm, prm"));
}

/// `train rft` / `train dpo` (unified paradigm, §5.2): help with examples, and config errors that
/// name the key or the file.
#[test]
fn rft_and_dpo_help_and_bad_input() {
    for verb in ["rft", "dpo"] {
        let out = ok(&["train", verb, "--help"]);
        assert!(out.contains("Example") && out.contains("--config"), "{verb}: {out}");
    }
    assert!(ok(&["train", "rft", "--help"]).contains("--online"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dpo.toml");
    std::fs::write(&cfg, "beta = 0.1\nonline = true\n").unwrap();
    let out = run(&["train", "dpo", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dpo.toml") && err.contains("unknown key `online`"), "{err}");
    let out = run(&["train", "dpo", "--init", "nowhere", "--pairs-file", "no-pairs.jsonl"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-pairs.jsonl") && err.contains("does not exist"), "{err}");
}

/// End to end through the binary: tokenizer + tiny random model, 40 SFT steps on answers that are
/// right (`#### 2`) or wrong (`#### 3`) half the time, then 2 steps each of DPO (pairs sampled
/// from the SFT model), offline RFT (from a config file, flags overriding it) and Online RFT.
#[test]
fn sft_then_dpo_rft_online_rft_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let questions = ["What is 1 plus 1?", "What is 0 plus 2?", "What is 3 minus 1?", "What is 1 times 2?"];
    let corpus: String = (0..40)
        .map(|i| format!("User: {}\n\nAssistant: #### {}\n", questions[i % 4], 2 + i % 2))
        .collect();
    let model = tiny_cli_model(d, &corpus, 64);
    let (mut task, mut sft) = (String::new(), String::new());
    for q in questions {
        task.push_str(&format!("{}\n", serde_json::json!({"question": q, "answer": "#### 2"})));
        sft.push_str(&format!("{}\n", serde_json::json!({"question": q, "answer": "#### 2"})));
        sft.push_str(&format!("{}\n", serde_json::json!({"question": q, "answer": "#### 3"})));
    }
    std::fs::write(d.join("task.jsonl"), task).unwrap();
    std::fs::write(d.join("sft.jsonl"), sft).unwrap();
    let sft_run = d.join("sft");
    ok(&[
        "train", "sft", "--init", &s(&model), "--out", &s(&sft_run), "--train-file", &s(&d.join("sft.jsonl")),
        "--steps", "40", "--lr", "0.01", "--schedule", "constant", "--warmup-steps", "0", "--batch-size", "8",
        "--micro-batch-size", "8", "--max-len", "48", "--save-every", "40",
    ]);
    let sft_ck = s(&sft_run.join("checkpoints/step-40"));
    let task = s(&d.join("task.jsonl"));
    let lines = |p: &std::path::Path| std::fs::read_to_string(p).unwrap().lines().count();
    let common = ["--steps", "2", "--batch-size", "4", "--micro-batch-size", "2", "--temperature", "1.5", "--max-completion-len", "6", "--eval-questions", "4"];

    let dpo = d.join("dpo");
    let mut args = vec!["train", "dpo", "--init", &sft_ck, "--out", dpo.to_str().unwrap(), "--train-data", &task, "--eval-data", &task, "--samples-per-question", "8", "--lr", "0.003"];
    args.extend(common);
    let out = ok(&args);
    assert!(out.trim().ends_with("dpo"), "prints the run folder: {out}");
    assert_eq!(lines(&dpo.join("metrics.jsonl")), 3, "step 0 (data, eval) + 2 steps");
    assert!(lines(&dpo.join("dpo-pairs.jsonl")) >= 1);
    assert!(dpo.join("checkpoints/step-2/model.safetensors").exists());

    let rft_cfg = d.join("rft.toml");
    std::fs::write(&rft_cfg, format!("train-data = {task:?}\nsamples-per-question = 8\nlr = 0.5\nsteps = 7\n")).unwrap();
    let rft = d.join("rft");
    let mut args = vec!["train", "rft", "--config", rft_cfg.to_str().unwrap(), "--init", &sft_ck, "--out", rft.to_str().unwrap(), "--lr", "0.003", "--eval-data", &task];
    args.extend(common);
    ok(&args);
    let resolved = std::fs::read_to_string(rft.join("config.toml")).unwrap();
    assert!(resolved.contains("lr = 0.003") && resolved.contains("steps = 2"), "flags override the file: {resolved}");
    assert!(resolved.contains("online = false") && resolved.contains("samples-per-question = 8"));
    assert!(lines(&rft.join("rft-data.jsonl")) >= 1);

    let online = d.join("online");
    let mut args = vec!["train", "rft", "--online", "--init", &sft_ck, "--out", online.to_str().unwrap(), "--train-data", &task, "--eval-data", &task, "--samples-per-question", "4", "--questions-per-step", "2", "--lr", "0.003"];
    args.extend(common);
    ok(&args);
    assert!(std::fs::read_to_string(online.join("config.toml")).unwrap().contains("online = true"));
    assert_eq!(lines(&online.join("samples-0.jsonl")), 16, "2 steps x 2 questions x 4 samples");
}

/// Process supervision through the CLI: `train rm --kind prm` on labelled steps, then 2 steps of
/// `train grpo --reward-model PRM --supervision process`; an outcome RM there is refused.
#[test]
fn grpo_process_supervision_two_steps() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let corpus: String =
        (0..40).map(|i| format!("What is {} + 1?\n{} + 1 = {}\n#### {}\n", i % 9, i % 9, i % 9 + 1, i % 9 + 1)).collect();
    let model = tiny_cli_model(d, &corpus, 512);
    let rows: String = (0..12)
        .map(|i| {
            let ok = i % 2 == 0;
            let sum = if ok { i % 9 + 1 } else { i % 9 + 2 };
            format!("{}\n", serde_json::json!({"prompt": format!("What is {} + 1?", i % 9), "steps": [format!("{} + 1 = {sum}", i % 9), format!("#### {sum}")], "labels": [ok, ok]}))
        })
        .collect();
    std::fs::write(d.join("prm.jsonl"), rows).unwrap();
    let prm = d.join("prm");
    ok(&["train", "rm", "--kind", "prm", "--init", &s(&model), "--out", &s(&prm), "--train-file", &s(&d.join("prm.jsonl")), "--steps", "2", "--batch-size", "4", "--micro-batch-size", "4"]);
    let prm_ck = s(&prm.join("checkpoints/step-2"));
    let grpo = d.join("grpo");
    let args = |out: &str, rm: &str| -> Vec<String> {
        ["train", "grpo", "--init", &s(&model), "--out", out, "--reward-model", rm, "--supervision", "process", "--steps", "2",
         "--train-data", "arith:split=train,steps=1,n=20", "--eval-questions", "2", "--group-size", "2", "--questions-per-step", "2",
         "--max-completion-len", "6", "--batch-size", "4", "--micro-batch-size", "4"]
            .iter()
            .map(|a| a.to_string())
            .collect()
    };
    let a = args(&s(&grpo), &prm_ck);
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let resolved = std::fs::read_to_string(grpo.join("config.toml")).unwrap();
    assert!(resolved.contains("supervision = \"process\""), "{resolved}");
    assert!(grpo.join("checkpoints/step-2/model.safetensors").exists());
    let metrics = std::fs::read_to_string(grpo.join("metrics.jsonl")).unwrap();
    assert!(metrics.lines().last().unwrap().contains("\"step\":2"), "{metrics}");
    // An outcome RM cannot supervise steps.
    let orm = d.join("orm.jsonl");
    std::fs::write(&orm, "{\"prompt\": \"What is 1 + 1?\", \"completion\": \"#### 2\", \"label\": 1}\n{\"prompt\": \"What is 1 + 1?\", \"completion\": \"#### 3\", \"label\": 0}\n").unwrap();
    ok(&["train", "rm", "--init", &s(&model), "--out", &s(&d.join("orm")), "--train-file", &s(&orm), "--steps", "1", "--heldout-frac", "0"]);
    let a = args(&s(&d.join("bad")), &s(&d.join("orm/checkpoints/step-1")));
    let out = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("process reward model"));
}
