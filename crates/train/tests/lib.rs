//! End-to-end tests of the trainers on a tiny Llama (2 layers, width 32) with a byte-level BPE
//! tokenizer trained in the test: pretrain (mixture, perplexity, checkpoints, exact resume, NaN
//! stop, memory refusal), SFT (response-only loss) and GRPO (rollouts, verifier reward, metrics).
//! Each run is a few steps so the whole file stays within seconds in release mode.
use mathforge_train::grpo::GrpoConfig;
use mathforge_train::pretrain::PretrainConfig;
use mathforge_train::sft::{batch_tensors, encode_pair, SftConfig};
use mathforge_train::trainer::CommonConfig;
use std::path::{Path, PathBuf};
use util::metrics;

mod util;

fn arith_docs(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "Ava has {} apples. She buys {} more. Now she has {} apples.",
                i % 9 + 1,
                i % 7 + 1,
                i % 9 + i % 7 + 2
            )
        })
        .collect()
}

/// A folder with tokenizer.json, a tiny model config.json and two JSONL sources.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let docs = arith_docs(60);
    let (tok_dir, cfg_path) = util::tiny_model(dir.path(), &docs, 256);
    let mut a = String::new();
    for d in &docs {
        a.push_str(&serde_json::json!({ "text": d }).to_string());
        a.push('\n');
    }
    a.push_str("{not json\n{\"other\": 1}\n");
    std::fs::write(dir.path().join("math.jsonl"), a).unwrap();
    let mut b = String::new();
    for i in 0..30 {
        b.push_str(
            &serde_json::json!({ "text": format!("fn f{i}() {{ return {i}; }}") }).to_string(),
        );
        b.push('\n');
    }
    std::fs::write(dir.path().join("code.jsonl"), b).unwrap();
    (dir, tok_dir, cfg_path)
}

fn common(out: &Path, tok: &Path, cfg: &Path, steps: u64) -> CommonConfig {
    CommonConfig {
        out: out.display().to_string(),
        model_config: Some(cfg.display().to_string()),
        tokenizer: Some(tok.display().to_string()),
        steps,
        lr: 3e-3,
        warmup_steps: 1,
        batch_size: 4,
        micro_batch_size: 2,
        save_every: 2,
        keep_checkpoints: 0,
        ..Default::default()
    }
}

fn pretrain_cfg(dir: &Path, out: &str, tok: &Path, cfg: &Path, steps: u64) -> PretrainConfig {
    PretrainConfig {
        common: common(&dir.join(out), tok, cfg, steps),
        data: vec![
            format!("math:0.7:{}", dir.join("math.jsonl").display()),
            format!("code:0.3:{}", dir.join("code.jsonl").display()),
        ],
        seq_len: 32,
        heldout_docs: 5,
        heldout_windows: 2,
        ..Default::default()
    }
}


