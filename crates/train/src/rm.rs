//! Reward models (DeepSeekMath §4.1.2-§4.1.3, issue 5 item 5): a scalar head on the backbone
//! ([`crate::heads`]) trained with binary cross-entropy, `mathforge train rm`.
//!
//! * **Outcome RM (ORM)**: one logit at the last token of `prompt + completion + EOS`, target 1
//!   when the completion's final answer is correct (Cobbe et al. 2021's verifier; the paper's
//!   outcome supervision). Data: JSONL `{"prompt", "completion", "label"}` (label 0/1 or bool).
//! * **Process RM (PRM)**: one logit at the last token of every reasoning step, target the step's
//!   label (Lightman et al. 2023; Wang et al. 2023 Math-Shepherd, the paper's process supervision).
//!   Data: `{"prompt", "steps": [...], "labels": [...]}`, or `{"prompt", "completion",
//!   "labels"}` with steps separated by newlines (empty lines ignored).
//! * `--from-samples FILE --samples-task SPEC` builds ORM data from rollout files: GRPO's
//!   `samples-N.jsonl` (`example` index, `text`) or an eval `samples.jsonl` (`id`, `response`),
//!   re-graded with the task's strict verifier against its reference answers.
//!
//! Tokenisation follows SFT (`sft::encode_pair`): `User: {q}\n\nAssistant:` with BOS, then the
//! completion with a leading space (unless it already starts with whitespace). A PRM completion is
//! encoded step by step (step `i > 0` prefixed by `\n`) so every step ends on a token boundary.
//!
//! Metrics per step: loss, accuracy (p > 0.5 vs label) on the trained batch; on the held-out split
//! (`eval-file`, else a seeded `heldout-frac` of the data) loss, accuracy and ROC AUC. Runs resume
//! like every trainer (weights, AdamW, RNG, data position).
//!
//! [`RewardScorer`] scores rollouts with a trained ORM for GRPO/PPO (`--reward-model DIR`): the
//! reward is `sigmoid(score at the last completion token)`, in [0, 1] like the verifier's.
use crate::checkpoint::{self, Meta, RngState};
use crate::heads::{HeadKind, HeadModel};
use crate::metrics::MetricsLog;
use crate::optim::{finite_loss, AdamW, GradAccumulator};
use crate::trainer::{check_memory, estimate_memory, pad_batch, CommonConfig, StepReport};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use mathforge_model::tokenizer::Tokenizer;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which reward model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RmKind {
    /// Outcome: one label per completion.
    #[default]
    Orm,
    /// Process: one label per step.
    Prm,
}

impl std::str::FromStr for RmKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "orm" => Ok(RmKind::Orm),
            "prm" => Ok(RmKind::Prm),
            _ => Err(format!("unknown value `{s}` (expected one of: orm, prm)")),
        }
    }
}

/// `mathforge train rm` settings (keys = long flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct RmConfig {
    /// Settings shared by all trainers.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// orm or prm.
    pub kind: RmKind,
    /// Labelled data (JSONL; see the module docs for the fields).
    pub train_file: Option<String>,
    /// Held-out data (default: `heldout-frac` of the training data).
    pub eval_file: Option<String>,
    /// Fraction of the data held out when there is no `eval-file`.
    pub heldout_frac: f64,
    /// Build ORM data from a GRPO or eval samples file, graded by the verifier.
    pub from_samples: Option<String>,
    /// The problems the samples were drawn from (`arith:...` or a benchmark JSONL).
    pub samples_task: Option<String>,
    /// Longest prompt + completion in tokens (longer examples are skipped and counted).
    pub max_len: usize,
}

