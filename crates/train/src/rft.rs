//! Rejection-sampling fine-tuning (RFT, Yuan et al. 2023) and Online RFT, as DeepSeekMath compares
//! them in §5.2.1 (Table 10, gradient coefficient eq. 10: `I(o)` = 1 if the answer of `o` is
//! correct, else 0).
//!
//! * **RFT (offline)**: `samples-per-question` responses to every question of `train-data` are
//!   sampled once from the SFT model (the `init` weights) with the model crate's batched sampler;
//!   the correct ones (strict verifier, through the task's reward) are kept, identical responses to
//!   the same question are deduplicated (`dedup`), and the result is written to
//!   `<out>/rft-data.jsonl` as GSM8K-style `{"question", "answer"}` records (plus `example`), the
//!   format `mathforge train sft` reads. Training is then SFT on that file with [`crate::sft`]'s
//!   machinery: chat format, loss on response tokens only, mean NLL over the step's response
//!   tokens, epoch order from the seed. A resumed run reads the data file back.
//! * **Online RFT** (`online = true`): every step samples `samples-per-question` responses to
//!   `questions-per-step` random questions from the *current* policy, as [`crate::grpo`] does, and
//!   takes one gradient step on the correct ones, averaged as in eq. 10 / the paper's GRPO:
//!   `1/N sum_i I(o_i)/|o_i| sum_t grad log pi(o_it)` over all `N` samples of the step (incorrect
//!   samples count in `N` with coefficient 0, so a step with few correct samples moves the policy
//!   less). A step without any correct sample changes nothing but still counts.
//!
//! Both log `eval_greedy_acc` on `eval-data` every `eval-every` steps (step 0 = the SFT model), so
//! they can be compared with GRPO and DPO on the same budget.
use crate::config::{to_json, to_toml};
use crate::paradigm::{
    greedy_eval, load_tokenizer, open_train_task, rl_common, sample_and_reward, sample_offline,
    Budget, OfflinePos, Sample, SampleSettings,
};
use crate::sft::{encode_pair, epoch_progress, resumed_position, sft_step, EpochCursor, Pair};
use crate::trainer::{CommonConfig, MicroLoss, StepReport, Trainer};
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use mathforge_io::jsonl::{JsonlReader, JsonlWriter};
use mathforge_model::tokenizer::Tokenizer;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// `mathforge train rft` settings (keys = long flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct RftConfig {
    /// Settings shared by all trainers (offline: `batch-size` sequences per step).
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Training problems: `arith:split=train,steps=2,n=2000` or a benchmark JSONL.
    pub train_data: String,
    /// Held-out problems for greedy accuracy: same syntax.
    pub eval_data: Option<String>,
    /// Held-out questions for the greedy accuracy.
    pub eval_questions: usize,
    /// Online RFT: sample from the current policy every step (else offline, from the SFT model).
    pub online: bool,
    /// Responses sampled per question.
    pub samples_per_question: usize,
    /// Online: questions per step (`samples-per-question` responses each).
    pub questions_per_step: usize,
    /// Offline: drop identical correct responses to the same question.
    pub dedup: bool,
    /// Sampling temperature.
    pub temperature: f32,
    /// Sampling nucleus threshold.
    pub top_p: f32,
    /// Longest sampled response in tokens.
    pub max_completion_len: usize,
    /// Offline: questions of `train-data` to sample (a seeded random subset; 0: all).
    pub sample_questions: usize,
    /// Wall-clock budget in minutes for sampling + updates, as GRPO's (evaluations not
    /// counted; kept across resumes; 0: none).
    pub max_minutes: f64,
}

impl Default for RftConfig {
    fn default() -> Self {
        RftConfig {
            common: rl_common(),
            train_data: "arith:split=train,steps=2,n=2000".into(),
            eval_data: Some("arith:split=heldout,steps=2,n=200".into()),
            eval_questions: 100,
            online: false,
            samples_per_question: 8,
            questions_per_step: 8,
            dedup: true,
            temperature: 1.0,
            top_p: 1.0,
            max_completion_len: 128,
            sample_questions: 0,
            max_minutes: 0.0,
        }
    }
}

/// Keep the correct samples of each group, dropping (with `dedup`) responses whose trimmed text
/// repeats an earlier kept one of the same question. Returns `(question index, answer text)`.
pub fn keep_correct(groups: &[Vec<Sample>], dedup: bool) -> Vec<(usize, String)> {
    let mut out = vec![];
    for g in groups {
        let mut seen = std::collections::HashSet::new();
        for s in g.iter().filter(|s| s.correct()) {
            let text = s.text.trim().to_string();
            if text.is_empty() || (dedup && !seen.insert(text.clone())) {
                continue;
            }
            out.push((s.example, text));
        }
    }
    out
}

