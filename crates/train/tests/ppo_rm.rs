//! End-to-end tests of the reward-model trainer (ORM, PRM, data from samples files) and PPO with a
//! critic, on a tiny random Llama (2 layers, width 32) with a BPE tokenizer trained in the test.
//! Each run is a few steps so the file stays within seconds in release mode.
use mathforge_train::ppo::PpoConfig;
use mathforge_train::rm::{RewardScorer, RmConfig, RmKind};
use mathforge_train::trainer::CommonConfig;
use std::path::{Path, PathBuf};
use util::{metrics, orm_rows, train_orm, write_jsonl};

mod util;

/// tokenizer folder + tiny model config.json.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "What is {} + {}? {} + {} = {}\n#### {}",
                i % 9,
                i % 7,
                i % 9,
                i % 7,
                i % 9 + i % 7,
                i % 9 + i % 7
            )
        })
        .collect();
    let (tok_dir, cfg_path) = util::tiny_model(dir.path(), &docs, 256);
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
        batch_size: 8,
        micro_batch_size: 4,
        save_every: 2,
        keep_checkpoints: 0,
        eval_every: 2,
        ..Default::default()
    }
}

#[test]
fn orm_trains_evaluates_resumes_and_scores() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    let mut rows = orm_rows(40);
    rows.push(serde_json::json!({"prompt": "x", "completion": "y"})); // no label: skipped
    write_jsonl(&d.join("orm.jsonl"), &rows);
    let run_dir = d.join("orm");
    let mut c = RmConfig {
        common: common(&run_dir, &tok, &cfg, 4),
        train_file: Some(d.join("orm.jsonl").display().to_string()),
        heldout_frac: 0.25,
        ..Default::default()
    };
    let run = mathforge_train::rm::run(&c, None, |_| {}).unwrap();
    let m = metrics(&run);
    assert_eq!(
        m.iter().map(|r| r["step"].as_u64().unwrap()).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(m[0]["heldout_examples"].as_u64(), Some(10));
    for k in ["loss", "accuracy", "eval_loss", "eval_accuracy", "eval_auc", "grad_norm"] {
        assert!(m[4].get(k).is_some(), "metric {k} missing: {}", m[4]);
    }
    let auc = m[4]["eval_auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc));
    let ck = run.join("checkpoints/step-4");
    let conf = std::fs::read_to_string(ck.join("config.json")).unwrap();
    assert!(conf.contains("LlamaForSequenceClassification") && conf.contains("\"orm\""), "{conf}");
    // Resume: the same command with more steps continues from step 4.
    c.common.steps = 6;
    let run = mathforge_train::rm::run(&c, None, |_| {}).unwrap();
    let steps: Vec<u64> = metrics(&run).iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![0, 1, 2, 3, 4, 5, 6]);
    // The checkpoint scores rollouts as probabilities.
    let scorer =
        RewardScorer::load(run.join("checkpoints/step-6"), 2, &candle_core::Device::Cpu).unwrap();
    let s = scorer
        .score(&[(&[0u32, 5, 6][..], &[7u32, 1][..]), (&[0u32, 5][..], &[9u32][..])])
        .unwrap();
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|x| (0.0..=1.0).contains(x)), "{s:?}");
    // GRPO's hook: rollouts rewarded 0/1 by the verifier get the model's probabilities.
    let ro = |c: Vec<u32>| mathforge_train::grpo::Rollout {
        example: 0,
        prompt_ids: vec![0, 5, 6],
        completion_ids: c,
        text: String::new(),
        reward: 1.0,
        truncated: false,
    };
    let mut groups = vec![vec![ro(vec![7, 1]), ro(vec![9])]];
    mathforge_train::rm::rescore_rollouts(&scorer, &mut groups).unwrap();
    assert!((groups[0][0].reward - s[0]).abs() < 1e-9, "{} vs {}", groups[0][0].reward, s[0]);
    assert!(groups[0][1].reward > 0.0 && groups[0][1].reward < 1.0);
    // A causal LM folder is not a reward model.
    let err = RewardScorer::load(d, 2, &candle_core::Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("not a reward model"), "{err}");
}