#[test]
fn pretrain_logs_checkpoints_and_resumes_exactly() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    // Straight: 4 steps.
    let straight =
        mathforge_train::pretrain::run(&pretrain_cfg(d, "a", &tok, &cfg, 4), None, |_| {}).unwrap();
    let m = metrics(&straight);
    assert_eq!(m.iter().map(|r| r["step"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(m[3]["heldout_ppl"].as_f64().unwrap() > 1.0);
    assert!(m[3].get("heldout_ppl_math").is_some() && m[3].get("heldout_ppl_code").is_some());
    let ck = straight.join("checkpoints/step-4");
    for f in
        ["config.json", "model.safetensors", "optimizer.safetensors", "meta.json", "tokenizer.json"]
    {
        assert!(ck.join(f).exists(), "{f} in checkpoint");
    }
    assert!(straight.join("config.toml").exists() && straight.join("plots/loss.png").exists());
    // The checkpoint is an HF model folder the model crate can load.
    mathforge_model::checkpoint::load(&ck, candle_core::DType::F32, &candle_core::Device::Cpu)
        .unwrap();

    // Interrupted: 2 steps, then the same command with steps = 4 resumes from step-2.
    mathforge_train::pretrain::run(&pretrain_cfg(d, "b", &tok, &cfg, 2), None, |_| {}).unwrap();
    let resumed =
        mathforge_train::pretrain::run(&pretrain_cfg(d, "b", &tok, &cfg, 4), None, |_| {}).unwrap();
    assert_eq!(
        std::fs::read(ck.join("model.safetensors")).unwrap(),
        std::fs::read(resumed.join("checkpoints/step-4/model.safetensors")).unwrap(),
        "2 + 2 resumed steps equal 4 straight steps bit for bit"
    );
    assert_eq!(metrics(&resumed).len(), 4);
}

#[test]
fn nan_stops_with_last_good_checkpoint_and_memory_is_checked() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    let mut c = pretrain_cfg(d, "nan", &tok, &cfg, 6);
    c.common.lr = 1e30;
    c.common.warmup_steps = 0;
    c.common.max_grad_norm = 0.0;
    c.common.save_every = 100;
    let err = mathforge_train::pretrain::run(&c, None, |_| {}).unwrap_err().to_string();
    assert!(err.contains("non-finite") && err.contains("last good state"), "{err}");
    let saved = mathforge_train::checkpoint::latest(&d.join("nan"))
        .unwrap()
        .expect("last good state saved");
    let meta = mathforge_train::checkpoint::load_meta(&saved).unwrap();
    assert!(meta.step < 6);

    let mut c = pretrain_cfg(d, "oom", &tok, &cfg, 2);
    c.common.max_memory_mib = Some(0);
    let err = mathforge_train::pretrain::run(&c, None, |_| {}).unwrap_err().to_string();
    assert!(err.contains("estimated memory") && err.contains("moments"), "{err}");
}

#[test]
fn sft_masks_prompt_and_trains() {
    let (dir, tok_dir, cfg) = setup();
    let d = dir.path();
    let tok = mathforge_model::tokenizer::Tokenizer::from_dir(&tok_dir).unwrap();
    let p = encode_pair(&tok, "Ava has 2 apples.", "She has 2. #### 2", 128).unwrap().unwrap();
    let resp = p.ids.len() - p.prompt_len;
    let (_, _, tgt, mask) = batch_tensors(&[&p], tok.pad_id(), &candle_core::Device::Cpu).unwrap();
    let mask: Vec<f32> = mask.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(
        mask.iter().sum::<f32>() as usize,
        resp,
        "loss only on response tokens (EOS included)"
    );
    let tgt: Vec<u32> = tgt.flatten_all().unwrap().to_vec1().unwrap();
    let first = mask.iter().position(|&m| m == 1.0).unwrap();
    assert_eq!(tgt[first], p.ids[p.prompt_len], "first masked target is the first response token");
    assert_eq!(*tgt.last().unwrap(), tok.eos_ids()[0]);

    let mut rows = String::new();
    for i in 0..12 {
        rows.push_str(&serde_json::json!({"question": format!("What is {i} plus 1?"), "answer": format!("{i} + 1 = {}. #### {}", i + 1, i + 1)}).to_string());
        rows.push('\n');
    }
    std::fs::write(d.join("sft.jsonl"), rows).unwrap();
    let c = SftConfig {
        common: common(&d.join("sft"), &tok_dir, &cfg, 3),
        train_file: d.join("sft.jsonl").display().to_string(),
        eval_file: Some(d.join("sft.jsonl").display().to_string()),
        max_len: 64,
        ..Default::default()
    };
    let run = mathforge_train::sft::run(&c, None, |_| {}).unwrap();
    let m = metrics(&run);
    assert_eq!(m.len(), 3);
    assert!(m[2]["eval_loss"].as_f64().unwrap().is_finite());
}

#[test]
fn grpo_runs_rollouts_and_logs_issue_metrics() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    let c = GrpoConfig {
        common: CommonConfig { lr: 1e-3, save_every: 2, ..common(&d.join("grpo"), &tok, &cfg, 2) },
        train_data: "arith:split=train,steps=1,n=20".into(),
        eval_data: Some("arith:split=heldout,steps=1,n=4".into()),
        eval_questions: 4,
        group_size: 3,
        questions_per_step: 2,
        max_completion_len: 8,
        mask_truncated: true,
        ..Default::default()
    };
    let run = mathforge_train::grpo::run(&c, None, |_| {}).unwrap();
    let m = metrics(&run);
    // Step 0 is the initial evaluation, then one line per optimizer step.
    assert_eq!(m.iter().map(|r| r["step"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2]);
    for k in [
        "reward_mean",
        "reward_std",
        "accuracy",
        "zero_std_frac",
        "kl",
        "clip_frac",
        "entropy",
        "completion_len_mean",
        "completion_len_max",
        "truncated_frac",
        "generation_seconds",
        "reward_seconds",
        "train_seconds",
        "tokens_per_second",
        "eval_greedy_acc",
    ] {
        assert!(m[2].get(k).is_some(), "metric {k} missing: {}", m[2]);
    }
    // An untrained model never finishes in 8 tokens: all truncated, all masked, loss 0.
    assert_eq!(m[1]["truncated_frac"].as_f64().unwrap(), 1.0);
    assert!(run.join("checkpoints/step-2/meta.json").exists());
    assert!(std::fs::read_dir(&run).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("samples-")));
}