impl Default for RmConfig {
    fn default() -> Self {
        RmConfig {
            common: CommonConfig {
                lr: 1e-4,
                schedule: crate::schedule::ScheduleKind::Cosine,
                warmup_steps: 5,
                weight_decay: 0.0,
                batch_size: 16,
                micro_batch_size: 16,
                save_every: 50,
                eval_every: 25,
                ..Default::default()
            },
            kind: RmKind::Orm,
            train_file: None,
            eval_file: None,
            heldout_frac: 0.1,
            from_samples: None,
            samples_task: None,
            max_len: 512,
        }
    }
}

/// One tokenized example: the scalar is read at `positions`, trained towards `labels`.
#[derive(Debug, Clone, PartialEq)]
pub struct RmExample {
    /// Prompt + completion ids.
    pub ids: Vec<u32>,
    /// Indices into `ids` whose score counts (ORM: the last; PRM: each step's last token).
    pub positions: Vec<usize>,
    /// One 0/1 label per position.
    pub labels: Vec<f32>,
}

fn msg<E: std::fmt::Display>(e: E) -> Error {
    Error::Msg(e.to_string())
}

fn spaced(completion: &str) -> String {
    if completion.starts_with(char::is_whitespace) {
        completion.to_string()
    } else {
        format!(" {completion}")
    }
}

/// ORM example: score at the last token of `prompt + completion + EOS`. `None` if longer than
/// `max_len`.
pub fn encode_orm(
    tok: &Tokenizer,
    prompt: &str,
    completion: &str,
    label: bool,
    max_len: usize,
) -> Result<Option<RmExample>> {
    let mut ids = tok.encode(&mathforge_model::chat::prompt(prompt), true).map_err(msg)?;
    ids.extend(tok.encode(&spaced(completion), false).map_err(msg)?);
    if let Some(&e) = tok.eos_ids().first() {
        ids.push(e);
    }
    if ids.len() > max_len || ids.is_empty() {
        return Ok(None);
    }
    let last = ids.len() - 1;
    Ok(Some(RmExample { ids, positions: vec![last], labels: vec![f32::from(u8::from(label))] }))
}

/// PRM example: steps encoded one by one (`\n` between them), score at each step's last token.
pub fn encode_prm(
    tok: &Tokenizer,
    prompt: &str,
    steps: &[String],
    labels: &[bool],
    max_len: usize,
) -> Result<Option<RmExample>> {
    let mut ids = tok.encode(&mathforge_model::chat::prompt(prompt), true).map_err(msg)?;
    let mut positions = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        let text = if i == 0 { spaced(s) } else { format!("\n{s}") };
        let part = tok.encode(&text, false).map_err(msg)?;
        if part.is_empty() {
            return Ok(None);
        }
        ids.extend(part);
        positions.push(ids.len() - 1);
    }
    if ids.len() > max_len || positions.is_empty() {
        return Ok(None);
    }
    Ok(Some(RmExample {
        ids,
        positions,
        labels: labels.iter().map(|&l| f32::from(u8::from(l))).collect(),
    }))
}