#[test]
fn prm_reads_step_lists_and_newline_steps() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    let rows = vec![
        serde_json::json!({"prompt": "What is 2 + 3?", "steps": ["2 + 3 = 5", "#### 5"], "labels": [1, 1]}),
        serde_json::json!({"prompt": "What is 2 + 4?", "completion": "2 + 4 = 7\n\n#### 7", "labels": [0, 0]}),
        serde_json::json!({"prompt": "What is 1 + 4?", "steps": ["1 + 4 = 5", "#### 6"], "labels": [true, false]}),
        serde_json::json!({"prompt": "What is 1 + 1?", "steps": ["1 + 1 = 2"], "labels": [1, 0]}), // mismatch
    ];
    write_jsonl(&d.join("prm.jsonl"), &rows);
    let t = mathforge_model::tokenizer::Tokenizer::from_dir(&tok).unwrap();
    let (exs, skipped) =
        mathforge_train::rm::load_examples(&d.join("prm.jsonl"), &t, RmKind::Prm, 512).unwrap();
    assert_eq!(exs.len(), 3);
    assert_eq!(skipped.get("steps_labels_length_mismatch"), Some(&1));
    // Two steps each; the second step's last token is the sequence's last token.
    for e in &exs {
        assert_eq!(e.positions.len(), 2);
        assert_eq!(*e.positions.last().unwrap(), e.ids.len() - 1);
        assert!(e.positions[0] < e.positions[1]);
    }
    assert_eq!(exs[2].labels, vec![1.0, 0.0]);
    let c = RmConfig {
        common: common(&d.join("prm"), &tok, &cfg, 2),
        kind: RmKind::Prm,
        train_file: Some(d.join("prm.jsonl").display().to_string()),
        eval_file: Some(d.join("prm.jsonl").display().to_string()),
        ..Default::default()
    };
    let run = mathforge_train::rm::run(&c, None, |_| {}).unwrap();
    let m = metrics(&run);
    assert!(m[2]["eval_auc"].as_f64().is_some(), "{}", m[2]);
    let conf = std::fs::read_to_string(run.join("checkpoints/step-2/config.json")).unwrap();
    assert!(conf.contains("\"prm\""));
}

#[test]
fn orm_data_from_grpo_and_eval_samples_is_graded_by_the_verifier() {
    let (dir, tok, _) = setup();
    let d = dir.path();
    let spec = "arith:split=train,steps=1,n=6";
    let task = mathforge_train::grpo::open_task(spec).unwrap();
    let exs = task.examples();
    let mut rows = vec![];
    for (i, e) in exs.iter().enumerate() {
        // GRPO rollouts: by index; right answers with the strict marker, wrong ones off by one.
        rows.push(serde_json::json!({"step": 0, "example": i, "text": format!(" so #### {}", e.reference), "reward": 1.0}));
        rows.push(serde_json::json!({"step": 0, "example": i, "text": format!(" so #### {}9", e.reference), "reward": 0.0}));
    }
    // Eval samples: by id.
    rows.push(serde_json::json!({"id": exs[0].id, "sample": 0, "reference": exs[0].reference, "response": format!("#### {}", exs[0].reference), "correct": true}));
    rows.push(serde_json::json!({"example": 999, "text": "#### 1"}));
    write_jsonl(&d.join("samples-0.jsonl"), &rows);
    let t = mathforge_model::tokenizer::Tokenizer::from_dir(&tok).unwrap();
    let (out, skipped) = mathforge_train::rm::examples_from_samples(
        &d.join("samples-0.jsonl"),
        task.as_ref(),
        &t,
        512,
    )
    .unwrap();
    assert_eq!(out.len(), 2 * exs.len() + 1);
    assert_eq!(skipped.get("unknown_example"), Some(&1));
    let labels: Vec<f32> = out.iter().map(|e| e.labels[0]).collect();
    assert_eq!(&labels[..4], &[1.0, 0.0, 1.0, 0.0]);
    assert_eq!(*labels.last().unwrap(), 1.0);
}

