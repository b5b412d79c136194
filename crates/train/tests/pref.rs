//! End-to-end tests of the offline/preference trainers of the unified paradigm (DeepSeekMath
//! §5.2): RFT, Online RFT and DPO, on a tiny Llama (2 layers, width 32) with a BPE tokenizer
//! trained in the test. 40 SFT steps first teach the tiny model to answer the questions of a
//! small GSM8K-style file (reference `#### 2`) with `#### 2` or `#### 3`, so that its samples are
//! sometimes right and sometimes wrong: real verifier rewards, real pairs. Each run is a few steps (seconds in release mode).
use mathforge_train::dpo::DpoConfig;
use mathforge_train::rft::RftConfig;
use mathforge_train::sft::SftConfig;
use mathforge_train::trainer::CommonConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use util::metrics;

mod util;

const QUESTIONS: [&str; 6] = [
    "What is 1 plus 1?",
    "What is 0 plus 2?",
    "What is 2 plus 0?",
    "What is 3 minus 1?",
    "What is 4 minus 2?",
    "What is 1 times 2?",
];

/// The shared fixture: tokenizer, model config, the task file and an SFT checkpoint.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    tok: PathBuf,
    model_cfg: PathBuf,
    task: PathBuf,
    sft: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let mut texts: Vec<String> = QUESTIONS
            .iter()
            .map(|q| format!("User: {q}\n\nAssistant: #### 2 #### 3 #### 1"))
            .collect();
        texts.push("0 1 2 3 4 5 6 7 8 9 plus minus times What is".into());
        let (tok_dir, model_cfg) = util::tiny_model(&root, &texts, 128);
        // GSM8K format: the strict verifier reads the number after `####`.
        let mut rows = String::new();
        for q in QUESTIONS {
            rows.push_str(&serde_json::json!({"question": q, "answer": "#### 2"}).to_string());
            rows.push('\n');
        }
        let task = root.join("gsm8k.jsonl");
        std::fs::write(&task, &rows).unwrap();
        // The SFT data also answers every question with 3: the SFT model then says 2 or 3 about
        // half the time each, so its samples contain both right and wrong answers.
        for q in QUESTIONS {
            rows.push_str(&serde_json::json!({"question": q, "answer": "#### 3"}).to_string());
            rows.push('\n');
        }
        let sft_file = root.join("sft.jsonl");
        std::fs::write(&sft_file, rows).unwrap();
        let sft = SftConfig {
            common: CommonConfig {
                out: root.join("sft").display().to_string(),
                model_config: Some(model_cfg.display().to_string()),
                tokenizer: Some(tok_dir.display().to_string()),
                steps: 40,
                lr: 1e-2,
                schedule: mathforge_train::schedule::ScheduleKind::Constant,
                warmup_steps: 0,
                batch_size: 12,
                micro_batch_size: 12,
                save_every: 100,
                ..Default::default()
            },
            train_file: sft_file.display().to_string(),
            max_len: 64,
            ..Default::default()
        };
        let run = mathforge_train::sft::run(&sft, None, |_| {}).unwrap();
        let sft = run.join("checkpoints/step-40");
        Fixture { _dir: dir, root, tok: tok_dir, model_cfg, task, sft }
    })
}

fn common(out: &str, init: &Path, steps: u64) -> CommonConfig {
    CommonConfig {
        out: fixture().root.join(out).display().to_string(),
        init: Some(init.display().to_string()),
        steps,
        lr: 3e-3,
        warmup_steps: 0,
        batch_size: 4,
        micro_batch_size: 2,
        save_every: 2,
        keep_checkpoints: 0,
        // Constant: a 2-step run and a 4-step run have the same rates at steps 1-2.
        schedule: mathforge_train::schedule::ScheduleKind::Constant,
        ..Default::default()
    }
}

fn steps(m: &[Value]) -> Vec<u64> {
    m.iter().map(|r| r["step"].as_u64().unwrap()).collect()
}

fn task() -> String {
    fixture().task.display().to_string()
}