/// `max-minutes`: the budget ends the run before `steps` with an evaluation and a checkpoint that
/// records the time spent; running the command again resumes and stops at once (no extra step,
/// no duplicate checkpoint), so "at most N minutes of GRPO" holds across restarts.
#[test]
fn grpo_time_budget_stops_saves_and_survives_resume() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    let c = GrpoConfig {
        common: CommonConfig {
            lr: 1e-3,
            save_every: 100,
            eval_every: 100,
            ..common(&d.join("grpo"), &tok, &cfg, 5)
        },
        train_data: "arith:split=train,steps=1,n=20".into(),
        eval_data: Some("arith:split=heldout,steps=1,n=4".into()),
        eval_questions: 2,
        group_size: 2,
        questions_per_step: 2,
        max_completion_len: 4,
        // A budget any stage exceeds: exactly one stage runs.
        max_minutes: 1e-9,
        ..Default::default()
    };
    let run = mathforge_train::grpo::run(&c, None, |_| {}).unwrap();
    let m = metrics(&run);
    let steps: Vec<u64> = m.iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![0, 1, 1], "initial eval, one step, the closing eval: {m:?}");
    assert!(m[1]["train_wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(m[2].get("eval_greedy_acc").is_some());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoints/step-1/meta.json")).unwrap())
            .unwrap();
    assert!(meta.to_string().contains("train_wall_seconds"), "{meta}");
    // Again: resumed at step 1 with the budget already spent.
    mathforge_train::grpo::run(&c, None, |_| {}).unwrap();
    let again: Vec<u64> = metrics(&run).iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(again, vec![0, 1, 1]);
    assert!(!run.join("checkpoints/step-2").exists());
}

/// The committed training configs parse (keys are valid flags, values have the right types).
#[test]
fn committed_configs_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let p: PretrainConfig = mathforge_train::config::resolve(
        Some(&root.join("train-tiny-pretrain.toml")),
        serde_json::Value::Null,
    )
    .unwrap();
    assert_eq!(p.data.len(), 1);
    let s: SftConfig = mathforge_train::config::resolve(
        Some(&root.join("train-tiny-sft.toml")),
        serde_json::Value::Null,
    )
    .unwrap();
    assert!(s.common.steps > 0 && s.common.init.is_some());
    let g: GrpoConfig = mathforge_train::config::resolve(
        Some(&root.join("train-tiny-grpo.toml")),
        serde_json::Value::Null,
    )
    .unwrap();
    assert_eq!(g.beta, 0.04);
    // runs/tiny.sh's proof: at most 10 minutes of GRPO (issue 5).
    assert!(g.max_minutes > 0.0 && g.max_minutes <= 10.0);
    for f in ["train-tiny-grpo-checked.toml", "train-tiny-grpo-process.toml"] {
        let g: GrpoConfig =
            mathforge_train::config::resolve(Some(&root.join(f)), serde_json::Value::Null).unwrap();
        assert!(g.max_minutes > 0.0 && g.max_minutes <= 10.0, "{f}");
        // Both train on the generator with the eval prompt's instruction line.
        assert!(g.train_data.starts_with("arith:") && g.train_data.contains("instruct=true"), "{f}");
    }
    let model = mathforge_model::Config::from_file(root.join("train-tiny-model.json")).unwrap();
    // Issue 5: a 1-10M parameter model.
    assert!(
        (1_000_000..10_000_000).contains(&model.num_parameters()),
        "{}",
        model.num_parameters()
    );
}