#[test]
fn ppo_trains_policy_and_critic_with_a_reward_model_and_resumes() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    // A reward model to score with (2 quick steps).
    let rm_run = train_orm(d, common(&d.join("rm"), &tok, &cfg, 2));
    let mut c = PpoConfig {
        common: CommonConfig { lr: 1e-3, ..common(&d.join("ppo"), &tok, &cfg, 2) },
        train_data: "arith:split=train,steps=1,n=20".into(),
        eval_data: Some("arith:split=heldout,steps=1,n=4".into()),
        eval_questions: 4,
        questions_per_step: 3,
        samples_per_question: 2,
        mu: 2,
        max_completion_len: 8,
        reward_model: Some(rm_run.join("checkpoints/step-2").display().to_string()),
        // The critic starts from the reward model (backbone and score head).
        critic_init: Some(rm_run.join("checkpoints/step-2").display().to_string()),
        ..Default::default()
    };
    let run = mathforge_train::ppo::run(&c, None, |_| {}).unwrap();
    let m = metrics(&run);
    // mu = 2 epochs per stage: each epoch is an optimizer step.
    assert_eq!(m.iter().map(|r| r["step"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2]);
    for k in [
        "loss",
        "reward_mean",
        "accuracy",
        "kl",
        "clip_frac",
        "entropy",
        "value_loss",
        "explained_variance",
        "value_clip_frac",
        "critic_grad_norm",
        "completion_len_mean",
        "truncated_frac",
        "generation_seconds",
        "train_seconds",
        "tokens_per_second",
        "eval_greedy_acc",
    ] {
        assert!(m[2].get(k).is_some(), "metric {k} missing: {}", m[2]);
    }
    // RM rewards are probabilities, not the verifier's 0/1.
    let r = m[1]["reward_mean"].as_f64().unwrap();
    assert!(r > 0.0 && r < 1.0, "reward_mean {r}");
    // First epoch: ratio exactly 1 (old log-probs from the same forward), so nothing is clipped.
    assert_eq!(m[1]["clip_frac"].as_f64(), Some(0.0));
    assert!(m[2]["value_loss"].as_f64().unwrap().is_finite());
    let critic = run.join("critic/checkpoints/step-2");
    let conf = std::fs::read_to_string(critic.join("config.json")).unwrap();
    assert!(conf.contains("\"value\""), "{conf}");
    assert!(run.join("checkpoints/step-2/model.safetensors").exists());
    // Resume: two more steps continue from the policy's and the critic's step-2 checkpoints.
    c.common.steps = 4;
    let run = mathforge_train::ppo::run(&c, None, |_| {}).unwrap();
    let steps: Vec<u64> = metrics(&run).iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![0, 1, 2, 3, 4]);
    assert!(run.join("critic/checkpoints/step-4/meta.json").exists());
}

#[test]
fn ppo_time_budget_stops_saves_and_evaluates() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    let c = PpoConfig {
        common: CommonConfig { save_every: 100, ..common(&d.join("ppo"), &tok, &cfg, 50) },
        train_data: "arith:split=train,steps=1,n=20".into(),
        eval_data: Some("arith:split=heldout,steps=1,n=4".into()),
        eval_questions: 4,
        questions_per_step: 2,
        max_completion_len: 4,
        max_minutes: 1e-6,
        ..Default::default()
    };
    let run = mathforge_train::ppo::run(&c, None, |_| {}).unwrap();
    let m = metrics(&run);
    // One stage runs (the budget is checked before each), then the run evaluates and saves.
    assert_eq!(m.last().unwrap()["step"].as_u64(), Some(1), "{m:?}");
    assert!(m.last().unwrap().get("eval_greedy_acc").is_some());
    assert!(m[1]["train_wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(run.join("checkpoints/step-1/meta.json").exists());
    assert!(run.join("critic/checkpoints/step-1/meta.json").exists());
}

#[test]
fn grpo_rewards_from_a_reward_model() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    let rm_run = train_orm(d, common(&d.join("rm"), &tok, &cfg, 1));
    let c = mathforge_train::grpo::GrpoConfig {
        common: common(&d.join("grpo"), &tok, &cfg, 1),
        train_data: "arith:split=train,steps=1,n=20".into(),
        eval_questions: 2,
        group_size: 2,
        questions_per_step: 2,
        max_completion_len: 4,
        reward_model: Some(rm_run.join("checkpoints/step-1").display().to_string()),
        ..Default::default()
    };
    let run = mathforge_train::grpo::run(&c, None, |_| {}).unwrap();
    let m = metrics(&run);
    let r = m[1]["reward_mean"].as_f64().unwrap();
    assert!(r > 0.0 && r < 1.0, "reward_mean {r}: not RM probabilities");
    assert_eq!(m[1]["accuracy"].as_f64(), Some(0.0), "verifier accuracy of a random model");
}