/// Salt of this trainer's epoch orders ([`crate::sft::epoch_order`]); changing it would change
/// the data order of existing runs on resume.
const ORDER_SALT: u64 = 0x4f7;

/// Run (or resume) RFT (`cfg.online` false) or Online RFT. `progress` gets a report per optimizer
/// step (offline RFT also reports at step 0 while sampling: `sampled_questions`/`total_questions`).
pub fn run(
    cfg: &RftConfig,
    git_commit: Option<String>,
    progress: impl FnMut(&StepReport),
) -> Result<PathBuf> {
    if cfg.samples_per_question == 0 || cfg.questions_per_step == 0 {
        return Err(Error::Config {
            file: "<resolved>".into(),
            msg: "`samples-per-question` and `questions-per-step` must be >= 1".into(),
        });
    }
    let tok = load_tokenizer(&cfg.common)?;
    let train = open_train_task(&cfg.train_data)?;
    let eval = cfg.eval_data.as_deref().map(crate::grpo::open_task).transpose()?;
    let stage = if cfg.online { "online-rft" } else { "rft" };
    let seq = 64 + cfg.max_completion_len;
    let tr = Trainer::open(stage, &cfg.common, to_json(cfg), &to_toml(cfg)?, seq, 0, git_commit)?;
    let eval_now = greedy_eval(eval.as_deref(), &tok, cfg.eval_questions, cfg.max_completion_len);
    if cfg.online {
        online(cfg, tr, &tok, train.as_ref(), &eval_now, progress)
    } else {
        offline(cfg, tr, &tok, train.as_ref(), &eval_now, progress)
    }
}

/// Offline RFT: sample once from the SFT model, keep the correct samples, SFT on them.
fn offline(
    cfg: &RftConfig,
    mut tr: Trainer,
    tok: &Tokenizer,
    train: &dyn mathforge_tasks::Task,
    eval_now: &dyn Fn(&Trainer) -> Result<Option<f64>>,
    mut progress: impl FnMut(&StepReport),
) -> Result<PathBuf> {
    let data_path = tr.run_dir.join("rft-data.jsonl");
    let max_len = 64 + cfg.max_completion_len;
    let mut data_m = Map::new();
    let mut budget = Budget::new(cfg.max_minutes, &tr);
    if !data_path.exists() {
        if tr.step() > 0 {
            return Err(Error::Data {
                path: data_path,
                line: 0,
                msg: "missing from a run that has checkpoints: the data cannot be rebuilt".into(),
            });
        }
        // A fresh run's model is the SFT model (`init`), the data source of RFT.
        let t_sample = std::time::Instant::now();
        let settings = SampleSettings {
            k: cfg.samples_per_question,
            temperature: cfg.temperature,
            top_p: cfg.top_p,
            max_new_tokens: cfg.max_completion_len,
            seed: cfg.common.seed ^ 0x4f7_5a3,
        };
        let (groups, generated) = sample_offline(
            &tr.model,
            tok,
            train,
            cfg.sample_questions,
            &cfg.common,
            &settings,
            &mut progress,
        )?;
        let kept = keep_correct(&groups, cfg.dedup);
        let n_samples: usize = groups.iter().map(Vec::len).sum();
        let n_correct = groups.iter().flatten().filter(|s| s.correct()).count();
        let covered = groups.iter().filter(|g| g.iter().any(Sample::correct)).count() as f64;
        data_m.insert(
            "sample_accuracy".into(),
            Value::from(n_correct as f64 / n_samples.max(1) as f64),
        );
        data_m.insert("kept_samples".into(), Value::from(kept.len()));
        data_m.insert("duplicates_dropped".into(), Value::from(n_correct - kept.len()));
        data_m
            .insert("questions_covered".into(), Value::from(covered / groups.len().max(1) as f64));
        data_m.insert("sampled_tokens".into(), Value::from(generated));
        if kept.is_empty() {
            return Err(Error::Msg(format!(
                "RFT: none of the {n_samples} samples of the SFT model on `{}` is correct: \
                 nothing to fine-tune on (sample more with `samples-per-question`, or start \
                 from a better SFT model)",
                cfg.train_data
            )));
        }
        let mut w = JsonlWriter::create(&data_path)?;
        for (qi, answer) in &kept {
            w.write(&serde_json::json!({
                "question": train.examples()[*qi].question,
                "answer": answer,
                "example": qi,
            }))?;
        }
        w.finish()?;
        let sample_s = t_sample.elapsed().as_secs_f64();
        data_m.insert("sampling_seconds".into(), Value::from(sample_s));
        budget.add(sample_s);
    }
    let mut pairs: Vec<Pair> = vec![];
    for rec in JsonlReader::open(&data_path)? {
        let line = rec.line;
        let bad = |msg: &str| Error::Data { path: data_path.clone(), line, msg: msg.into() };
        let v = rec.value.map_err(|e| bad(&e.to_string()))?;
        let (Some(Value::String(q)), Some(Value::String(a))) = (v.get("question"), v.get("answer"))
        else {
            return Err(bad("needs string fields `question` and `answer`"));
        };
        if let Some(p) = encode_pair(tok, q, a, max_len)? {
            pairs.push(p);
        }
    }
    if pairs.is_empty() {
        return Err(Error::Data { path: data_path, line: 0, msg: "no usable pairs".into() });
    }
    if tr.step() == 0 {
        let mut m = data_m;
        if let Some(acc) = eval_now(&tr)? {
            m.insert("eval_greedy_acc".into(), Value::from(acc));
        }
        tr.log(&m)?;
        progress(&StepReport { step: 0, total: cfg.common.steps, metrics: m });
    }
    let mut pos: OfflinePos = resumed_position(&tr)?;
    let mut cursor = EpochCursor::new(pairs.len(), cfg.common.seed, ORDER_SALT);
    let (bs, pad) = (cfg.common.batch_size, tok.pad_id());
    while !tr.done() && !budget.exhausted() {
        let t_step = std::time::Instant::now();
        let before = serde_json::to_value(pos).unwrap_or(Value::Null);
        let idx = cursor.next_batch(&mut pos.epoch, &mut pos.index, bs);
        let batch: Vec<&Pair> = idx.iter().map(|&i| &pairs[i]).collect();
        let mut m = sft_step(&mut tr, &batch, pad, before)?;
        m.insert("epoch".into(), Value::from(epoch_progress(pos.epoch, pos.index, pairs.len())));
        let data = |spent| {
            pos.train_wall_seconds = spent;
            serde_json::to_value(pos).unwrap_or(Value::Null)
        };
        let seconds = t_step.elapsed().as_secs_f64();
        budget.end_step(&mut tr, seconds, m, data, eval_now, &mut progress)?;
    }
    budget.finish(
        &mut tr,
        serde_json::to_value(pos).unwrap_or(Value::Null),
        eval_now,
        &mut progress,
    )?;
    tr.plot()?;
    Ok(tr.run_dir.clone())
}