/// Issue 5 regression: a resumed GRPO run used its resumed weights as the reference (KL 0 right
/// after the restart). The reference must be the initial policy (or, with `ref-reset-every`, the
/// policy of the iteration's first step), so 2 + 2 steps log the same KL and end on the same
/// weights as 4 straight steps, with and without a reset inside the resumed stretch.
#[test]
fn grpo_resume_keeps_the_reference() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    let base = |out: &str, steps: u64, save_every: u64, reset: u64| GrpoConfig {
        common: CommonConfig {
            lr: 3e-3,
            save_every,
            schedule: mathforge_train::schedule::ScheduleKind::Constant,
            ..common(&d.join(out), &tok, &cfg, steps)
        },
        train_data: "arith:split=train,steps=1,n=20".into(),
        eval_data: None,
        group_size: 2,
        questions_per_step: 2,
        max_completion_len: 6,
        beta: 0.5,
        ref_reset_every: reset,
        ..Default::default()
    };
    let kl = |run: &Path| -> Vec<f64> {
        metrics(run).iter().filter_map(|r| r["kl"].as_f64()).collect()
    };
    let weights = |run: &Path, step: u64| {
        std::fs::read(run.join(format!("checkpoints/step-{step}/model.safetensors"))).unwrap()
    };
    // (reset period, steps of the first invocation, total): no reset; a reset at step 2 with
    // the run resumed at step 3, so the reference comes from `reference/step-2`.
    for (reset, first, total) in [(0, 2, 4), (2, 3, 5)] {
        let straight = mathforge_train::grpo::run(&base("s", total, 100, reset), None, |_| {})
            .unwrap();
        let resumed_dir = format!("r{reset}");
        mathforge_train::grpo::run(&base(&resumed_dir, first, 100, reset), None, |_| {}).unwrap();
        let resumed =
            mathforge_train::grpo::run(&base(&resumed_dir, total, 100, reset), None, |_| {})
                .unwrap();
        let (a, b) = (kl(&straight), kl(&resumed));
        assert_eq!(a.len(), total as usize);
        assert!(a[first as usize] > 0.0, "the policy moved away from the reference: {a:?}");
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-9 + 1e-6 * x.abs(), "kl {a:?} vs {b:?}");
        }
        assert!(weights(&straight, total) == weights(&resumed, total), "reset {reset}");
        if reset > 0 {
            assert!(resumed.join("reference/step-2/model.safetensors").exists());
        }
        std::fs::remove_dir_all(&straight).unwrap();
    }
}