/// PRM rows: steps `a + b = s` and `#### s`, each labelled by whether it is right.
fn prm_rows(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let (a, b) = (i % 9, (i / 9) % 7);
            let s = if i % 2 == 0 { a + b } else { a + b + 1 };
            serde_json::json!({"prompt": format!("What is {a} + {b}?"), "steps": [format!("{a} + {b} = {s}"), format!("#### {s}")], "labels": [i % 2 == 0, i % 2 == 0]})
        })
        .collect()
}

/// Process supervision (§4.1.3): step ends found in the sampled tokens, each step scored by the
/// PRM at its last token, normalised over all steps of the group, and a token's advantage the
/// sum of the normalised rewards of the steps ending at or after it: checked against a hand
/// computation from PRM scores of prefixes (the PRM is causal, so the score at a step's last
/// token is the score of the prefix ending there). Then 2 GRPO steps run with it.
#[test]
fn grpo_process_supervision_per_token_advantages() {
    use mathforge_train::grpo::{process_supervision, step_ends, RewardScaling, Rollout};
    let (dir, tok_dir, cfg) = setup();
    let d = dir.path();
    write_jsonl(&d.join("prm.jsonl"), &prm_rows(16));
    let rm = RmConfig {
        common: common(&d.join("prm"), &tok_dir, &cfg, 2),
        kind: RmKind::Prm,
        train_file: Some(d.join("prm.jsonl").display().to_string()),
        ..Default::default()
    };
    let prm = mathforge_train::rm::run(&rm, None, |_| {}).unwrap().join("checkpoints/step-2");
    let tok = mathforge_model::tokenizer::Tokenizer::from_dir(&tok_dir).unwrap();
    let scorer = RewardScorer::load(&prm, tok.pad_id(), &candle_core::Device::Cpu).unwrap();
    assert_eq!(scorer.kind, RmKind::Prm);
    let enc = |s: &str| tok.encode(s, false).unwrap();
    let eos = tok.eos_ids()[0];
    // Sample 0: two steps ("2 + 3 = 5", "#### 5") then EOS; sample 1: one step then EOS.
    let (p0, nl, p1) = (enc(" 2 + 3 = 5"), enc("\n"), enc("#### 5"));
    let ids0: Vec<u32> = [p0.clone(), nl.clone(), p1, vec![eos]].concat();
    let ids1: Vec<u32> = [enc(" 2 + 3 = 6"), vec![eos]].concat();
    let end0 = p0.len() - 1;
    assert_eq!(step_ends(&tok, &ids0).unwrap(), vec![end0, ids0.len() - 1]);
    assert_eq!(step_ends(&tok, &ids1).unwrap(), vec![ids1.len() - 1]);
    assert_eq!(step_ends(&tok, &[]).unwrap(), Vec::<usize>::new());
    let prompt = tok.encode(&mathforge_model::chat::prompt("What is 2 + 3?"), true).unwrap();
    let roll = |ids: &Vec<u32>| Rollout {
        example: 0,
        prompt_ids: prompt.clone(),
        completion_ids: ids.clone(),
        text: tok.decode(ids, true).unwrap(),
        reward: 1.0,
        truncated: false,
    };
    let mut groups = vec![vec![roll(&ids0), roll(&ids1)]];
    let (adv, zero) =
        process_supervision(&scorer, &tok, &mut groups, RewardScaling::Group).unwrap();
    assert!(zero.is_empty());
    // Hand computation.
    let s = |ids: &[u32]| scorer.score(&[(prompt.as_slice(), ids)]).unwrap()[0];
    let (r00, r01, r10) = (s(&ids0[..=end0]), s(&ids0), s(&ids1));
    let mean = (r00 + r01 + r10) / 3.0;
    let std = (((r00 - mean).powi(2) + (r01 - mean).powi(2) + (r10 - mean).powi(2)) / 2.0).sqrt();
    let n = |r: f64| (r - mean) / (std + mathforge_train::grpo::STD_EPS);
    let want0: Vec<f64> =
        (0..ids0.len()).map(|t| if t <= end0 { n(r00) + n(r01) } else { n(r01) }).collect();
    let want1 = vec![n(r10); ids1.len()];
    for (got, want) in [(&adv[0][0], &want0), (&adv[0][1], &want1)] {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-3 * w.abs().max(1.0), "{got:?} vs {want:?}");
        }
    }
    assert!((adv[0][0][0] - adv[0][0][end0 + 1]).abs() > 1e-6, "the first step's reward counts");
    assert!((groups[0][0].reward - r01).abs() < 1e-5, "reward = the last step's score");

    // Two GRPO steps with it; an outcome RM is refused for process supervision.
    let c = mathforge_train::grpo::GrpoConfig {
        common: common(&d.join("grpo"), &tok_dir, &cfg, 2),
        train_data: "arith:split=train,steps=1,n=20".into(),
        eval_questions: 2,
        group_size: 2,
        questions_per_step: 2,
        max_completion_len: 6,
        reward_model: Some(prm.display().to_string()),
        supervision: mathforge_train::grpo::Supervision::Process,
        ..Default::default()
    };
    let run = mathforge_train::grpo::run(&c, None, |_| {}).unwrap();
    let m = metrics(&run);
    assert_eq!(m.last().unwrap()["step"].as_u64(), Some(2));
    let r = m[1]["reward_mean"].as_f64().unwrap();
    assert!(r > 0.0 && r < 1.0, "reward_mean {r}: PRM probabilities");
    let orm = train_orm(d, common(&d.join("orm"), &tok_dir, &cfg, 1)).join("checkpoints/step-1");
    let bad = mathforge_train::grpo::GrpoConfig {
        common: common(&d.join("grpo-orm"), &tok_dir, &cfg, 2),
        reward_model: Some(orm.display().to_string()),
        ..c
    };
    let err = mathforge_train::grpo::run(&bad, None, |_| {}).unwrap_err().to_string();
    assert!(err.contains("process reward model"), "{err}");
}