/// Online RFT: each step samples from the current policy and trains on its correct samples.
fn online(
    cfg: &RftConfig,
    mut tr: Trainer,
    tok: &Tokenizer,
    train: &dyn mathforge_tasks::Task,
    eval_now: &dyn Fn(&Trainer) -> Result<Option<f64>>,
    mut progress: impl FnMut(&StepReport),
) -> Result<PathBuf> {
    let mut samples = JsonlWriter::create(tr.run_dir.join(format!("samples-{}.jsonl", tr.step())))?;
    let (pad, chunk, mb) = (tok.pad_id(), cfg.common.logprob_chunk, cfg.common.micro_batch_size);
    let mut budget = Budget::new(cfg.max_minutes, &tr);
    if tr.step() == 0 {
        if let Some(acc) = eval_now(&tr)? {
            let mut m = Map::new();
            m.insert("eval_greedy_acc".into(), Value::from(acc));
            tr.log(&m)?;
            progress(&StepReport { step: 0, total: cfg.common.steps, metrics: m });
        }
    }
    while !tr.done() && !budget.exhausted() {
        let t0 = std::time::Instant::now();
        let n_ex = train.examples().len();
        let qs: Vec<usize> =
            (0..cfg.questions_per_step).map(|_| tr.rng.gen_range(0..n_ex)).collect();
        let settings = SampleSettings {
            k: cfg.samples_per_question,
            temperature: cfg.temperature,
            top_p: cfg.top_p,
            max_new_tokens: cfg.max_completion_len,
            seed: tr.rng.gen(),
        };
        let (groups, generated) =
            sample_and_reward(&tr.model, tok, train, &qs, &settings, qs.len(), |_, _| {})?;
        let gen_s = t0.elapsed().as_secs_f64();
        let all: Vec<&Sample> = groups.iter().flatten().collect();
        for s in &all {
            samples.write(&serde_json::json!({"step": tr.step(), "example": s.example, "text": s.text, "reward": s.reward, "truncated": s.truncated}))?;
        }
        let n_all = all.len().max(1) as f64;
        // GC = I(o): only correct samples carry gradient, so only they are forwarded.
        let rows: Vec<&Sample> =
            all.iter().copied().filter(|s| s.correct() && !s.response_ids.is_empty()).collect();
        let lens: Vec<f64> = all.iter().map(|s| s.response_ids.len() as f64).collect();
        let device = tr.device.clone();
        let micro: Vec<&[&Sample]> = rows.chunks(mb).collect();
        let t_train = std::time::Instant::now();
        let res = tr.train_step(micro.len().max(1), |model, _rng, i| {
            let Some(c) = micro.get(i) else {
                let z = Tensor::zeros((), DType::F32, &device)?;
                return Ok(MicroLoss { loss: z, weight: 1.0, metrics: Map::new() });
            };
            let rs: Vec<(&[u32], &[u32])> =
                c.iter().map(|s| (s.prompt_ids.as_slice(), s.response_ids.as_slice())).collect();
            let (lp, mask) = crate::paradigm::response_logprobs(model, &rs, pad, chunk, &device)?;
            // Mean over each sample's tokens, then over the micro-batch's samples; the weight
            // |c| / N makes the step's gradient eq. 10's 1/N sum over all N samples.
            let w = crate::paradigm::paper_weights(&mask)?;
            let gc = crate::paradigm::gc_rft(&vec![true; c.len()], lp.dim(1)?, &device)?;
            let loss = crate::paradigm::unified_loss(&lp, &gc, &w)?;
            Ok(MicroLoss { loss, weight: c.len() as f64 / n_all, metrics: Map::new() })
        });
        let mut m = match res {
            Ok(m) => m,
            Err(e @ Error::NonFinite { .. }) => {
                let data = serde_json::json!({ "train_wall_seconds": budget.spent });
                return Err(tr.save_last_good(e, data));
            }
            Err(e) => return Err(e),
        };
        m.insert("accuracy".into(), Value::from(rows.len() as f64 / n_all));
        m.insert(
            "reward_mean".into(),
            Value::from(all.iter().map(|s| s.reward).sum::<f64>() / n_all),
        );
        m.insert("trained_samples".into(), Value::from(rows.len()));
        m.insert("completion_len_mean".into(), Value::from(lens.iter().sum::<f64>() / n_all));
        m.insert(
            "truncated_frac".into(),
            Value::from(all.iter().filter(|s| s.truncated).count() as f64 / n_all),
        );
        m.insert("generation_seconds".into(), Value::from(gen_s));
        m.insert("train_seconds".into(), Value::from(t_train.elapsed().as_secs_f64()));
        m.insert(
            "tokens_per_second".into(),
            Value::from(generated as f64 / t0.elapsed().as_secs_f64().max(1e-9)),
        );
        let data = |spent| serde_json::json!({ "train_wall_seconds": spent });
        let seconds = t0.elapsed().as_secs_f64();
        budget.end_step(&mut tr, seconds, m, data, eval_now, &mut progress)?;
    }
    let data = serde_json::json!({ "train_wall_seconds": budget.spent });
    budget.finish(&mut tr, data, eval_now, &mut progress)?;
    samples.finish()?;
    tr.plot()?;
    Ok(tr.run_dir.clone())
}