fn dpo_cfg(out: &str, steps: u64) -> DpoConfig {
    let f = fixture();
    DpoConfig {
        common: common(out, &f.sft, steps),
        train_data: task(),
        eval_data: Some(task()),
        eval_questions: 6,
        samples_per_question: 8,
        pairs_per_question: 2,
        beta: 0.5,
        temperature: 1.5,
        max_completion_len: 8,
        ..Default::default()
    }
}

/// DPO from a pairs file: the first step's loss is ln 2 (policy = reference), training lowers
/// it, the metrics of the issue are logged, and 2 + 2 resumed steps equal 4 straight steps.
#[test]
fn dpo_from_pairs_file_learns_and_resumes_exactly() {
    let f = fixture();
    let pairs = f.root.join("pairs.jsonl");
    let mut rows = String::new();
    for q in QUESTIONS {
        rows.push_str(
            &serde_json::json!({"prompt": q, "chosen": "#### 2", "rejected": "#### 3"}).to_string(),
        );
        rows.push('\n');
    }
    rows.push_str(
        "{\"prompt\": \"x\"}\n{\"prompt\": \"y\", \"chosen\": \"a\", \"rejected\": \"a\"}\n",
    );
    std::fs::write(&pairs, rows).unwrap();
    let mk = |out: &str, steps: u64| DpoConfig {
        pairs_file: Some(pairs.display().to_string()),
        ..dpo_cfg(out, steps)
    };
    let run = mathforge_train::dpo::run(&mk("dpo-a", 4), None, |_| {}).unwrap();
    let m = metrics(&run);
    assert_eq!(steps(&m), vec![0, 1, 2, 3, 4]);
    assert_eq!(m[0]["pairs"].as_u64(), Some(6));
    assert_eq!(m[0]["skipped_missing_prompt_chosen_or_rejected"].as_u64(), Some(1));
    assert_eq!(m[0]["skipped_chosen_equals_rejected"].as_u64(), Some(1));
    let ln2 = std::f64::consts::LN_2;
    assert!((m[1]["loss"].as_f64().unwrap() - ln2).abs() < 1e-5, "{}", m[1]);
    assert!(m[1]["reward_margin"].as_f64().unwrap().abs() < 1e-5);
    for k in [
        "reward_accuracy",
        "chosen_reward",
        "rejected_reward",
        "logp_chosen",
        "logp_rejected",
        "grad_norm",
        "eval_greedy_acc",
    ] {
        assert!(m[4].get(k).is_some(), "metric {k} missing: {}", m[4]);
    }
    assert!(m[4]["loss"].as_f64().unwrap() < ln2, "DPO lowers its loss: {}", m[4]);
    assert!(m[4]["reward_margin"].as_f64().unwrap() > 0.0);
    assert!(run.join("dpo-pairs.jsonl").exists() && run.join("plots/loss.png").exists());

    mathforge_train::dpo::run(&mk("dpo-b", 2), None, |_| {}).unwrap();
    let resumed = mathforge_train::dpo::run(&mk("dpo-b", 4), None, |_| {}).unwrap();
    assert!(
        std::fs::read(run.join("checkpoints/step-4/model.safetensors")).unwrap()
            == std::fs::read(resumed.join("checkpoints/step-4/model.safetensors")).unwrap(),
        "2 + 2 resumed steps equal 4 straight steps bit for bit"
    );
    assert_eq!(steps(&metrics(&resumed)), vec![0, 1, 2, 3, 4]);
}