/// Iterative GRPO (§4.1.4) with an outcome RM: 3 iterations of 1 step. Before iterations 2 and 3
/// the RM is retrained from the previous RM on the last iteration's samples (verifier labels)
/// plus a replay, and the reference is reset and saved. A run that dies inside iteration 3
/// (its last checkpoint and RM deleted) resumes to the same weights as the uninterrupted run.
#[test]
fn iterative_grpo_retrains_the_reward_model_and_resumes() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    let rm_run = train_orm(d, common(&d.join("rm"), &tok, &cfg, 1));
    let c = mathforge_train::grpo::GrpoConfig {
        common: CommonConfig { save_every: 1, ..common(&d.join("grpo"), &tok, &cfg, 3) },
        train_data: "arith:split=train,steps=1,n=20".into(),
        eval_data: None,
        group_size: 2,
        questions_per_step: 2,
        max_completion_len: 4,
        reward_model: Some(rm_run.join("checkpoints/step-1").display().to_string()),
        iterations: 3,
        rm_steps: 2,
        ..Default::default()
    };
    let run = mathforge_train::grpo::run(&c, None, |_| {}).unwrap();
    let m = metrics(&run);
    let its: Vec<u64> = m.iter().filter_map(|r| r["iteration"].as_u64()).collect();
    assert_eq!(its, vec![0, 1, 2]);
    assert!(m[1]["rm_train_seconds"].as_f64().is_some(), "{}", m[1]);
    let lines = |p: PathBuf| std::fs::read_to_string(p).unwrap().lines().count();
    assert_eq!(lines(run.join("rm/iter-1/train.jsonl")), 4, "1 step x 2 questions x 2 samples");
    assert_eq!(lines(run.join("rm/iter-2/train.jsonl")), 4 + 1, "+ ceil(10% of 4) replayed");
    for k in [1, 2] {
        let conf = run.join(format!("rm/iter-{k}/checkpoints/step-2/config.json"));
        assert!(std::fs::read_to_string(conf).unwrap().contains("\"orm\""));
        assert!(run.join(format!("reference/step-{k}/model.safetensors")).exists());
    }
    let meta = std::fs::read_to_string(run.join("checkpoints/step-2/meta.json")).unwrap();
    assert!(meta.contains("\"iteration\":2") || meta.contains("\"iteration\": 2"), "{meta}");
    let fin = std::fs::read(run.join("checkpoints/step-3/model.safetensors")).unwrap();
    // Die after step 2, before iteration 3's RM was trained.
    std::fs::remove_dir_all(run.join("checkpoints/step-3")).unwrap();
    std::fs::remove_dir_all(run.join("rm/iter-2")).unwrap();
    mathforge_train::grpo::run(&c, None, |_| {}).unwrap();
    assert!(run.join("rm/iter-2/checkpoints/step-2").exists(), "retrained on resume");
    let again = std::fs::read(run.join("checkpoints/step-3/model.safetensors")).unwrap();
    assert!(fin == again, "resumed run ends on the same weights");
}

