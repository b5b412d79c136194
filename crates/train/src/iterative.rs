//! Iterative GRPO (DeepSeekMath §4.1.4, Algorithm 1): training is split into iterations; at the
//! start of each new one the reference model becomes the current policy and, when GRPO is
//! rewarded by a reward model, that RM is first trained further on the policy's latest samples,
//! labelled by the strict verifier, "using a replay mechanism that incorporates 10% of historical
//! data" (`rm-replay`).
//!
//! Files in the GRPO run folder, so killing and rerunning resumes inside any of the steps:
//! * `rollouts/step-N.jsonl`: the samples of step N+1 (`example`, `question`, `text`, `correct`),
//!   one file per step written atomically, so a resumed run finds the samples of its iteration's
//!   earlier steps (the run's `samples-N.jsonl` only appears when an invocation ends);
//! * `rm/iter-K/new.jsonl` (iteration K's new RM data), `rm/iter-K/train.jsonl` (new + replay of
//!   `new.jsonl` of iterations 1..K-1, drawn from the seed), and `rm/iter-K/` itself is a
//!   `mathforge train rm` run initialised from iteration K-1's RM, so it resumes like any run;
//! * `reference/step-N/`: the reference taken at step N (see `grpo.rs`).
//!
//! Labels: an ORM row is `{"prompt", "completion", "label"}`; a PRM row gives every step the
//! outcome label (the verifier grades final answers only; the paper's PRM data uses Math-Shepherd
//! step estimates instead, which need many extra rollouts per step). Deviation: the replay draws
//! from the data of earlier *iterations* only, not from the RM's original training set, which
//! GRPO does not know.
use crate::grpo::{GrpoConfig, Rollout};
use crate::rm::{RmConfig, RmKind};
use crate::{Error, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Steps per iteration (the reference-reset period, 0: never): `ceil(steps / iterations)` for
/// `iterations > 1`, else `ref-reset-every`.
pub fn period(cfg: &GrpoConfig) -> Result<u64> {
    let bad = |m: &str| Error::Config { file: "<resolved>".into(), msg: m.into() };
    if cfg.iterations == 0 {
        return Err(bad("`iterations` must be >= 1"));
    }
    if !(0.0..=1.0).contains(&cfg.rm_replay) {
        return Err(bad("`rm-replay` must be in [0, 1]"));
    }
    if cfg.iterations == 1 {
        return Ok(cfg.ref_reset_every);
    }
    if cfg.ref_reset_every > 0 {
        return Err(bad("`iterations` and `ref-reset-every` both set the reset period: give one"));
    }
    if cfg.iterations > cfg.common.steps {
        return Err(bad("`iterations` must be <= `steps`"));
    }
    Ok(cfg.common.steps.div_ceil(cfg.iterations))
}

/// The iteration (0-based) that the step after `step` completed steps belongs to.
pub fn iteration_of(step: u64, period: u64, iterations: u64) -> u64 {
    if period == 0 || iterations <= 1 {
        0
    } else {
        (step / period).min(iterations - 1)
    }
}

fn rollouts_file(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("rollouts").join(format!("step-{step}.jsonl"))
}

fn iter_dir(run_dir: &Path, k: u64) -> PathBuf {
    run_dir.join("rm").join(format!("iter-{k}"))
}

/// Keep the samples of the step that starts after `step` completed steps, with the verifier's
/// verdict (`correct[g][i]`), for the next iteration's RM data.
pub fn write_step_rollouts(
    run_dir: &Path,
    step: u64,
    task: &dyn mathforge_tasks::Task,
    groups: &[Vec<Rollout>],
    correct: &[Vec<bool>],
) -> Result<()> {
    let path = rollouts_file(run_dir, step);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut w = mathforge_io::jsonl::JsonlWriter::create(&path)?;
    for (g, c) in groups.iter().zip(correct) {
        for (r, ok) in g.iter().zip(c) {
            let q = &task.examples()[r.example].question;
            w.write(&json!({"example": r.example, "question": q, "text": r.text, "correct": ok}))?;
        }
    }
    w.finish()?;
    Ok(())
}

fn read_rows(path: &Path) -> Result<Vec<Value>> {
    let mut out = vec![];
    for rec in mathforge_io::jsonl::JsonlReader::open(path)? {
        let v = rec.value.map_err(|e| Error::Data {
            path: path.into(),
            line: rec.line,
            msg: format!("invalid JSON: {e}"),
        })?;
        out.push(v);
    }
    Ok(out)
}

fn write_rows(path: &Path, rows: &[Value]) -> Result<()> {
    let mut w = mathforge_io::jsonl::JsonlWriter::create(path)?;
    for r in rows {
        w.write(r)?;
    }
    w.finish()?;
    Ok(())
}

/// An RM training row from a kept sample, `None` for a PRM row without any step.
fn rm_row(v: &Value, kind: RmKind) -> Option<Value> {
    let (q, text, ok) =
        (v.get("question")?.as_str()?, v.get("text")?.as_str()?, v.get("correct")?.as_bool()?);
    match kind {
        RmKind::Orm => Some(json!({"prompt": q, "completion": text, "label": ok})),
        RmKind::Prm => {
            let n = text.lines().filter(|l| !l.trim().is_empty()).count();
            (n > 0).then(|| json!({"prompt": q, "completion": text, "labels": vec![ok; n]}))
        }
    }
}

/// Iteration `k`'s RM training file (`k >= 1`): the samples of steps `[(k-1)p, kp)` plus
/// `replay` of the earlier iterations' new data. Written once; a rerun reuses it. `None` when
/// the iteration left no usable sample.
pub fn rm_data(
    run_dir: &Path,
    k: u64,
    period: u64,
    kind: RmKind,
    replay: f64,
    seed: u64,
) -> Result<Option<PathBuf>> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let dir = iter_dir(run_dir, k);
    let train = dir.join("train.jsonl");
    if train.exists() {
        return Ok(Some(train));
    }
    let mut new = vec![];
    for step in (k - 1) * period..k * period {
        let f = rollouts_file(run_dir, step);
        if !f.exists() {
            return Err(Error::Data {
                path: f,
                line: 0,
                msg: format!(
                    "the samples of step {} (iteration {k}'s RM data) are missing",
                    step + 1
                ),
            });
        }
        new.extend(read_rows(&f)?.iter().filter_map(|v| rm_row(v, kind)));
    }
    if new.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    write_rows(&dir.join("new.jsonl"), &new)?;
    let mut old = vec![];
    for j in 1..k {
        let f = iter_dir(run_dir, j).join("new.jsonl");
        if f.exists() {
            old.extend(read_rows(&f)?);
        }
    }
    old.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (0x9e37 + k)));
    old.truncate((old.len() as f64 * replay).ceil() as usize);
    new.extend(old);
    write_rows(&train, &new)?;
    Ok(Some(train))
}