/// DPO on pairs sampled from the SFT model: every pair is (verifier-correct, verifier-wrong).
#[test]
fn dpo_samples_correct_incorrect_pairs() {
    let run = mathforge_train::dpo::run(&dpo_cfg("dpo-sampled", 2), None, |_| {}).unwrap();
    let m = metrics(&run);
    assert_eq!(steps(&m), vec![0, 1, 2]);
    let n = m[0]["pairs"].as_u64().unwrap();
    assert!(n >= 1, "{}", m[0]);
    let acc = m[0]["sample_accuracy"].as_f64().unwrap();
    assert!(acc > 0.0 && acc < 1.0, "{}", m[0]);
    let text = std::fs::read_to_string(run.join("dpo-pairs.jsonl")).unwrap();
    assert_eq!(text.lines().count() as u64, n);
    use mathforge_tasks::Task;
    let bench = mathforge_tasks::BenchTask::open(&fixture().task, None, false).unwrap();
    for line in text.lines() {
        let p: Value = serde_json::from_str(line).unwrap();
        let (c, r) = (p["chosen"].as_str().unwrap(), p["rejected"].as_str().unwrap());
        let ex = &bench.examples()[p["example"].as_u64().unwrap() as usize];
        assert_eq!(ex.question, p["prompt"].as_str().unwrap());
        assert_eq!(bench.reward(ex, c), 1.0, "chosen is correct: {c:?}");
        assert_eq!(bench.reward(ex, r), 0.0, "rejected is not: {r:?}");
        assert!(!p["chosen_ids"].as_array().unwrap().is_empty());
    }
}

/// Offline RFT: the data file holds only correct, distinct samples; SFT on them runs and logs.
#[test]
fn rft_offline_keeps_correct_samples_and_trains() {
    let f = fixture();
    let cfg = RftConfig {
        common: common("rft", &f.sft, 3),
        train_data: task(),
        eval_data: Some(task()),
        eval_questions: 6,
        samples_per_question: 8,
        temperature: 1.5,
        max_completion_len: 8,
        ..Default::default()
    };
    let run = mathforge_train::rft::run(&cfg, None, |_| {}).unwrap();
    let m = metrics(&run);
    assert_eq!(steps(&m), vec![0, 1, 2, 3]);
    let kept = m[0]["kept_samples"].as_u64().unwrap();
    let data = mathforge_train::rft::read_data(&run.join("rft-data.jsonl")).unwrap();
    assert_eq!(data.len() as u64, kept);
    assert!(kept >= 1);
    use mathforge_tasks::Task;
    let bench = mathforge_tasks::BenchTask::open(&f.task, None, false).unwrap();
    let mut seen = std::collections::HashSet::new();
    for (q, a) in &data {
        let ex = bench.examples().iter().find(|e| &e.question == q).unwrap();
        assert_eq!(bench.reward(ex, a), 1.0, "kept answer is correct: {a:?}");
        assert!(seen.insert((q.clone(), a.clone())), "deduplicated: {q} {a}");
    }
    assert!(m[3]["loss"].as_f64().unwrap().is_finite() && m[3].get("eval_greedy_acc").is_some());
    // The run folder is an `rft` run: reusing it for Online RFT is refused by name.
    let online = RftConfig { online: true, ..cfg };
    let err = mathforge_train::rft::run(&online, None, |_| {}).unwrap_err().to_string();
    assert!(err.contains("`rft` checkpoint") && err.contains("online-rft"), "{err}");
}

/// Online RFT: samples from the current policy each step, trains on the correct ones.
#[test]
fn online_rft_samples_each_step() {
    let f = fixture();
    let cfg = RftConfig {
        common: common("online-rft", &f.sft, 2),
        train_data: task(),
        eval_data: None,
        online: true,
        samples_per_question: 4,
        questions_per_step: 3,
        temperature: 1.5,
        max_completion_len: 8,
        ..Default::default()
    };
    let run = mathforge_train::rft::run(&cfg, None, |_| {}).unwrap();
    let m = metrics(&run);
    assert_eq!(steps(&m), vec![1, 2]);
    for r in &m {
        let acc = r["accuracy"].as_f64().unwrap();
        let trained = r["trained_samples"].as_u64().unwrap();
        assert_eq!(trained as f64, (acc * 12.0).round(), "trains on exactly the correct samples");
        assert!(r.get("generation_seconds").is_some() && r.get("tokens_per_second").is_some());
    }
    let samples = std::fs::read_to_string(run.join("samples-0.jsonl")).unwrap();
    assert_eq!(samples.lines().count(), 24);
}