/// `gradient-checkpointing = true` recomputes every layer in the backward pass; PPO's policy
/// (through `Trainer::train_step`) and its critic (through `HeadModel::backward`) must end up with
/// the weights of the same run without it, up to the CPU kernels' threading noise (~1e-8).
#[test]
fn gradient_checkpointing_gives_the_same_ppo_run() {
    let (dir, tok, cfg) = setup();
    let d = dir.path();
    let run_with = |name: &str, ckpt: bool| {
        let c = PpoConfig {
            common: CommonConfig {
                lr: 1e-3,
                gradient_checkpointing: ckpt,
                ..common(&d.join(name), &tok, &cfg, 2)
            },
            train_data: "arith:split=train,steps=1,n=20".into(),
            eval_questions: 0,
            questions_per_step: 4,
            samples_per_question: 2,
            max_completion_len: 8,
            ..Default::default()
        };
        mathforge_train::ppo::run(&c, None, |_| {}).unwrap()
    };
    let (plain, ckpt) = (run_with("plain", false), run_with("ckpt", true));
    let loss = |run: &Path| metrics(run)[1]["value_loss"].as_f64().unwrap();
    assert!((loss(&plain) - loss(&ckpt)).abs() <= 1e-6 * loss(&plain).abs().max(1.0));
    for rel in ["checkpoints/step-2/model.safetensors", "critic/checkpoints/step-2/model.safetensors"] {
        let load = |run: &Path| candle_core::safetensors::load(run.join(rel), &candle_core::Device::Cpu).unwrap();
        let (a, b) = (load(&plain), load(&ckpt));
        assert_eq!(a.len(), b.len(), "{rel}");
        let mut worst = 0f32;
        for (name, ta) in &a {
            let tb = &b[name];
            let diff = (ta - tb).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
            worst = worst.max(diff.to_scalar::<f32>().unwrap());
            assert_eq!(ta.dims(), tb.dims(), "{rel} {name}");
        }
        eprintln!("{rel}: largest weight difference {worst:e}");
        assert!(worst <= 1e-5, "{rel}: largest weight difference {worst}");
    }
}