/// The reward model in force during iteration `k`: `reward-model` itself for k = 0; otherwise
/// iteration k-1's RM trained `rm-steps` further on [`rm_data`] (or, when that run exists,
/// resumed or reused as it is). Returns the RM folder (a checkpoint of `rm/iter-K/`).
pub fn reward_model_dir(
    cfg: &GrpoConfig,
    run_dir: &Path,
    k: u64,
    period: u64,
    kind: RmKind,
    git_commit: Option<String>,
) -> Result<PathBuf> {
    let Some(base) = &cfg.reward_model else {
        return Err(Error::Msg("reward_model_dir: no `reward-model`".into()));
    };
    if k == 0 {
        return Ok(PathBuf::from(base));
    }
    let prev = reward_model_dir(cfg, run_dir, k - 1, period, kind, git_commit.clone())?;
    let Some(data) = rm_data(run_dir, k, period, kind, cfg.rm_replay, cfg.common.seed)? else {
        tracing::warn!(iteration = k, "no usable samples: the reward model is kept");
        return Ok(prev);
    };
    let out = iter_dir(run_dir, k);
    let defaults = RmConfig::default();
    let rc = RmConfig {
        common: crate::trainer::CommonConfig {
            out: out.display().to_string(),
            init: Some(prev.display().to_string()),
            tokenizer: Some(cfg.common.tokenizer_path()?.display().to_string()),
            seed: cfg.common.seed.wrapping_add(k),
            steps: cfg.rm_steps.max(1),
            save_every: cfg.rm_steps.max(1),
            keep_checkpoints: 1,
            eval_every: 0,
            device: cfg.common.device.clone(),
            max_memory_mib: cfg.common.max_memory_mib,
            ..defaults.common
        },
        kind,
        train_file: Some(data.display().to_string()),
        ..defaults
    };
    let dir = crate::rm::run(&rc, git_commit, |_| {})?;
    crate::checkpoint::latest(&dir)?.ok_or_else(|| Error::Checkpoint {
        path: dir,
        msg: format!("iteration {k}'s reward model has no checkpoint"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_iterations() {
        let mut c = GrpoConfig::default();
        c.common.steps = 10;
        assert_eq!(period(&c).unwrap(), 0);
        c.iterations = 3;
        assert_eq!(period(&c).unwrap(), 4);
        assert_eq!(
            (0..=10).map(|s| iteration_of(s, 4, 3)).collect::<Vec<_>>(),
            [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
        );
        c.ref_reset_every = 2;
        assert!(period(&c).unwrap_err().to_string().contains("ref-reset-every"));
        c.ref_reset_every = 0;
        c.iterations = 0;
        assert!(period(&c).unwrap_err().to_string().contains("`iterations`"));
    }

    #[test]
    fn rm_data_labels_and_replays() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        let row = |q: &str, t: &str, ok: bool| json!({"example": 0, "question": q, "text": t, "correct": ok});
        std::fs::create_dir_all(run.join("rollouts")).unwrap();
        for step in 0..4u64 {
            let rows: Vec<Value> = (0..5)
                .map(|i| row(&format!("q{step}-{i}"), "1 + 1 = 2\n#### 2", i % 2 == 0))
                .chain([row("empty", "  \n", false)])
                .collect();
            write_rows(&rollouts_file(run, step), &rows).unwrap();
        }
        // Period 2: iteration 1 = steps 0, 1 (12 rows); iteration 2 = steps 2, 3 + replay.
        let f1 = rm_data(run, 1, 2, RmKind::Orm, 0.1, 0).unwrap().unwrap();
        let r1 = read_rows(&f1).unwrap();
        assert_eq!(r1.len(), 12);
        assert_eq!(
            r1[0],
            json!({"prompt": "q0-0", "completion": "1 + 1 = 2\n#### 2", "label": true})
        );
        let f2 = rm_data(run, 2, 2, RmKind::Orm, 0.1, 0).unwrap().unwrap();
        let r2 = read_rows(&f2).unwrap();
        assert_eq!(r2.len(), 12 + 2, "ceil(10% of 12) replayed");
        assert!(r2[12..].iter().all(|r| r["prompt"].as_str().unwrap().starts_with("q0")
            || r["prompt"].as_str().unwrap().starts_with("q1")
            || r["prompt"] == "empty"));
        // PRM rows: one outcome label per non-empty line; the empty completion is dropped.
        let prm = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(prm.path().join("rollouts")).unwrap();
        for step in 0..2u64 {
            std::fs::copy(rollouts_file(run, step), rollouts_file(prm.path(), step)).unwrap();
        }
        let p =
            read_rows(&rm_data(prm.path(), 1, 2, RmKind::Prm, 0.1, 0).unwrap().unwrap()).unwrap();
        assert_eq!(p.len(), 10);
        assert_eq!(p[1]["labels"], json!([false, false]));
        // A missing step file is named.
        std::fs::remove_file(rollouts_file(run, 3)).unwrap();
        let err = rm_data(run, 2, 2, RmKind::Orm, 0.1, 1).unwrap();
        assert!(err.is_some(), "train.jsonl exists: reused");
        std::fs::remove_dir_all(iter_dir(run, 2)).unwrap();
        let err = rm_data(run, 2, 2, RmKind::Orm, 0.1, 1).unwrap_err().to_string();
        assert!(err.contains("step-3.jsonl") && err.contains("step 4"), "{err}");
    }
}