/// `train pretrain` on a Parquet source (issue 5: "packed token streams from JSONL/Parquet
/// corpora"): the text column (`text-column`) is streamed a row group at a time; a run on the
/// Parquet file gives bit for bit the weights of the same run on the same documents as JSONL,
/// and an interrupted Parquet run resumes mid-file (past whole row groups) to the same weights.
#[test]
fn pretrain_reads_parquet_and_resumes_inside_it() {
    use std::sync::Arc;
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    // 60 documents and a null in row 7, in row groups of 16 rows.
    let mut docs: Vec<Option<String>> = arith_docs(60).into_iter().map(Some).collect();
    docs.insert(6, None);
    let col = arrow_array::StringArray::from(docs.clone());
    let batch = arrow_array::RecordBatch::try_from_iter([(
        "content",
        Arc::new(col) as arrow_array::ArrayRef,
    )])
    .unwrap();
    let props =
        parquet::file::properties::WriterProperties::builder().set_max_row_group_size(16).build();
    let pq = d.join("math.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&pq).unwrap(), batch.schema(), Some(props))
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    // The same rows as JSONL lines (the null one too, so lines and rows line up).
    let jsonl: String = docs
        .iter()
        .map(|t| format!("{}\n", serde_json::json!({ "content": t })))
        .collect();
    std::fs::write(d.join("same.jsonl"), jsonl).unwrap();
    let run = |out: &str, file: &str, steps: u64| {
        let mut c = pretrain_cfg(d, out, &tok, &cfg, steps);
        c.data = vec![format!("math:1:{}", d.join(file).display())];
        c.text_field = "content".into();
        c.text_column = "content".into();
        c.common.batch_size = 8;
        c.common.micro_batch_size = 8;
        // The rate must not depend on `steps` (the resumed run is given more steps).
        c.common.schedule = mathforge_train::schedule::ScheduleKind::Constant;
        mathforge_train::pretrain::run(&c, None, |_| {}).unwrap()
    };
    let weights = |run: &Path| std::fs::read(run.join("checkpoints/step-6/model.safetensors")).unwrap();
    let from_pq = run("pq", "math.parquet", 6);
    let from_jsonl = run("js", "same.jsonl", 6);
    assert!(weights(&from_pq) == weights(&from_jsonl), "Parquet and JSONL runs differ");
    let m = metrics(&from_pq);
    assert!(m[5]["heldout_ppl_math"].as_f64().unwrap() > 1.0);
    // 6 steps x 8 sequences x 33 tokens read well past the first row group of the source.
    let meta = std::fs::read_to_string(from_pq.join("checkpoints/step-4/meta.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&meta).unwrap();
    let line = v["data"]["sources"][0]["line"].as_u64().unwrap();
    assert!(line > 16, "position past the first row group: {line}");
    assert_eq!(v["data"]["sources"][0]["skipped"]["null_content"], 1, "{meta}");
    run("pq2", "math.parquet", 4);
    let resumed = run("pq2", "math.parquet", 6);
    assert!(weights(&resumed) == weights(&from_pq), "resumed Parquet run differs");
    // A missing column is named with the file.
    let mut c = pretrain_cfg(d, "bad", &tok, &cfg, 1);
    c.data = vec![format!("math:1:{}", pq.display())];
    let err = mathforge_train::pretrain::run(&c, None, |_| {}).unwrap_err().to_string();
    assert!(err.contains("math.parquet") && err.contains("`text`"), "{err}");
}

/// Process supervision without a PRM (§4.1.3 with rule-based step rewards): on an arith problem,
/// the reference solution (every step right) gets a positive advantage on every token, a
/// completion whose second step is wrong gets negative advantages from that step on, and the
/// last-token advantages are the normalized last-step rewards. Then a run with `supervision =
/// process` and no reward model trains on an arith task, and refuses a task without step rewards.
#[test]
fn grpo_rule_based_process_supervision() {
    use mathforge_train::grpo::{line_ends, rule_process_supervision, RewardScaling, Rollout, Supervision};
    let (dir, tok_dir, cfg) = setup();
    let d = dir.path();
    let tok = mathforge_model::tokenizer::Tokenizer::from_dir(&tok_dir).unwrap();
    let task = mathforge_train::grpo::open_task("arith:split=train,steps=2,max_value=20,n=3").unwrap();
    let ex = &task.examples()[0];
    let sol = ex.solution.clone().unwrap();
    let mut lines: Vec<String> = sol.lines().map(String::from).collect();
    let (head, _) = lines[1].rsplit_once(">>").unwrap();
    lines[1] = format!("{head}>>99 things.");
    let wrong = lines.join("\n");
    let eos = tok.eos_ids()[0];
    let prompt = tok.encode(&mathforge_model::chat::prompt(&ex.question), true).unwrap();
    let roll = |text: &str| {
        let ids = [tok.encode(&format!(" {text}"), false).unwrap(), vec![eos]].concat();
        Rollout {
            example: 0,
            prompt_ids: prompt.clone(),
            text: tok.decode(&ids, true).unwrap(),
            completion_ids: ids,
            reward: task.reward(ex, text) as f64,
            truncated: false,
        }
    };
    let groups = vec![vec![roll(&sol), roll(&wrong)]];
    let n = sol.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(line_ends(&tok, &groups[0][0].completion_ids).unwrap().len(), n);
    let (adv, zero) = rule_process_supervision(task.as_ref(), &tok, &groups, RewardScaling::Group).unwrap();
    assert!(zero.is_empty());
    assert_eq!(adv[0][0].len(), groups[0][0].completion_ids.len());
    assert!(adv[0][0].iter().all(|a| *a > 0.0), "{:?}", adv[0][0]);
    // Step rewards 1,1,...,1 and 1,0,...,0: mean m and sample std s over all 2n steps.
    let all: Vec<f64> = (0..2 * n).map(|i| if i < n + 1 { 1.0 } else { 0.0 }).collect();
    let m = all.iter().sum::<f64>() / all.len() as f64;
    let s = (all.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (all.len() - 1) as f64).sqrt();
    let last = |i: usize| *adv[0][i].last().unwrap();
    let norm = |r: f64| (r - m) / (s + 1e-4);
    assert!((last(0) - norm(1.0)).abs() < 1e-3 && (last(1) - norm(0.0)).abs() < 1e-3, "{} {}", last(0), last(1));
    let ends1 = line_ends(&tok, &groups[0][1].completion_ids).unwrap();
    assert!(adv[0][1][ends1[0] + 1..].iter().all(|a| *a < 0.0), "{:?}", adv[0][1]);
    assert!(adv[0][1][0] > adv[0][1][ends1[0] + 1]);
    // Stopping after the first line (its count given as the answer) is scored like going on
    // wrongly: the steps it skipped count as 0s at its last token, so its first tokens do not get
    // a better advantage than the wrong derivation's (they did before: session 7's run T).
    let first = sol.lines().next().unwrap();
    let short = format!("{first}\n#### 3");
    let groups = vec![vec![roll(&sol), roll(&wrong), roll(&short)]];
    let (adv, _) = rule_process_supervision(task.as_ref(), &tok, &groups, RewardScaling::Group).unwrap();
    assert!((adv[0][2][0] - adv[0][1][0]).abs() < 1e-9, "short {} vs wrong {}", adv[0][2][0], adv[0][1][0]);

    let c = GrpoConfig {
        common: CommonConfig { lr: 1e-3, save_every: 1, ..common(&d.join("grpo-rule"), &tok_dir, &cfg, 1) },
        train_data: "arith:split=train,steps=1,n=20".into(),
        group_size: 2,
        questions_per_step: 2,
        max_completion_len: 8,
        supervision: Supervision::Process,
        ..Default::default()
    };
    let run = mathforge_train::grpo::run(&c, None, |_| {}).unwrap();
    assert!(run.join("checkpoints/step-1/meta.json").exists());
    std::fs::write(d.join("gsm.jsonl"), "{\"question\": \"1+1?\", \"answer\": \"1+1=2\\n#### 2\"}\n").unwrap();
    let c = GrpoConfig {
        common: common(&d.join("grpo-norule"), &tok_dir, &cfg, 1),
        train_data: d.join("gsm.jsonl").display().to_string(),
        ..c
    };
    let e = mathforge_train::grpo::run(&c, None, |_| {}).unwrap_err().to_string();
    assert!(e.contains("rule-based step rewards") && e.contains("reward-model"), "{e}");
}