/// Read an RFT data file's records back as `(question, answer)` (for reports and tests).
pub fn read_data(path: &Path) -> Result<Vec<(String, String)>> {
    let mut out = vec![];
    for rec in JsonlReader::open(path)? {
        let line = rec.line;
        let v =
            rec.value.map_err(|e| Error::Data { path: path.into(), line, msg: e.to_string() })?;
        match (v.get("question"), v.get("answer")) {
            (Some(Value::String(q)), Some(Value::String(a))) => out.push((q.clone(), a.clone())),
            _ => {
                return Err(Error::Data {
                    path: path.into(),
                    line,
                    msg: "needs string fields `question` and `answer`".into(),
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paradigm::test_sample as s;

    #[test]
    fn keeps_correct_and_dedups_per_question() {
        let groups = vec![
            vec![
                s(0, "2 #### 2", 1.0),
                s(0, " 2 #### 2", 1.0),
                s(0, "#### 3", 0.0),
                s(0, "1+1 #### 2", 1.0),
            ],
            vec![s(1, "2 #### 2", 1.0), s(1, "", 1.0)],
        ];
        let kept = keep_correct(&groups, true);
        assert_eq!(
            kept,
            vec![(0, "2 #### 2".into()), (0, "1+1 #### 2".into()), (1, "2 #### 2".into())],
            "same text under another question is kept; empty text dropped"
        );
        assert_eq!(keep_correct(&groups, false).len(), 4);
    }
}
