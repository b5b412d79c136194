//! Direct preference optimization (Rafailov et al. 2023) as DeepSeekMath runs it in §5.2.1:
//! offline pairs `(o+, o-)` of a correct and an incorrect answer sampled from the SFT model for
//! the same question, rewarded by the rule (the strict verifier), and the loss
//!
//! ```text
//! L = -log sigmoid( beta * ( (log pi(o+) - log ref(o+)) - (log pi(o-) - log ref(o-)) ) )
//! ```
//!
//! with `log pi(o)` the sum of the response's token log-probs and `ref` the frozen SFT model. Its
//! gradient coefficient in the unified view is [`crate::paradigm::gc_dpo`].
//!
//! Pairs come from one of two places:
//! * sampled: `samples-per-question` responses per question of `train-data` from the SFT model
//!   (the `init` weights), deduplicated by text; up to `pairs-per-question` pairs are formed by
//!   zipping the distinct correct with the distinct incorrect responses. Questions whose samples are
//!   all right or all wrong give no pair (counted);
//! * `pairs-file`: JSONL records `{"prompt": question, "chosen": text, "rejected": text}` (extra
//!   `prompt_ids`/`chosen_ids`/`rejected_ids` arrays, as written by this trainer, are used as is).
//!
//! Either way the pairs are written to `<out>/dpo-pairs.jsonl` before the first step, and a resumed
//! run reads them back from there, so the data and its order are the same after a restart. The
//! reference log-probs are computed once, from the `init` weights (never the resumed ones).
//!
//! Metrics per step: `loss`, `reward_margin` (mean of the beta-scaled log-ratio margin),
//! `reward_accuracy` (fraction of pairs with a positive margin), `chosen_reward`/`rejected_reward`
//! (beta-scaled log-ratios), `logp_chosen`/`logp_rejected` (policy sequence log-probs), and
//! `eval_greedy_acc` on held-out problems every `eval-every` steps (step 0 = the SFT model).
use crate::config::{to_json, to_toml};
use crate::paradigm::{
    greedy_eval, initial_model, load_tokenizer, open_train_task, response_logprobs, rl_common,
    sample_offline, Budget, OfflinePos, Sample, SampleSettings,
};
use crate::sft::{epoch_progress, require_file, resumed_position, usable, EpochCursor};
use crate::trainer::{CommonConfig, MicroLoss, StepReport, Trainer};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, D};
use mathforge_io::jsonl::{JsonlReader, JsonlWriter};
use mathforge_model::tokenizer::Tokenizer;
use mathforge_model::Llama;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `mathforge train dpo` settings (keys = long flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct DpoConfig {
    /// Settings shared by all trainers (`batch-size` and `micro-batch-size` count pairs).
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Problems to sample pairs for: `arith:split=train,steps=2,n=2000` or a benchmark JSONL.
    pub train_data: String,
    /// JSONL of `{prompt, chosen, rejected}` used instead of sampling.
    pub pairs_file: Option<String>,
    /// Held-out problems for greedy accuracy: same syntax as `train-data`.
    pub eval_data: Option<String>,
    /// Held-out questions for the greedy accuracy.
    pub eval_questions: usize,
    /// Responses sampled per question from the SFT model.
    pub samples_per_question: usize,
    /// Most pairs formed per question.
    pub pairs_per_question: usize,
    /// DPO temperature beta (strength of the implicit KL to the reference).
    pub beta: f64,
    /// Sampling temperature.
    pub temperature: f32,
    /// Sampling nucleus threshold.
    pub top_p: f32,
    /// Longest sampled response in tokens (pairs-file responses are cut to it).
    pub max_completion_len: usize,
    /// Questions of `train-data` to sample pairs for (a seeded random subset; 0: all).
    pub sample_questions: usize,
    /// Wall-clock budget in minutes for sampling + updates, as GRPO's (evaluations not
    /// counted; kept across resumes; 0: none).
    pub max_minutes: f64,
}

impl Default for DpoConfig {
    fn default() -> Self {
        DpoConfig {
            common: CommonConfig { batch_size: 16, micro_batch_size: 8, ..rl_common() },
            train_data: "arith:split=train,steps=2,n=2000".into(),
            pairs_file: None,
            eval_data: Some("arith:split=heldout,steps=2,n=200".into()),
            eval_questions: 100,
            samples_per_question: 8,
            pairs_per_question: 2,
            beta: 0.1,
            temperature: 1.0,
            top_p: 1.0,
            max_completion_len: 128,
            sample_questions: 0,
            max_minutes: 0.0,
        }
    }
}

/// The DPO loss of a batch and its diagnostics (means over pairs).
pub struct DpoLoss {
    /// Scalar loss, differentiable through the policy log-probs.
    pub loss: Tensor,
    /// Mean of `beta * ((pi(o+) - ref(o+)) - (pi(o-) - ref(o-)))`.
    pub margin: f64,
    /// Mean `beta * (pi(o+) - ref(o+))`.
    pub chosen_reward: f64,
    /// Mean `beta * (pi(o-) - ref(o-))`.
    pub rejected_reward: f64,
    /// Fraction of pairs whose margin is > 0.
    pub accuracy: f64,
}

/// DPO loss from sequence log-probs (`[P]` each): the policy's (differentiable) and the
/// reference's for the chosen and rejected responses. `-log sigmoid(z)` is computed as
/// `max(-z, 0) + log(1 + e^-|z|)`, which neither overflows nor loses precision for large `|z|`.
pub fn dpo_loss(
    policy_chosen: &Tensor,
    policy_rejected: &Tensor,
    ref_chosen: &Tensor,
    ref_rejected: &Tensor,
    beta: f64,
) -> Result<DpoLoss> {
    let p = policy_chosen.dims1()?;
    for (name, t) in [
        ("policy_rejected", policy_rejected),
        ("ref_chosen", ref_chosen),
        ("ref_rejected", ref_rejected),
    ] {
        if t.dims() != [p] {
            return Err(Error::Msg(format!(
                "dpo_loss: `{name}` has shape {:?}, expected [{p}]",
                t.dims()
            )));
        }
    }
    let hc = ((policy_chosen - ref_chosen.detach())? * beta)?;
    let hr = ((policy_rejected - ref_rejected.detach())? * beta)?;
    let z = (&hc - &hr)?;
    let per_pair = (z.neg()?.maximum(0.0)? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    let loss = per_pair.mean_all()?;
    let mean = |t: &Tensor| -> Result<f64> { Ok(t.mean_all()?.to_scalar::<f32>()? as f64) };
    let accuracy = mean(&z.detach().gt(0.0)?.to_dtype(DType::F32)?)?;
    Ok(DpoLoss {
        margin: mean(&z.detach())?,
        chosen_reward: mean(&hc.detach())?,
        rejected_reward: mean(&hr.detach())?,
        accuracy,
        loss,
    })
}

/// A preference pair, tokenized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefPair {
    /// The question.
    pub prompt: String,
    /// The preferred (correct) response text.
    pub chosen: String,
    /// The dispreferred (incorrect) response text.
    pub rejected: String,
    /// Question index in `train-data` (sampled pairs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<usize>,
    /// Prompt ids (chat format, BOS).
    #[serde(default)]
    pub prompt_ids: Vec<u32>,
    /// Chosen response ids.
    #[serde(default)]
    pub chosen_ids: Vec<u32>,
    /// Rejected response ids.
    #[serde(default)]
    pub rejected_ids: Vec<u32>,
}

/// Pairs from one question's samples: distinct correct texts zipped with distinct incorrect texts,
/// at most `max_pairs`. Returns `(chosen, rejected)` indices into `group`.
pub fn pair_indices(group: &[Sample], max_pairs: usize) -> Vec<(usize, usize)> {
    let mut seen = std::collections::HashSet::new();
    let (mut good, mut bad) = (vec![], vec![]);
    for (i, s) in group.iter().enumerate() {
        if s.response_ids.is_empty() || !seen.insert(s.text.trim().to_string()) {
            continue;
        }
        if s.correct() {
            good.push(i)
        } else {
            bad.push(i)
        }
    }
    good.into_iter().zip(bad).take(max_pairs).collect()
}

/// Tokenize `" " + text` + EOS (the SFT response encoding), cut to `max` tokens.
fn encode_response(tok: &Tokenizer, text: &str, max: usize) -> Result<Vec<u32>> {
    let mut ids = tok.encode(&format!(" {text}"), false).map_err(|e| Error::Msg(e.to_string()))?;
    if let Some(&e) = tok.eos_ids().first() {
        ids.push(e);
    }
    ids.truncate(max);
    Ok(ids)
}

/// Read `{prompt, chosen, rejected}` pairs; records with a missing field or identical responses
/// are skipped and counted by reason. Ids present in the record are used as they are.
pub fn read_pairs(
    path: &Path,
    tok: &Tokenizer,
    max_completion_len: usize,
    window: usize,
) -> Result<(Vec<PrefPair>, BTreeMap<String, u64>)> {
    require_file(path)?;
    let mut out = vec![];
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut skip = |why: &str| *skipped.entry(why.to_string()).or_default() += 1;
    for rec in JsonlReader::open(path)? {
        let Ok(v) = rec.value else {
            skip("invalid_json");
            continue;
        };
        let mut p: PrefPair = match serde_json::from_value(v) {
            Ok(p) => p,
            Err(_) => {
                skip("missing_prompt_chosen_or_rejected");
                continue;
            }
        };
        if p.prompt_ids.is_empty() {
            p.prompt_ids = tok
                .encode(&mathforge_model::chat::prompt(&p.prompt), true)
                .map_err(|e| Error::Msg(e.to_string()))?;
        }
        if p.chosen_ids.is_empty() {
            p.chosen_ids = encode_response(tok, &p.chosen, max_completion_len)?;
        }
        if p.rejected_ids.is_empty() {
            p.rejected_ids = encode_response(tok, &p.rejected, max_completion_len)?;
        }
        if p.chosen_ids == p.rejected_ids {
            skip("chosen_equals_rejected");
            continue;
        }
        let longest = p.prompt_ids.len() + p.chosen_ids.len().max(p.rejected_ids.len());
        if p.prompt_ids.is_empty() || longest > window {
            skip("longer_than_context");
            continue;
        }
        out.push(p);
    }
    usable(path, out, skipped)
}

/// Write pairs (with their ids) to `path` atomically.
pub fn write_pairs(path: &Path, pairs: &[PrefPair]) -> Result<()> {
    let mut w = JsonlWriter::create(path)?;
    for p in pairs {
        w.write(p)?;
    }
    w.finish()?;
    Ok(())
}

/// Sequence log-probs (sum over response tokens) of chosen and rejected responses of `pairs`
/// under `model`: `([P], [P])`, differentiable.
fn pair_logprobs(
    model: &Llama,
    pairs: &[&PrefPair],
    pad: u32,
    chunk: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let mut rows: Vec<(&[u32], &[u32])> =
        pairs.iter().map(|p| (p.prompt_ids.as_slice(), p.chosen_ids.as_slice())).collect();
    rows.extend(pairs.iter().map(|p| (p.prompt_ids.as_slice(), p.rejected_ids.as_slice())));
    let (lp, mask) = response_logprobs(model, &rows, pad, chunk, device)?;
    let seq = (lp * mask)?.sum(D::Minus1)?;
    let n = pairs.len();
    Ok((seq.narrow(0, 0, n)?, seq.narrow(0, n, n)?))
}

/// Salt of this trainer's epoch orders ([`crate::sft::epoch_order`]); changing it would change
/// the data order of existing runs on resume.
const ORDER_SALT: u64 = 0xd90;

/// Sample pairs from the SFT model (see the module docs); returns the pairs and counters.
fn sample_pairs(
    cfg: &DpoConfig,
    sft: &Llama,
    tok: &Tokenizer,
    progress: &mut impl FnMut(&StepReport),
) -> Result<(Vec<PrefPair>, Map<String, Value>)> {
    let task = open_train_task(&cfg.train_data)?;
    let n = task.examples().len();
    let settings = SampleSettings {
        k: cfg.samples_per_question,
        temperature: cfg.temperature,
        top_p: cfg.top_p,
        max_new_tokens: cfg.max_completion_len,
        seed: cfg.common.seed ^ 0xd0_d0,
    };
    let (groups, generated) = sample_offline(
        sft,
        tok,
        task.as_ref(),
        cfg.sample_questions,
        &cfg.common,
        &settings,
        progress,
    )?;
    let mut pairs = vec![];
    let (mut all_right, mut all_wrong, mut correct, mut total) = (0u64, 0u64, 0usize, 0usize);
    for g in &groups {
        let c = g.iter().filter(|s| s.correct()).count();
        correct += c;
        total += g.len();
        if c == g.len() {
            all_right += 1;
        } else if c == 0 {
            all_wrong += 1;
        }
        for (ci, ri) in pair_indices(g, cfg.pairs_per_question) {
            let (c, r) = (&g[ci], &g[ri]);
            pairs.push(PrefPair {
                prompt: task.examples()[c.example].question.clone(),
                chosen: c.text.clone(),
                rejected: r.text.clone(),
                example: Some(c.example),
                prompt_ids: c.prompt_ids.clone(),
                chosen_ids: c.response_ids.clone(),
                rejected_ids: r.response_ids.clone(),
            });
        }
    }
    let mut m = Map::new();
    m.insert("sample_accuracy".into(), Value::from(correct as f64 / total.max(1) as f64));
    m.insert("questions_all_correct".into(), Value::from(all_right));
    m.insert("questions_all_wrong".into(), Value::from(all_wrong));
    m.insert("pairs".into(), Value::from(pairs.len()));
    m.insert("sampled_tokens".into(), Value::from(generated));
    if pairs.is_empty() {
        return Err(Error::Msg(format!(
            "DPO: no (correct, incorrect) pair in {} samples of {n} questions from `{}` \
             ({all_right} questions all correct, {all_wrong} all wrong): sample more \
             (`samples-per-question`), raise `temperature`, or give a `pairs-file`",
            total, cfg.train_data
        )));
    }
    Ok((pairs, m))
}

/// Run (or resume) DPO. `progress` gets a report per optimizer step (and, while pairs are being
/// sampled, reports at step 0 with `sampled_questions`/`total_questions`).
pub fn run(
    cfg: &DpoConfig,
    git_commit: Option<String>,
    mut progress: impl FnMut(&StepReport),
) -> Result<PathBuf> {
    if !(cfg.beta > 0.0 && cfg.beta.is_finite()) {
        return Err(Error::Config { file: "<resolved>".into(), msg: "`beta` must be > 0".into() });
    }
    if cfg.pairs_file.is_none() && (cfg.samples_per_question < 2 || cfg.pairs_per_question == 0) {
        return Err(Error::Config {
            file: "<resolved>".into(),
            msg: "`samples-per-question` must be >= 2 and `pairs-per-question` >= 1".into(),
        });
    }
    if let Some(f) = &cfg.pairs_file {
        require_file(Path::new(f))?;
    }
    let tok = load_tokenizer(&cfg.common)?;
    let eval = cfg.eval_data.as_deref().map(crate::grpo::open_task).transpose()?;
    let seq = 64 + cfg.max_completion_len;
    let mut tr =
        Trainer::open("dpo", &cfg.common, to_json(cfg), &to_toml(cfg)?, seq, 1, git_commit)?;
    let device = tr.device.clone();
    let (pad, chunk, bs, mb) = (
        tok.pad_id(),
        cfg.common.logprob_chunk,
        cfg.common.batch_size,
        cfg.common.micro_batch_size,
    );
    let window = tr.model_config().max_position_embeddings;
    let sft = initial_model(&cfg.common, &device)?;
    // --- data: the pairs file of this run (resume), else the given file, else sample.
    let own = tr.run_dir.join("dpo-pairs.jsonl");
    let mut data_m = Map::new();
    let mut budget = Budget::new(cfg.max_minutes, &tr);
    let t_data = std::time::Instant::now();
    let pairs = if own.exists() {
        read_pairs(&own, &tok, cfg.max_completion_len, window)?.0
    } else {
        if tr.step() > 0 {
            return Err(Error::Data {
                path: own,
                line: 0,
                msg: "missing from a run that has checkpoints: the pairs cannot be rebuilt".into(),
            });
        }
        let pairs = match &cfg.pairs_file {
            Some(f) => {
                let (p, skipped) = read_pairs(Path::new(f), &tok, cfg.max_completion_len, window)?;
                for (k, v) in skipped {
                    data_m.insert(format!("skipped_{k}"), Value::from(v));
                }
                data_m.insert("pairs".into(), Value::from(p.len()));
                p
            }
            None => {
                let (p, m) = sample_pairs(cfg, &sft, &tok, &mut progress)?;
                data_m = m;
                p
            }
        };
        write_pairs(&own, &pairs)?;
        // Sampling the pairs (and the reference pass below) is part of the method's budget.
        pairs
    };
    let fresh = tr.step() == 0;
    // --- reference sequence log-probs, once, from the SFT weights.
    let mut ref_c = Vec::with_capacity(pairs.len());
    let mut ref_r = Vec::with_capacity(pairs.len());
    for c in pairs.chunks(mb.max(1)) {
        let refs: Vec<&PrefPair> = c.iter().collect();
        let (a, b) = pair_logprobs(&sft, &refs, pad, chunk, &device)?;
        ref_c.extend(a.detach().to_vec1::<f32>()?);
        ref_r.extend(b.detach().to_vec1::<f32>()?);
    }
    drop(sft);
    if fresh {
        let s = t_data.elapsed().as_secs_f64();
        data_m.insert("data_seconds".into(), Value::from(s));
        budget.add(s);
    }
    let eval_now = greedy_eval(eval.as_deref(), &tok, cfg.eval_questions, cfg.max_completion_len);
    if tr.step() == 0 {
        let mut m = data_m.clone();
        if let Some(acc) = eval_now(&tr)? {
            m.insert("eval_greedy_acc".into(), Value::from(acc));
        }
        tr.log(&m)?;
        progress(&StepReport { step: 0, total: cfg.common.steps, metrics: m });
    }
    let mut pos: OfflinePos = resumed_position(&tr)?;
    let mut cursor = EpochCursor::new(pairs.len(), cfg.common.seed, ORDER_SALT);
    while !tr.done() && !budget.exhausted() {
        let t_step = std::time::Instant::now();
        let before = serde_json::to_value(pos).unwrap_or(Value::Null);
        let batch = cursor.next_batch(&mut pos.epoch, &mut pos.index, bs);
        let micro: Vec<&[usize]> = batch.chunks(mb).collect();
        let res = tr.train_step(micro.len(), |model, _rng, i| {
            let idx = micro[i];
            let ps: Vec<&PrefPair> = idx.iter().map(|&j| &pairs[j]).collect();
            let (pc, pr) = pair_logprobs(model, &ps, pad, chunk, &device)?;
            let rc: Vec<f32> = idx.iter().map(|&j| ref_c[j]).collect();
            let rr: Vec<f32> = idx.iter().map(|&j| ref_r[j]).collect();
            let (rc, rr) = (Tensor::new(rc, &device)?, Tensor::new(rr, &device)?);
            let out = dpo_loss(&pc, &pr, &rc, &rr, cfg.beta)?;
            let mean = |t: &Tensor| -> Result<f64> {
                Ok(t.detach().mean_all()?.to_scalar::<f32>()? as f64)
            };
            let mut m = Map::new();
            m.insert("reward_margin".into(), Value::from(out.margin));
            m.insert("reward_accuracy".into(), Value::from(out.accuracy));
            m.insert("chosen_reward".into(), Value::from(out.chosen_reward));
            m.insert("rejected_reward".into(), Value::from(out.rejected_reward));
            m.insert("logp_chosen".into(), Value::from(mean(&pc)?));
            m.insert("logp_rejected".into(), Value::from(mean(&pr)?));
            Ok(MicroLoss { loss: out.loss, weight: idx.len() as f64 / bs as f64, metrics: m })
        });
        let mut m = match res {
            Ok(m) => m,
            Err(e @ Error::NonFinite { .. }) => return Err(tr.save_last_good(e, before)),
            Err(e) => return Err(e),
        };
        m.insert("epoch".into(), Value::from(epoch_progress(pos.epoch, pos.index, pairs.len())));
        let data = |spent| {
            pos.train_wall_seconds = spent;
            serde_json::to_value(pos).unwrap_or(Value::Null)
        };
        let seconds = t_step.elapsed().as_secs_f64();
        budget.end_step(&mut tr, seconds, m, data, &eval_now, &mut progress)?;
    }
    budget.finish(
        &mut tr,
        serde_json::to_value(pos).unwrap_or(Value::Null),
        &eval_now,
        &mut progress,
    )?;
    tr.plot()?;
    Ok(tr.run_dir.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    /// Hand values from PyTorch:
    /// ```python
    /// import torch, torch.nn.functional as F
    /// pc = torch.tensor([-3.0, -10.0], requires_grad=True); pr = torch.tensor([-4.0, -2.0], requires_grad=True)
    /// rc = torch.tensor([-3.5, -9.0]); rr = torch.tensor([-3.0, -2.5]); beta = 0.5
    /// z = beta * ((pc - rc) - (pr - rr)); loss = -F.logsigmoid(z).mean(); loss.backward()
    /// print(loss.item(), pc.grad.tolist(), pr.grad.tolist(), z.tolist())
    /// # 0.7618709802627563 [-0.08020532131195068, -0.16979467868804932]
    /// #                    [0.08020532131195068, 0.16979467868804932] [0.75, -0.75]
    /// ```
    #[test]
    fn dpo_loss_matches_pytorch() {
        let dev = Device::Cpu;
        let pc = Var::new(&[-3.0f32, -10.0], &dev).unwrap();
        let pr = Var::new(&[-4.0f32, -2.0], &dev).unwrap();
        let rc = Tensor::new(&[-3.5f32, -9.0], &dev).unwrap();
        let rr = Tensor::new(&[-3.0f32, -2.5], &dev).unwrap();
        let out = dpo_loss(pc.as_tensor(), pr.as_tensor(), &rc, &rr, 0.5).unwrap();
        let l = out.loss.to_scalar::<f32>().unwrap();
        assert!((l - 0.761_871).abs() < 1e-6, "{l}");
        let g = out.loss.backward().unwrap();
        let gc = g.get(pc.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let gr = g.get(pr.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in gc.iter().zip([-0.080_205_32f32, -0.169_794_68]) {
            assert!((a - b).abs() < 1e-6, "{gc:?}");
        }
        for (a, b) in gr.iter().zip([0.080_205_32f32, 0.169_794_68]) {
            assert!((a - b).abs() < 1e-6, "{gr:?}");
        }
        assert_eq!(out.accuracy, 0.5);
        assert!(out.margin.abs() < 1e-7);
        assert!((out.chosen_reward - (0.25 - 0.5) / 2.0).abs() < 1e-6);
        // Equal policy and reference: z = 0, loss = ln 2 whatever beta.
        let z = dpo_loss(&rc, &rr, &rc, &rr, 3.0).unwrap().loss.to_scalar::<f32>().unwrap();
        assert!((z - std::f32::consts::LN_2).abs() < 1e-6);
        // Large margins stay finite (no overflow in exp).
        let big = Tensor::new(&[1e4f32, -1e4], &dev).unwrap();
        let zero = Tensor::new(&[0f32, 0.0], &dev).unwrap();
        let l = dpo_loss(&big, &zero, &zero, &zero, 1.0).unwrap().loss.to_scalar::<f32>().unwrap();
        assert!((l - 5e3).abs() < 1e-2, "{l}");
        let bad = Tensor::new(&[0f32], &dev).unwrap();
        let err = dpo_loss(&big, &bad, &zero, &zero, 1.0).err().unwrap().to_string();
        assert!(err.contains("`policy_rejected`"), "{err}");
    }

    fn s(text: &str, reward: f64) -> Sample {
        crate::paradigm::test_sample(0, text, reward)
    }

    #[test]
    fn pairs_zip_distinct_correct_with_distinct_incorrect() {
        let g = vec![s("a", 1.0), s("x", 0.0), s("a ", 1.0), s("b", 1.0), s("x", 0.0), s("y", 0.0)];
        assert_eq!(pair_indices(&g, 5), vec![(0, 1), (3, 5)]);
        assert_eq!(pair_indices(&g, 1), vec![(0, 1)]);
        assert!(pair_indices(&g[..1], 5).is_empty(), "no incorrect sample, no pair");
    }
}