fn as_label(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// Read a labelled JSONL file of `kind`; bad records are skipped and counted by reason.
pub fn load_examples(
    path: &Path,
    tok: &Tokenizer,
    kind: RmKind,
    max_len: usize,
) -> Result<(Vec<RmExample>, BTreeMap<String, u64>)> {
    if !path.exists() {
        return Err(Error::Data { path: path.into(), line: 0, msg: "file does not exist".into() });
    }
    let mut out = vec![];
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut skip = |r: &str| *skipped.entry(r.to_string()).or_default() += 1;
    for rec in mathforge_io::jsonl::JsonlReader::open(path)? {
        let Ok(v) = rec.value else {
            skip("invalid_json");
            continue;
        };
        let Some(prompt) = v.get("prompt").and_then(Value::as_str) else {
            skip("missing_prompt");
            continue;
        };
        let ex = match kind {
            RmKind::Orm => {
                let (Some(c), Some(l)) = (
                    v.get("completion").and_then(Value::as_str),
                    v.get("label").and_then(as_label),
                ) else {
                    skip("missing_completion_or_label");
                    continue;
                };
                encode_orm(tok, prompt, c, l, max_len)?
            }
            RmKind::Prm => {
                let steps: Option<Vec<String>> = match (v.get("steps"), v.get("completion")) {
                    (Some(Value::Array(a)), _) => {
                        a.iter().map(|s| s.as_str().map(str::to_string)).collect()
                    }
                    (None, Some(Value::String(c))) => Some(
                        c.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect(),
                    ),
                    _ => None,
                };
                let labels: Option<Vec<bool>> = match v.get("labels") {
                    Some(Value::Array(a)) => a.iter().map(as_label).collect(),
                    _ => None,
                };
                let (Some(steps), Some(labels)) = (steps, labels) else {
                    skip("missing_steps_or_labels");
                    continue;
                };
                if steps.len() != labels.len() || steps.is_empty() {
                    skip("steps_labels_length_mismatch");
                    continue;
                }
                encode_prm(tok, prompt, &steps, &labels, max_len)?
            }
        };
        match ex {
            Some(e) => out.push(e),
            None => skip("too_long_or_empty"),
        }
    }
    Ok((out, skipped))
}

/// ORM data from a samples file (GRPO `samples-N.jsonl` or eval `samples.jsonl`) of problems
/// `task`, each completion re-graded with the task's strict verifier (label = reward 1).
pub fn examples_from_samples(
    path: &Path,
    task: &dyn mathforge_tasks::Task,
    tok: &Tokenizer,
    max_len: usize,
) -> Result<(Vec<RmExample>, BTreeMap<String, u64>)> {
    if !path.exists() {
        return Err(Error::Data { path: path.into(), line: 0, msg: "file does not exist".into() });
    }
    let by_id: std::collections::HashMap<&str, usize> =
        task.examples().iter().enumerate().map(|(i, e)| (e.id.as_str(), i)).collect();
    let mut out = vec![];
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut skip = |r: &str| *skipped.entry(r.to_string()).or_default() += 1;
    for rec in mathforge_io::jsonl::JsonlReader::open(path)? {
        let Ok(v) = rec.value else {
            skip("invalid_json");
            continue;
        };
        // GRPO rollouts name the example by index, eval samples by id.
        let idx =
            match (v.get("example").and_then(Value::as_u64), v.get("id").and_then(Value::as_str)) {
                (Some(i), _) => Some(i as usize).filter(|&i| i < task.examples().len()),
                (None, Some(id)) => by_id.get(id).copied(),
                _ => None,
            };
        let Some(idx) = idx else {
            skip("unknown_example");
            continue;
        };
        let Some(text) = v.get("text").or_else(|| v.get("response")).and_then(Value::as_str) else {
            skip("missing_text_or_response");
            continue;
        };
        let ex = &task.examples()[idx];
        let label = task.reward(ex, text) >= 1.0;
        match encode_orm(tok, &ex.question, text, label, max_len)? {
            Some(e) => out.push(e),
            None => skip("too_long_or_empty"),
        }
    }
    Ok((out, skipped))
}

/// Binary cross-entropy with logits, averaged with `weights` (1 on scored positions, 0 elsewhere):
/// `sum w * (max(x,0) - x y + log(1 + e^-|x|)) / sum w`. All `[B, T]` f32.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let soft = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let per = ((logits.relu()? - (logits * targets)?)? + soft)?;
    let n = weights.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64;
    Ok(((per * weights)?.sum_all()? / n)?)
}