/// Bad input: a missing pairs file, and a model whose samples are never correct, give errors
/// that say what is wrong.
#[test]
fn bad_inputs_are_named() {
    let f = fixture();
    let mut c = dpo_cfg("dpo-missing", 1);
    c.pairs_file = Some(f.root.join("nope.jsonl").display().to_string());
    let err = mathforge_train::dpo::run(&c, None, |_| {}).unwrap_err().to_string();
    assert!(err.contains("nope.jsonl") && err.contains("does not exist"), "{err}");

    // A random (untrained) model never writes `#### 2` in 4 tokens.
    let random = |out: &str| CommonConfig {
        init: None,
        model_config: Some(f.model_cfg.display().to_string()),
        tokenizer: Some(f.tok.display().to_string()),
        ..common(out, &f.sft, 1)
    };
    let c = DpoConfig {
        common: random("dpo-random"),
        max_completion_len: 4,
        samples_per_question: 2,
        ..dpo_cfg("x", 1)
    };
    let err = mathforge_train::dpo::run(&c, None, |_| {}).unwrap_err().to_string();
    assert!(err.contains("no (correct, incorrect) pair") && err.contains("all wrong"), "{err}");
    let c = RftConfig {
        common: random("rft-random"),
        train_data: task(),
        eval_data: None,
        samples_per_question: 2,
        max_completion_len: 4,
        ..Default::default()
    };
    let err = mathforge_train::rft::run(&c, None, |_| {}).unwrap_err().to_string();
    assert!(err.contains("none of the 12 samples"), "{err}");
}

/// The committed configs parse (keys are valid flags, values have the right types) and start
/// from the tiny SFT checkpoint like train-tiny-grpo.toml.
#[test]
fn committed_configs_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let rft: RftConfig =
        mathforge_train::config::resolve(Some(&root.join("train-tiny-rft.toml")), Value::Null)
            .unwrap();
    assert!(!rft.online);
    let online: RftConfig = mathforge_train::config::resolve(
        Some(&root.join("train-tiny-online-rft.toml")),
        Value::Null,
    )
    .unwrap();
    assert!(online.online);
    let dpo: DpoConfig =
        mathforge_train::config::resolve(Some(&root.join("train-tiny-dpo.toml")), Value::Null)
            .unwrap();
    for (init, minutes) in [
        (&rft.common.init, rft.max_minutes),
        (&online.common.init, online.max_minutes),
        (&dpo.common.init, dpo.max_minutes),
    ] {
        assert!(init.as_deref().unwrap().starts_with("runs/tiny/sft/checkpoints/"));
        assert_eq!(minutes, 10.0, "same budget as GRPO");
    }
}

/// docs/train.md shows Table 10 exactly as `paradigm::table_markdown` renders it from the code.
#[test]
fn docs_table_matches_code() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/train.md");
    let text = std::fs::read_to_string(docs).unwrap();
    assert!(text.contains(&mathforge_train::paradigm::table_markdown()), "update docs/train.md");
}

/// `max-minutes` (as GRPO's): the run stops when the budget is spent, saves its state, and a
/// rerun of the same command continues the same (spent) budget instead of starting a new one.
#[test]
fn time_budget_stops_and_is_kept_across_resume() {
    let f = fixture();
    let cfg = RftConfig {
        common: common("online-budget", &f.sft, 50),
        train_data: task(),
        eval_data: Some(task()),
        eval_questions: 2,
        online: true,
        samples_per_question: 2,
        questions_per_step: 2,
        max_completion_len: 6,
        max_minutes: 1e-9,
        ..Default::default()
    };
    let run = mathforge_train::rft::run(&cfg, None, |_| {}).unwrap();
    let m = metrics(&run);
    // Step 0: evaluation of the SFT model; step 1 spends the budget; then the final evaluation.
    assert_eq!(steps(&m), vec![0, 1, 1], "one step spends the budget");
    assert!(m[1]["train_wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(m[1].get("eval_greedy_acc").is_none() && m[2].get("eval_greedy_acc").is_some());
    assert!(run.join("checkpoints/step-1/meta.json").exists(), "saved at the stop");
    mathforge_train::rft::run(&cfg, None, |_| {}).unwrap();
    assert_eq!(metrics(&run).len(), 3, "the resumed run has no budget left and logs nothing");
}