/// ROC AUC by the Mann-Whitney statistic (ties count one half); `None` without both classes.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Average ranks over ties (1-based).
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    let rsum: f64 = ranks.iter().zip(labels).filter(|(_, &l)| l).map(|(r, _)| r).sum();
    Some((rsum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Padded ids, mask, targets and weights `[B, T]` for a batch of examples.
fn batch(
    exs: &[&RmExample],
    pad: u32,
    device: &Device,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let rows: Vec<Vec<u32>> = exs.iter().map(|e| e.ids.clone()).collect();
    let (ids, mask) = pad_batch(&rows, pad, device)?;
    let t = ids.dim(1)?;
    let mut y = vec![0f32; exs.len() * t];
    let mut w = vec![0f32; exs.len() * t];
    for (b, e) in exs.iter().enumerate() {
        for (&p, &l) in e.positions.iter().zip(&e.labels) {
            y[b * t + p] = l;
            w[b * t + p] = 1.0;
        }
    }
    Ok((
        ids,
        mask,
        Tensor::from_vec(y, (exs.len(), t), device)?,
        Tensor::from_vec(w, (exs.len(), t), device)?,
    ))
}

/// Held-out figures of a reward model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmEval {
    /// Mean BCE over scored positions.
    pub loss: f64,
    /// Fraction of scored positions with (p > 0.5) == label.
    pub accuracy: f64,
    /// ROC AUC (`None` when one class is absent).
    pub auc: Option<f64>,
}

/// Score positions of `exs` with `model` (no gradient) and compare with their labels.
pub fn evaluate(model: &HeadModel, exs: &[RmExample], pad: u32, micro: usize) -> Result<RmEval> {
    let device = model.backbone.device().clone();
    let (mut scores, mut labels, mut loss_sum) = (vec![], vec![], 0.0);
    for chunk in exs.chunks(micro.max(1)) {
        let refs: Vec<&RmExample> = chunk.iter().collect();
        let (ids, mask, y, w) = batch(&refs, pad, &device)?;
        let v = model.forward(&ids, Some(&mask))?.detach();
        let n = w.sum_all()?.to_scalar::<f32>()? as f64;
        loss_sum += bce_with_logits(&v, &y, &w)?.to_scalar::<f32>()? as f64 * n;
        let vv = v.to_vec2::<f32>()?;
        for (b, e) in chunk.iter().enumerate() {
            for (&p, &l) in e.positions.iter().zip(&e.labels) {
                scores.push(vv[b][p] as f64);
                labels.push(l > 0.5);
            }
        }
    }
    let n = scores.len().max(1) as f64;
    let correct = scores.iter().zip(&labels).filter(|(s, l)| (**s > 0.0) == **l).count() as f64;
    Ok(RmEval { loss: loss_sum / n, accuracy: correct / n, auc: auc(&scores, &labels) })
}

/// A trained reward model used as the RL reward (GRPO/PPO `--reward-model DIR`): an ORM scores
/// the last token of a completion, a PRM (GRPO `--supervision process`) each step's last token.
pub struct RewardScorer {
    /// The model.
    pub model: HeadModel,
    /// Outcome or process reward model (`mathforge_head` of its `config.json`).
    pub kind: RmKind,
    pad: u32,
    micro: usize,
}

impl RewardScorer {
    /// Load a reward model folder (written by `mathforge train rm`); `pad` pads batches.
    pub fn load(dir: impl AsRef<Path>, pad: u32, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let kind = match crate::heads::head_kind_of(dir).as_deref() {
            Some("orm") => RmKind::Orm,
            Some("prm") => RmKind::Prm,
            other => {
                return Err(Error::Checkpoint {
                    path: dir.to_path_buf(),
                    msg: format!(
                        "not a reward model (config.json `mathforge_head` is {other:?}; train one with `mathforge train rm`)"
                    ),
                })
            }
        };
        // Inference only: detached weights, so scoring builds no autograd graph.
        let model = HeadModel::load(dir, 0, DType::F32, device)?.detached();
        Ok(RewardScorer { model, kind, pad, micro: 16 })
    }

    /// `sigmoid(score)` at the last token of each `prompt ++ completion`.
    pub fn score(&self, rows: &[(&[u32], &[u32])]) -> Result<Vec<f64>> {
        let last: Vec<Vec<usize>> =
            rows.iter().map(|(_, c)| vec![c.len().saturating_sub(1)]).collect();
        Ok(self.score_at(rows, &last)?.into_iter().map(|v| v[0]).collect())
    }

    /// `sigmoid(score)` of each `prompt ++ completion` at the completion positions `at[i]` (0-based
    /// indices into row i's completion; an empty completion is read at the prompt's last token):
    /// a PRM's step rewards when `at` holds each step's last token.
    pub fn score_at(&self, rows: &[(&[u32], &[u32])], at: &[Vec<usize>]) -> Result<Vec<Vec<f64>>> {
        if rows.len() != at.len() {
            return Err(Error::Msg(format!(
                "score_at: {} rows but {} position lists",
                rows.len(),
                at.len()
            )));
        }
        let device = self.model.backbone.device().clone();
        let mut out = Vec::with_capacity(rows.len());
        for (chunk, pos) in rows.chunks(self.micro).zip(at.chunks(self.micro)) {
            let seqs: Vec<Vec<u32>> = chunk.iter().map(|(p, c)| [*p, *c].concat()).collect();
            let (ids, mask) = pad_batch(&seqs, self.pad, &device)?;
            let v = self.model.forward(&ids, Some(&mask))?.detach().to_vec2::<f32>()?;
            for (((p, _), s), (row, ps)) in chunk.iter().zip(&seqs).zip(v.iter().zip(pos)) {
                let last = s.len().saturating_sub(1);
                out.push(
                    ps.iter()
                        .map(|&j| {
                            let x = row[(p.len() + j).min(last)] as f64;
                            1.0 / (1.0 + (-x).exp())
                        })
                        .collect(),
                );
            }
        }
        Ok(out)
    }
}

/// Replace the rewards of GRPO/PPO rollouts by the reward model's `sigmoid(score)` (the hook
/// `train grpo --reward-model DIR` calls after the verifier has rewarded the groups).
pub fn rescore_rollouts(
    scorer: &RewardScorer,
    groups: &mut [Vec<crate::grpo::Rollout>],
) -> Result<()> {
    let pairs: Vec<(&[u32], &[u32])> = groups
        .iter()
        .flatten()
        .map(|r| (r.prompt_ids.as_slice(), r.completion_ids.as_slice()))
        .collect();
    let scores = scorer.score(&pairs)?;
    for (r, x) in groups.iter_mut().flatten().zip(scores) {
        r.reward = x;
    }
    Ok(())
}

fn open_tokenizer(cfg: &CommonConfig) -> Result<(Tokenizer, Option<PathBuf>)> {
    let p = cfg.tokenizer_path()?;
    let tok =
        if p.is_dir() { Tokenizer::from_dir(&p) } else { Tokenizer::from_file(&p) }.map_err(msg)?;
    let json = if p.is_dir() { p.join("tokenizer.json") } else { p };
    Ok((tok, Some(json).filter(|j| j.exists())))
}

/// Run (or resume) reward-model training. `progress` is called after every step.
pub fn run(
    cfg: &RmConfig,
    git_commit: Option<String>,
    mut progress: impl FnMut(&StepReport),
) -> Result<PathBuf> {
    let c = &cfg.common;
    c.validate()?;
    if !(0.0..1.0).contains(&cfg.heldout_frac) {
        return Err(Error::Config {
            file: "<resolved>".into(),
            msg: "`heldout-frac` must be in [0, 1)".into(),
        });
    }
    let bad = |m: &str| Error::Config { file: "<resolved>".into(), msg: m.into() };
    if cfg.train_file.is_none() && cfg.from_samples.is_none() {
        return Err(bad("`train-file` or `from-samples` is required"));
    }
    if cfg.from_samples.is_some() && cfg.kind != RmKind::Orm {
        return Err(bad("`from-samples` builds outcome labels: use `kind = \"orm\"`"));
    }
    let (tok, tok_json) = open_tokenizer(c)?;
    let dtype = c.dtype()?;
    let spec: mathforge_model::DeviceSpec =
        c.device.parse().map_err(|e: mathforge_model::Error| bad(&e.to_string()))?;
    let device = spec.device().map_err(msg)?;
    // --- data
    let mut data = vec![];
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(f) = &cfg.train_file {
        let (d, s) = load_examples(Path::new(f), &tok, cfg.kind, cfg.max_len)?;
        data.extend(d);
        skipped.extend(s);
    }
    if let Some(f) = &cfg.from_samples {
        let spec = cfg.samples_task.as_deref().ok_or_else(|| {
            bad("`from-samples` needs `samples-task` (the problems the samples answer)")
        })?;
        let task = crate::grpo::open_task(spec)?;
        let (d, s) = examples_from_samples(Path::new(f), task.as_ref(), &tok, cfg.max_len)?;
        data.extend(d);
        for (k, v) in s {
            *skipped.entry(format!("samples_{k}")).or_default() += v;
        }
    }
    if !skipped.is_empty() {
        tracing::warn!(?skipped, "skipped records");
    }
    let heldout = match &cfg.eval_file {
        Some(f) => load_examples(Path::new(f), &tok, cfg.kind, cfg.max_len)?.0,
        None => {
            let mut order: Vec<usize> = (0..data.len()).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(c.seed ^ 0x0004_e1d0_u64));
            let k = (data.len() as f64 * cfg.heldout_frac).ceil() as usize;
            let held: std::collections::HashSet<usize> =
                order[..k.min(data.len())].iter().copied().collect();
            let (h, t): (Vec<_>, Vec<_>) =
                data.into_iter().enumerate().partition(|(i, _)| held.contains(i));
            data = t.into_iter().map(|(_, e)| e).collect();
            h.into_iter().map(|(_, e)| e).collect()
        }
    };
    if data.is_empty() {
        return Err(Error::Data {
            path: cfg.train_file.clone().or(cfg.from_samples.clone()).unwrap_or_default().into(),
            line: 0,
            msg: format!("no usable examples (skipped: {skipped:?})"),
        });
    }
    // --- model, optimizer, resume
    let model_cfg = match (&c.init, &c.model_config) {
        (Some(dir), _) => mathforge_model::Config::from_file(Path::new(dir).join("config.json")),
        (None, Some(f)) => mathforge_model::Config::from_file(f),
        _ => unreachable!("validated"),
    }
    .map_err(msg)?;
    let est = estimate_memory(
        &model_cfg,
        dtype,
        c.micro_batch_size,
        cfg.max_len,
        0,
        c.gradient_checkpointing,
        c.logprob_chunk,
    );
    check_memory(&est, c.max_memory_mib, &device)?;
    let mut model = match &c.init {
        Some(dir) => HeadModel::load(dir, c.seed, dtype, &device)?,
        None => HeadModel::init(&model_cfg, c.seed, dtype, &device)?,
    };
    model.backbone.set_gradient_checkpointing(c.gradient_checkpointing);
    let kind = match cfg.kind {
        RmKind::Orm => HeadKind::Orm,
        RmKind::Prm => HeadKind::Prm,
    };
    let run_dir = PathBuf::from(&c.out);
    std::fs::create_dir_all(&run_dir).map_err(|e| Error::io(&run_dir, e))?;
    crate::config::write_resolved(cfg, &run_dir.join("config.toml"))?;
    let mut opt = AdamW::new(model.named_vars()?, c.adamw())?;
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ 0x5eed_da7a);
    let (mut epoch, mut cursor) = (0u64, 0usize);
    let resume = match checkpoint::latest(&run_dir)? {
        Some(dir) => {
            let meta = checkpoint::restore(&dir, &mut opt, &device)?;
            if meta.stage != "rm" {
                return Err(Error::Checkpoint {
                    path: dir,
                    msg: format!(
                        "is a `{}` checkpoint, this run is `rm`: use another `out`",
                        meta.stage
                    ),
                });
            }
            rng = meta.rng.restore()?;
            epoch = meta.data.get("epoch").and_then(Value::as_u64).unwrap_or(0);
            cursor = meta.data.get("cursor").and_then(Value::as_u64).unwrap_or(0) as usize;
            Some(meta.step)
        }
        None => None,
    };
    let mut log = MetricsLog::open(&run_dir, resume)?;
    let schedule = c.schedule();
    let pad = tok.pad_id();
    let perm = |epoch: u64| {
        let mut o: Vec<usize> = (0..data.len()).collect();
        o.shuffle(&mut ChaCha8Rng::seed_from_u64(
            c.seed.wrapping_add(epoch.wrapping_mul(0x9e37_79b9)),
        ));
        o
    };
    let mut order = perm(epoch);
    let eval_now = |m: &HeadModel, rec: &mut Map<String, Value>| -> Result<()> {
        if heldout.is_empty() {
            return Ok(());
        }
        let e = evaluate(m, &heldout, pad, c.micro_batch_size)?;
        rec.insert("eval_loss".into(), Value::from(e.loss));
        rec.insert("eval_accuracy".into(), Value::from(e.accuracy));
        if let Some(a) = e.auc {
            rec.insert("eval_auc".into(), Value::from(a));
        }
        Ok(())
    };
    let save = |opt: &AdamW,
                rng: &ChaCha8Rng,
                epoch: u64,
                cursor: usize,
                m: &Map<String, Value>|
     -> Result<PathBuf> {
        let meta = Meta {
            stage: "rm".into(),
            step: opt.steps_taken(),
            rng: RngState::capture(rng),
            data: serde_json::json!({"epoch": epoch, "cursor": cursor}),
            config: crate::config::to_json(cfg),
            git_commit: git_commit.clone(),
            metrics: Value::Object(m.clone()),
        };
        let dir = checkpoint::save(&run_dir, &[], opt, &meta, |d| {
            model.save(d, kind, dtype, tok_json.as_deref())
        })?;
        checkpoint::prune(&run_dir, c.keep_checkpoints)?;
        Ok(dir)
    };
    if resume.is_none() {
        let mut m = Map::new();
        m.insert("train_examples".into(), Value::from(data.len()));
        m.insert("heldout_examples".into(), Value::from(heldout.len()));
        eval_now(&model, &mut m)?;
        log.log(0, &m)?;
        progress(&StepReport { step: 0, total: c.steps, metrics: m });
    }
    while opt.steps_taken() < c.steps {
        let step = opt.steps_taken();
        let t0 = std::time::Instant::now();
        let (epoch0, cursor0) = (epoch, cursor);
        let mut picked: Vec<&RmExample> = Vec::with_capacity(c.batch_size);
        while picked.len() < c.batch_size {
            if cursor >= order.len() {
                epoch += 1;
                cursor = 0;
                order = perm(epoch);
            }
            picked.push(&data[order[cursor]]);
            cursor += 1;
        }
        let total: f64 = picked.iter().map(|e| e.positions.len() as f64).sum::<f64>().max(1.0);
        let mut acc = GradAccumulator::new(&opt);
        let (mut loss_sum, mut correct, mut n) = (0.0f64, 0.0f64, 0.0f64);
        let mut fail = None;
        for mb in picked.chunks(c.micro_batch_size) {
            let (ids, mask, y, w) = batch(mb, pad, &device)?;
            let v = model.forward(&ids, Some(&mask))?;
            let loss = bce_with_logits(&v, &y, &w)?;
            let l = match finite_loss(&loss, step) {
                Ok(l) => l,
                Err(e) => {
                    fail = Some(e);
                    break;
                }
            };
            let share = mb.iter().map(|e| e.positions.len() as f64).sum::<f64>() / total;
            loss_sum += l * share;
            let vv = v.detach().to_vec2::<f32>()?;
            for (b, e) in mb.iter().enumerate() {
                for (&p, &lab) in e.positions.iter().zip(&e.labels) {
                    correct += f64::from(u8::from((vv[b][p] > 0.0) == (lab > 0.5)));
                    n += 1.0;
                }
            }
            acc.add(model.backward(&loss)?, share)?;
        }
        let mut grads = acc.take();
        let res = match fail {
            Some(e) => Err(e),
            None => grads.clip(c.max_grad_norm, step),
        };
        let norm = match res {
            Ok(n) => n,
            Err(e @ Error::NonFinite { .. }) => {
                let dir = save(&opt, &rng, epoch0, cursor0, &Map::new())?;
                return Err(Error::Msg(format!(
                    "{e}; stopped. The last good state (step {step}) is saved in {}",
                    dir.display()
                )));
            }
            Err(e) => return Err(e),
        };
        let lr = schedule.lr_at(step);
        opt.step(&grads, lr)?;
        let step = opt.steps_taken();
        let mut m = Map::new();
        m.insert("loss".into(), Value::from(loss_sum));
        m.insert("accuracy".into(), Value::from(correct / n.max(1.0)));
        m.insert("lr".into(), Value::from(lr));
        m.insert("grad_norm".into(), Value::from(norm));
        m.insert("epoch".into(), Value::from(epoch));
        m.insert("step_seconds".into(), Value::from(t0.elapsed().as_secs_f64()));
        let done = step >= c.steps;
        if done || (c.eval_every > 0 && step % c.eval_every == 0) {
            eval_now(&model, &mut m)?;
        }
        log.log(step, &m)?;
        progress(&StepReport { step, total: c.steps, metrics: m.clone() });
        if done || step % c.save_every == 0 {
            save(&opt, &rng, epoch, cursor, &m)?;
        }
    }
    crate::metrics::plot_metrics(log.path(), &run_dir.join("plots"))?;
    Ok(run_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn auc_hand_values() {
        // Positives 0.9, 0.4; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) = 3/4.
        let a = auc(&[0.9, 0.5, 0.4, 0.1], &[true, false, true, false]).unwrap();
        assert!((a - 0.75).abs() < 1e-12);
        // A tie between a positive and a negative counts one half.
        let a = auc(&[0.5, 0.5], &[true, false]).unwrap();
        assert!((a - 0.5).abs() < 1e-12);
        assert_eq!(auc(&[0.1, 0.2], &[true, true]), None);
    }

    /// BCE value and gradient against the closed forms: loss = mean(softplus(x) - x y),
    /// d/dx = (sigmoid(x) - y) / n on scored positions, 0 elsewhere.
    #[test]
    fn bce_value_and_gradient() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(
            &Tensor::new(&[[2.0f32, -1.0, 30.0], [0.5, -40.0, 0.0]], &dev).unwrap(),
        )
        .unwrap();
        let y = Tensor::new(&[[1.0f32, 0.0, 1.0], [0.0, 1.0, 0.0]], &dev).unwrap();
        let w = Tensor::new(&[[1.0f32, 1.0, 1.0], [1.0, 1.0, 0.0]], &dev).unwrap();
        let loss = bce_with_logits(x.as_tensor(), &y, &w).unwrap();
        let sp = |v: f64| (1.0 + v.exp()).ln();
        let want =
            (sp(2.0) - 2.0 + sp(-1.0) + (sp(30.0) - 30.0) + sp(0.5) + (sp(-40.0) + 40.0)) / 5.0;
        let got = loss.to_scalar::<f32>().unwrap() as f64;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        let g = loss.backward().unwrap();
        let g = g.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        assert!((g[0][1] as f64 - sig(-1.0) / 5.0).abs() < 1e-6, "{g:?}");
        assert!((g[1][1] as f64 - (sig(-40.0) - 1.0) / 5.0).abs() < 1e-6, "{g:?}");
        assert_eq!(g[1][2], 0.0);
    }
}
