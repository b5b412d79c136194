//! GRPO's advantages and loss (DeepSeekMath §4.1, equation 3), on plain tensors so the math is
//! tested on its own before any sampler exists.
//!
//! For each question, G outputs `o_1..o_G` are sampled from `pi_old` and rewarded. The objective is
//!
//! ```text
//! J = 1/G sum_i 1/|o_i| sum_t { min(rho_it A_it, clip(rho_it, 1-eps, 1+eps) A_it) - beta D_KL,it }
//! rho_it = pi_theta(o_it | q, o_i<t) / pi_old(o_it | q, o_i<t)
//! D_KL,it = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1          (k3, unbiased, always >= 0)
//! ```
//!
//! and the loss is `-J`. Advantages (§4.1.2 / §4.1.3):
//! * **outcome supervision**: `A_it = (r_i - mean(r)) / std(r)` over the group, for every token;
//! * **process supervision**: each step reward is normalized by the mean/std of *all step rewards
//!   of the group*, and a token's advantage is the sum of the normalized rewards of the steps that
//!   end at or after it.
//!
//! Options the TRL/verl users expect, with the paper's choice as the default:
//! * [`LossAggregation`]: `Paper` (mean over tokens of each sample, then over samples), `TokenMean`
//!   (DAPO: over all tokens of the batch), `DrGrpo` (Dr. GRPO: divide by samples * max length, no
//!   length bias);
//! * [`RewardScaling`]: divide by the group std (paper), by the batch std, or not at all (Dr. GRPO);
//! * `epsilon_high` for clip-higher (DAPO), masking of truncated completions, zero-variance groups
//!   counted (and optionally dropped).
//!
//! Deviation noted: the paper does not say which std; we use the sample std (n-1), as TRL's
//! `GRPOTrainer` does, plus `1e-4` in the denominator so a zero-variance group gives advantages 0.
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, D};
use crate::trainer::pad_batch;
use serde::{Deserialize, Serialize};

/// How per-token losses are averaged into the batch loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LossAggregation {
    /// Equation 3: `1/G sum_i 1/|o_i| sum_t` (sequence mean, then sample mean).
    #[default]
    Paper,
    /// Mean over all completion tokens of the batch (DAPO).
    TokenMean,
    /// Sum over tokens divided by (samples x max completion length) (Dr. GRPO).
    DrGrpo,
}

/// How rewards are normalized into advantages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RewardScaling {
    /// `(r - group mean) / group std` (paper §4.1.2).
    #[default]
    Group,
    /// `(r - group mean) / std of the whole batch` (more robust with small G).
    Batch,
    /// `r - group mean` (Dr. GRPO).
    None,
}

macro_rules! parse_enum {
    ($t:ty, $($s:literal => $v:expr),+) => {
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($s => Ok($v),)+
                    _ => Err(format!("unknown value `{s}` (expected one of: {})", [$($s),+].join(", "))),
                }
            }
        }
    };
}
parse_enum!(LossAggregation, "paper" => LossAggregation::Paper, "token-mean" => LossAggregation::TokenMean, "dr-grpo" => LossAggregation::DrGrpo);
parse_enum!(RewardScaling, "group" => RewardScaling::Group, "batch" => RewardScaling::Batch, "none" => RewardScaling::None);

/// Where the advantages come from (§4.1.2 vs §4.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Supervision {
    /// One reward per completion (verifier or outcome RM), the same advantage on every token.
    #[default]
    Outcome,
    /// A process RM's reward at the end of every reasoning step; per-token advantages.
    Process,
}
parse_enum!(Supervision, "outcome" => Supervision::Outcome, "process" => Supervision::Process);

/// Added to the std before dividing (TRL uses the same value).
pub const STD_EPS: f64 = 1e-4;

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Outcome advantages for `groups` (one reward per sample, G per group). Returns one advantage
/// per sample, in the same order, and the indices of the groups whose rewards all equal (their
/// advantages are 0: they carry no learning signal, only KL).
pub fn outcome_advantages(
    groups: &[Vec<f64>],
    scaling: RewardScaling,
) -> (Vec<Vec<f64>>, Vec<usize>) {
    let batch_std = mean_std(&groups.iter().flatten().copied().collect::<Vec<_>>()).1;
    let mut zero_std = vec![];
    let adv = groups
        .iter()
        .enumerate()
        .map(|(gi, r)| {
            let (mean, std) = mean_std(r);
            if r.iter().all(|x| *x == r[0]) {
                zero_std.push(gi);
            }
            let denom = match scaling {
                RewardScaling::Group => std + STD_EPS,
                RewardScaling::Batch => batch_std + STD_EPS,
                RewardScaling::None => 1.0,
            };
            r.iter().map(|x| (x - mean) / denom).collect()
        })
        .collect();
    (adv, zero_std)
}

/// One reasoning step's reward and the index (0-based, within the completion) of its last token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReward {
    /// Index of the last token of the step in the completion.
    pub end: usize,
    /// Reward of the step (e.g. from a process reward model).
    pub reward: f64,
}

/// Process-supervision advantages (§4.1.3) for one group: `steps[i]` are sample i's steps,
/// `lens[i]` its completion length. Step rewards are normalized over all steps of the group; a
/// token's advantage is the sum of the normalized rewards of the steps ending at or after it.
pub fn process_advantages(
    steps: &[Vec<StepReward>],
    lens: &[usize],
    scaling: RewardScaling,
) -> Vec<Vec<f64>> {
    let all: Vec<f64> = steps.iter().flatten().map(|s| s.reward).collect();
    let (mean, std) = mean_std(&all);
    let denom = match scaling {
        RewardScaling::None => 1.0,
        _ => std + STD_EPS,
    };
    steps
        .iter()
        .zip(lens)
        .map(|(st, &len)| {
            let mut adv = vec![0.0; len];
            for s in st {
                let norm = (s.reward - mean) / denom;
                // Every token up to and including the step's end gets this step's reward.
                for a in adv.iter_mut().take((s.end + 1).min(len)) {
                    *a += norm;
                }
            }
            adv
        })
        .collect()
}

/// Where each reasoning step of a completion ends, as indices into its token ids `ids`. Steps are
/// the non-empty lines of the decoded text (the rule `rm.rs` applies to PRM labels); a step ends
/// at the token that holds its last character, except the last step, which ends at the last
/// token, so EOS and trailing whitespace belong to it and every token gets an advantage. A
/// completion without text is one step. Lines that end in the same token are one step.
pub fn step_ends(tok: &mathforge_model::tokenizer::Tokenizer, ids: &[u32]) -> Result<Vec<usize>> {
    let mut ends = line_ends(tok, ids)?;
    ends.dedup();
    Ok(ends)
}

/// As [`step_ends`] but one entry per non-empty line, even when two lines end in the same token
/// (the rule-based step rewards of a task come one per line). A completion without text gets one
/// entry (its last token); an empty completion none.
pub fn line_ends(tok: &mathforge_model::tokenizer::Tokenizer, ids: &[u32]) -> Result<Vec<usize>> {
    let Some(last) = ids.len().checked_sub(1) else {
        return Ok(vec![]);
    };
    let dec = |ids: &[u32]| tok.decode(ids, true).map_err(|e| Error::Msg(e.to_string()));
    let text = dec(ids)?;
    // Decoded length after each token (a prefix decodes to a prefix of the text).
    let cum: Vec<usize> = (1..=ids.len()).map(|n| Ok(dec(&ids[..n])?.len())).collect::<Result<_>>()?;
    let mut ends = vec![];
    let mut off = 0;
    for line in text.split('\n') {
        if !line.trim().is_empty() {
            let end = off + line.trim_end().len();
            ends.push(cum.iter().position(|&c| c >= end).unwrap_or(last));
        }
        off += line.len() + 1;
    }
    match ends.last_mut() {
        Some(e) => *e = last,
        None => ends.push(last),
    }
    Ok(ends)
}

/// Step ends and step rewards per rollout (`[group][sample]`) into per-token advantages
/// ([`process_advantages`] per group) and the groups whose step rewards all equal.
fn process_from_steps(
    groups: &[Vec<Rollout>],
    mut steps: impl Iterator<Item = (Vec<usize>, Vec<f64>)>,
    scaling: RewardScaling,
) -> Result<(Vec<Vec<Vec<f64>>>, Vec<usize>)> {
    let (mut adv, mut zero_std) = (Vec::with_capacity(groups.len()), vec![]);
    for (gi, g) in groups.iter().enumerate() {
        let mut group_steps = Vec::with_capacity(g.len());
        for _ in g {
            let (e, sc) = steps.next().ok_or_else(|| Error::Msg("process supervision: rows".into()))?;
            group_steps.push(
                e.into_iter().zip(sc).map(|(end, reward)| StepReward { end, reward }).collect::<Vec<_>>(),
            );
        }
        let all: Vec<f64> = group_steps.iter().flatten().map(|s: &StepReward| s.reward).collect();
        if all.iter().all(|x| *x == all[0]) {
            zero_std.push(gi);
        }
        let lens: Vec<usize> = g.iter().map(|r| r.completion_ids.len()).collect();
        adv.push(process_advantages(&group_steps, &lens, scaling));
    }
    Ok((adv, zero_std))
}

/// Process supervision (§4.1.3) for rewarded groups: each completion's steps ([`step_ends`])
/// are scored by the PRM at their last token, and [`process_advantages`] turns each group's step
/// rewards into per-token advantages. Returns them (`[group][sample][token]`) and the groups
/// whose step rewards all equal; each rollout's `reward` becomes its last step's score (what
/// `reward_mean` reports).
pub fn process_supervision(
    scorer: &crate::rm::RewardScorer,
    tok: &mathforge_model::tokenizer::Tokenizer,
    groups: &mut [Vec<Rollout>],
    scaling: RewardScaling,
) -> Result<(Vec<Vec<Vec<f64>>>, Vec<usize>)> {
    let ends: Vec<Vec<usize>> = groups
        .iter()
        .flatten()
        .map(|r| step_ends(tok, &r.completion_ids))
        .collect::<Result<_>>()?;
    let rows: Vec<(&[u32], &[u32])> = groups
        .iter()
        .flatten()
        .map(|r| (r.prompt_ids.as_slice(), r.completion_ids.as_slice()))
        .collect();
    let scores = scorer.score_at(&rows, &ends)?;
    for (r, sc) in groups.iter_mut().flatten().zip(&scores) {
        r.reward = sc.last().copied().unwrap_or(0.0);
    }
    process_from_steps(groups, ends.into_iter().zip(scores), scaling)
}

/// Process supervision (§4.1.3) with the task's rule-based step rewards
/// ([`mathforge_tasks::Task::step_rewards`]) instead of a PRM: one step per non-empty line
/// ([`line_ends`]), rewarded by the task; a completion without any line is one step with reward
/// 0. Rollout rewards stay the outcome reward (so `reward_mean` is still answer accuracy).
pub fn rule_process_supervision(
    task: &dyn mathforge_tasks::Task,
    tok: &mathforge_model::tokenizer::Tokenizer,
    groups: &[Vec<Rollout>],
    scaling: RewardScaling,
) -> Result<(Vec<Vec<Vec<f64>>>, Vec<usize>)> {
    let mut steps = Vec::with_capacity(groups.iter().map(Vec::len).sum());
    for r in groups.iter().flatten() {
        let ends = line_ends(tok, &r.completion_ids)?;
        let text = tok.decode(&r.completion_ids, true).map_err(|e| Error::Msg(e.to_string()))?;
        let ex = task.examples().get(r.example).ok_or_else(|| {
            Error::Msg(format!("rollout of question {} outside the task", r.example))
        })?;
        let rewards = task.step_rewards(ex, &text).ok_or_else(|| Error::Config {
            file: "<resolved>".into(),
            msg: format!("task `{}` has no rule-based step rewards", task.name()),
        })?;
        let mut ends = ends;
        let rewards: Vec<f64> = match (rewards.len(), ends.len()) {
            (_, 0) => vec![], // no completion token, nothing to attach a step to
            (0, n) => vec![0.0; n],
            (a, b) if a == b => rewards.into_iter().map(f64::from).collect(),
            // Steps the completion never reached (the task scores them, arith as 0): they end at
            // its last token, so every token's advantage includes them.
            (a, b) if a > b && b > 0 => {
                ends.resize(a, ends[b - 1]);
                rewards.into_iter().map(f64::from).collect()
            }
            (a, b) => {
                return Err(Error::Msg(format!(
                    "task `{}` gave {a} step rewards for a completion with {b} steps",
                    task.name()
                )))
            }
        };
        steps.push((ends, rewards));
    }
    process_from_steps(groups, steps.into_iter(), scaling)
}

/// Hyper-parameters of the clipped surrogate with KL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    /// Lower clip range `eps` (paper: 0.2 as in PPO).
    pub epsilon: f64,
    /// Upper clip range (clip-higher); `None` uses `epsilon`.
    pub epsilon_high: Option<f64>,
    /// KL coefficient (paper §4.2: 0.04).
    pub beta: f64,
    /// Averaging over tokens and samples.
    pub aggregation: LossAggregation,
    /// Max completion length (the Dr. GRPO denominator).
    pub max_completion_len: usize,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            epsilon: 0.2,
            epsilon_high: None,
            beta: 0.04,
            aggregation: LossAggregation::Paper,
            max_completion_len: 1024,
        }
    }
}

/// The loss and its diagnostics.
pub struct PolicyLoss {
    /// Scalar loss `-J` (differentiable through `logp`).
    pub loss: Tensor,
    /// Mean k3 KL over completion tokens.
    pub kl: f64,
    /// Fraction of completion tokens where the clip was active.
    pub clip_frac: f64,
    /// Completion tokens counted.
    pub tokens: f64,
}

/// GRPO loss from per-token log-probs, all `[B, T]` f32 over completion positions:
/// `logp` (current policy, differentiable), `old_logp` (pi_old, detached; equal to `logp` on
/// the first update of an exploration stage so the ratio is 1 but the gradient flows), `ref_logp`
/// (reference model; ignored when beta is 0), `adv` (per-token advantages) and `mask` (1 on
/// completion tokens that count, 0 on padding and masked truncated completions).
pub fn policy_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    ref_logp: Option<&Tensor>,
    adv: &Tensor,
    mask: &Tensor,
    cfg: &LossConfig,
) -> Result<PolicyLoss> {
    let dims = logp.dims2()?;
    for (name, t) in [("old_logp", old_logp), ("adv", adv), ("mask", mask)] {
        if t.dims() != [dims.0, dims.1] {
            return Err(Error::Msg(format!(
                "policy_loss: `{name}` has shape {:?}, expected {:?}",
                t.dims(),
                dims
            )));
        }
    }
    let ratio = (logp - old_logp.detach())?.exp()?;
    let lo = 1.0 - cfg.epsilon;
    let hi = 1.0 + cfg.epsilon_high.unwrap_or(cfg.epsilon);
    let surr1 = (&ratio * adv)?;
    let surr2 = (ratio.clamp(lo, hi)? * adv)?;
    let mut obj = surr1.minimum(&surr2)?;
    let mut kl_mean = 0.0;
    let tokens = mask.sum_all()?.to_scalar::<f32>()? as f64;
    if cfg.beta != 0.0 {
        let r =
            ref_logp.ok_or_else(|| Error::Msg("policy_loss: beta > 0 needs ref_logp".into()))?;
        let d = (r.detach() - logp)?;
        let kl = ((d.exp()? - &d)? - 1.0)?;
        kl_mean = (&kl * mask)?.sum_all()?.to_scalar::<f32>()? as f64 / tokens.max(1.0);
        obj = (obj - (kl * cfg.beta)?)?;
    }
    let per_token = (obj.neg()? * mask)?;
    let loss = match cfg.aggregation {
        LossAggregation::Paper => {
            let len = mask.sum(D::Minus1)?.clamp(1.0, f64::MAX)?;
            let per_seq = (per_token.sum(D::Minus1)? / len)?;
            // Fully masked rows (truncated and masked) do not dilute the mean.
            let live = mask.max(D::Minus1)?.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64;
            (per_seq.sum_all()? / live)?
        }
        LossAggregation::TokenMean => (per_token.sum_all()? / tokens.max(1.0))?,
        LossAggregation::DrGrpo => {
            (per_token.sum_all()? / (dims.0 * cfg.max_completion_len.max(1)) as f64)?
        }
    };
    let clipped = {
        let adv_pos = adv.gt(0.0)?.to_dtype(DType::F32)?;
        let adv_neg = adv.lt(0.0)?.to_dtype(DType::F32)?;
        let above = (ratio.gt(hi)?.to_dtype(DType::F32)? * adv_pos)?;
        let below = (ratio.lt(lo)?.to_dtype(DType::F32)? * adv_neg)?;
        ((above + below)? * mask)?.sum_all()?.to_scalar::<f32>()? as f64
    };
    Ok(PolicyLoss { loss, kl: kl_mean, clip_frac: clipped / tokens.max(1.0), tokens })
}

// ---------------------------------------------------------------------------------------------
// The trainer: rollouts from pi_old, rewards from the strict verifier, mu updates per stage.

/// `mathforge train grpo` settings (keys = long flags). Paper values (§4.2) are noted; the
/// defaults are for small models (the paper's 7B used lr 1e-6, G 64, 1024 questions x 64 per
/// step, max length 1024).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct GrpoConfig {
    /// Settings shared by all trainers.
    #[serde(flatten)]
    pub common: crate::trainer::CommonConfig,
    /// Training problems: `arith:split=train,steps=2,n=2000` or a benchmark JSONL file.
    pub train_data: String,
    /// Held-out problems for greedy accuracy: same syntax.
    pub eval_data: Option<String>,
    /// Samples per question G (paper: 64).
    pub group_size: usize,
    /// Questions per exploration stage.
    pub questions_per_step: usize,
    /// Policy updates per exploration stage mu (paper: 1).
    pub mu: usize,
    /// Clip range (PPO's 0.2).
    pub epsilon: f64,
    /// Upper clip range for clip-higher (unset: `epsilon`).
    pub epsilon_high: Option<f64>,
    /// KL coefficient (paper: 0.04; 0 drops the reference model).
    pub beta: f64,
    /// paper, token-mean or dr-grpo.
    pub loss_aggregation: LossAggregation,
    /// group, batch or none.
    pub reward_scaling: RewardScaling,
    /// Exclude completions that hit `max-completion-len` from the loss.
    pub mask_truncated: bool,
    /// Drop groups whose rewards are all equal (they only carry KL).
    pub skip_zero_variance: bool,
    /// Rollout temperature. The old, current and reference log-probs are scored under the same
    /// tempered distribution `softmax(logits / temperature)` (as TRL and verl do), so the ratio
    /// and the KL describe the policy the samples came from.
    pub temperature: f32,
    /// Rollout nucleus threshold.
    pub top_p: f32,
    /// Longest completion (paper: 1024).
    pub max_completion_len: usize,
    /// Reset the reference model to the current policy every N steps (0: never; `iterations`
    /// sets this period for the paper's iterative GRPO).
    pub ref_reset_every: u64,
    /// Iterative GRPO (§4.1.4): split `steps` into this many iterations; each new iteration
    /// resets the reference to the current policy and, with a `reward-model`, first retrains
    /// the RM on the previous iteration's samples (labelled by the verifier) plus a replay of
    /// older ones. 1: plain GRPO.
    pub iterations: u64,
    /// Reward-model training steps per iteration (iterative GRPO with a `reward-model`).
    pub rm_steps: u64,
    /// Fraction of the older iterations' RM data replayed with the new samples (paper: 10%).
    pub rm_replay: f64,
    /// Held-out questions for the greedy accuracy.
    pub eval_questions: usize,
    /// Wall-clock budget in minutes for the exploration/update stages (held-out evaluations not
    /// counted; 0: no limit). A stage starts only if, taking as long as the previous one, it ends
    /// within the budget; otherwise the run stops, evaluates,
    /// saves and returns, so "GRPO for at most N minutes" holds under any machine load. The time
    /// used is kept in the checkpoints, so a resumed run continues the same budget.
    pub max_minutes: f64,
    /// Outcome reward model folder (`mathforge train rm`) whose `sigmoid(score)` replaces the
    /// verifier's 0/1 reward; `accuracy` still counts verifier-correct samples.
    pub reward_model: Option<String>,
    /// outcome (one advantage per completion) or process (a process RM in `reward-model` scores
    /// every step; per-token advantages, §4.1.3).
    pub supervision: Supervision,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        GrpoConfig {
            common: crate::paradigm::rl_common(),
            train_data: "arith:split=train,steps=2,n=2000".into(),
            eval_data: Some("arith:split=heldout,steps=2,n=200".into()),
            group_size: 8,
            questions_per_step: 8,
            mu: 1,
            epsilon: 0.2,
            epsilon_high: None,
            beta: 0.04,
            loss_aggregation: LossAggregation::Paper,
            reward_scaling: RewardScaling::Group,
            mask_truncated: false,
            skip_zero_variance: false,
            temperature: 1.0,
            top_p: 1.0,
            max_completion_len: 128,
            ref_reset_every: 0,
            iterations: 1,
            rm_steps: 20,
            rm_replay: 0.1,
            eval_questions: 100,
            max_minutes: 0.0,
            reward_model: None,
            supervision: Supervision::Outcome,
        }
    }
}

/// Open a problem source: an `arith:` spec or a benchmark file.
pub fn open_task(spec: &str) -> Result<Box<dyn mathforge_tasks::Task>> {
    if let Some((cfg, split, n)) =
        mathforge_tasks::arith::parse_spec(spec).map_err(|e| Error::Msg(e.to_string()))?
    {
        return Ok(Box::new(
            mathforge_tasks::arith::ArithTask::new(&cfg, split, n)
                .map_err(|e| Error::Msg(e.to_string()))?,
        ));
    }
    let t = mathforge_tasks::task::BenchTask::open(std::path::Path::new(spec), None, true)
        .map_err(|e| Error::Msg(format!("problems `{spec}`: {e}")))?;
    Ok(Box::new(t))
}

/// One sampled completion with its reward.
#[derive(Debug, Clone, Serialize)]
pub struct Rollout {
    /// Question index in the task.
    pub example: usize,
    /// Prompt token ids.
    #[serde(skip)]
    pub prompt_ids: Vec<u32>,
    /// Completion token ids.
    #[serde(skip)]
    pub completion_ids: Vec<u32>,
    /// Completion text.
    pub text: String,
    /// Reward (strict verifier: 1 correct, 0 not).
    pub reward: f64,
    /// Hit the length limit.
    pub truncated: bool,
}

/// Greedy accuracy of `model` on the first `n` examples of `task` (strict reward = correct).
pub fn greedy_accuracy(
    model: &mathforge_model::Llama,
    tok: &mathforge_model::tokenizer::Tokenizer,
    task: &dyn mathforge_tasks::Task,
    n: usize,
    max_new_tokens: usize,
) -> Result<f64> {
    let exs = &task.examples()[..n.min(task.examples().len())];
    if exs.is_empty() {
        return Ok(0.0);
    }
    let prompts = exs
        .iter()
        .map(|e| tok.encode(&mathforge_model::chat::prompt(&e.question), true))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Msg(e.to_string()))?;
    let params = mathforge_model::sampling::SamplingParams {
        temperature: 0.0,
        max_new_tokens,
        n: 1,
        ..Default::default()
    };
    let opts = mathforge_model::generate::GenerateOptions { max_batch: 64, ..Default::default() };
    let (out, _) =
        mathforge_model::generate::generate(model, tok, &prompts, &params, &opts, |_| {})
            .map_err(|e| Error::Msg(e.to_string()))?;
    let correct: f64 = out.iter().zip(exs).map(|(c, e)| task.reward(e, &c[0].text) as f64).sum();
    Ok(correct / exs.len() as f64)
}

/// A frozen copy of the current weights (the reference model).
fn frozen_copy(tr: &crate::trainer::Trainer) -> Result<mathforge_model::Llama> {
    crate::heads::frozen_llama(&tr.model, &tr.varmap, &tr.device)
}

/// The step at which the reference in force after `step` steps was taken: the last multiple of
/// `every` (iterative GRPO's reset period), 0 (the initial policy) when `every` is 0.
pub fn reference_step(step: u64, every: u64) -> u64 {
    if every == 0 {
        0
    } else {
        step / every * every
    }
}

/// Where the reference taken at step `step` is kept (`<run>/reference/step-N/`, HF layout).
pub fn reference_dir(run_dir: &std::path::Path, step: u64) -> std::path::PathBuf {
    run_dir.join("reference").join(format!("step-{step}"))
}

/// The reference policy of a run that has done `tr.step()` steps, whatever it resumed from: the
/// initial model (`init`, or the seeded `model-config` init) before the first reset; the current
/// weights when the last reset was at this very step (the reset precedes the save); otherwise the
/// copy written at that reset. Never the resumed weights by accident (the bug this replaced).
fn load_reference(tr: &crate::trainer::Trainer, every: u64) -> Result<mathforge_model::Llama> {
    let r = reference_step(tr.step(), every);
    if r == 0 {
        return crate::paradigm::initial_model(&tr.cfg, &tr.device);
    }
    if r == tr.step() {
        return frozen_copy(tr);
    }
    let dir = reference_dir(&tr.run_dir, r);
    mathforge_model::checkpoint::load(&dir, tr.cfg.dtype()?, &tr.device).map_err(|e| {
        Error::Checkpoint {
            path: dir.clone(),
            msg: format!(
                "the run resumes at step {} inside the iteration that began at step {r}, whose reference is unreadable: {e}",
                tr.step()
            ),
        }
    })
}

/// Write the reference just taken at step `tr.step()` (temp folder + rename) and keep the newest
/// two (the newest checkpoint's iteration is one of them even if a run died between the two
/// writes).
fn save_reference(tr: &crate::trainer::Trainer, reference: &mathforge_model::Llama) -> Result<()> {
    let dir = reference_dir(&tr.run_dir, tr.step());
    let parent = tr.run_dir.join("reference");
    let tmp = parent.join(format!(".tmp-step-{}", tr.step()));
    let _ = std::fs::remove_dir_all(&tmp);
    let opts = mathforge_model::checkpoint::SaveOptions { dtype: tr.cfg.dtype()?, max_shard_bytes: None };
    mathforge_model::checkpoint::save(reference, &tmp, &opts)
        .map_err(|e| Error::Msg(format!("saving the reference: {e}")))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
    let mut steps: Vec<u64> = std::fs::read_dir(&parent)
        .map_err(|e| Error::io(&parent, e))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
        .collect();
    steps.sort_unstable();
    for s in steps.iter().rev().skip(2) {
        let _ = std::fs::remove_dir_all(reference_dir(&tr.run_dir, *s));
    }
    Ok(())
}

/// The completion block `[B, Tc]` (padded with 0) of a per-position tensor `full [B, T']`, where
/// column `p - 1 + t` belongs to completion token `t` of a row with `p` prompt tokens; plus the mask.
pub(crate) fn completion_block(full: &Tensor, rows: &[&Rollout], device: &Device) -> Result<(Tensor, Tensor)> {
    let tc = rows.iter().map(|r| r.completion_ids.len()).max().unwrap_or(0).max(1);
    let mut parts = Vec::with_capacity(rows.len());
    let mut mask = vec![0f32; rows.len() * tc];
    for (b, r) in rows.iter().enumerate() {
        let (p, c) = (r.prompt_ids.len(), r.completion_ids.len());
        let row = full.narrow(0, b, 1)?.narrow(1, p - 1, c)?;
        parts.push(if c < tc { row.pad_with_zeros(1, 0, tc - c)? } else { row });
        mask[b * tc..b * tc + c].iter_mut().for_each(|m| *m = 1.0);
    }
    Ok((Tensor::cat(&parts, 0)?, Tensor::from_vec(mask, (rows.len(), tc), device)?))
}

pub(crate) fn padded(rows: &[&Rollout], pad: u32, device: &Device) -> Result<(Tensor, Tensor)> {
    let seqs: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| [r.prompt_ids.as_slice(), r.completion_ids.as_slice()].concat())
        .collect();
    pad_batch(&seqs, pad, device)
}

/// The distinct prompts of `rows` in first-seen order, and each row's index into them (the
/// rows of a GRPO group share one).
fn distinct_prompts<'a>(rows: &[&'a Rollout]) -> (Vec<&'a [u32]>, Vec<usize>) {
    let mut prompts: Vec<&[u32]> = vec![];
    let which = rows
        .iter()
        .map(|r| {
            let p = r.prompt_ids.as_slice();
            prompts.iter().position(|q| *q == p).unwrap_or_else(|| {
                prompts.push(p);
                prompts.len() - 1
            })
        })
        .collect();
    (prompts, which)
}

/// Per-token log-probs `[B, Tc]` of the completions of `rows` under `model` at the rollout
/// `temperature` (the tempered policy the sampler drew from), and their mask; one forward pass
/// per call. Rows with the same prompt (a GRPO group) share one forward of that prompt
/// ([`Llama::forward_hidden_shared_prefix`](mathforge_model::Llama::forward_hidden_shared_prefix)):
/// with G samples per question the prompt tokens cost 1/G of a padded batch's. With gradient
/// checkpointing on, or when no prompt repeats, the rows run as prompt + completion sequences.
pub fn completion_logprobs(
    model: &mathforge_model::Llama,
    rows: &[&Rollout],
    pad: u32,
    chunk: usize,
    temperature: f32,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let (prompts, which) = distinct_prompts(rows);
    let all_nonempty = rows.iter().all(|r| !r.prompt_ids.is_empty() && !r.completion_ids.is_empty());
    if prompts.len() < rows.len() && all_nonempty && !model.gradient_checkpointing() {
        return shared_prompt_logprobs(model, rows, &prompts, &which, pad, chunk, temperature, device);
    }
    padded_completion_logprobs(model, rows, pad, chunk, temperature, device)
}

/// [`completion_logprobs`] (values only, zero past each completion's end) from the fast CPU
/// decoder: no autograd, each distinct prompt prefilled once.
pub fn fast_completion_logprobs(
    fast: &mathforge_model::decode::FastDecoder,
    rows: &[&Rollout],
    temperature: f32,
    device: &Device,
) -> Result<Tensor> {
    let (prompts, which) = distinct_prompts(rows);
    let jobs: Vec<(usize, &[u32])> =
        which.iter().zip(rows).map(|(&i, r)| (i, r.completion_ids.as_slice())).collect();
    let lps = fast.score(&prompts, &jobs, temperature).map_err(|e| Error::Msg(e.to_string()))?;
    let tc = rows.iter().map(|r| r.completion_ids.len()).max().unwrap_or(0).max(1);
    let mut out = vec![0f32; rows.len() * tc];
    for (b, l) in lps.iter().enumerate() {
        out[b * tc..b * tc + l.len()].copy_from_slice(l);
    }
    Ok(Tensor::from_vec(out, (rows.len(), tc), device)?)
}

/// [`completion_logprobs`] without prompt sharing: each row is its prompt + completion,
/// right-padded (public so tests can hold the two paths against each other).
pub fn padded_completion_logprobs(
    model: &mathforge_model::Llama,
    rows: &[&Rollout],
    pad: u32,
    chunk: usize,
    temperature: f32,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let (ids, am) = padded(rows, pad, device)?;
    let t = ids.dim(1)?;
    let hidden = model
        .forward_hidden(&ids.narrow(1, 0, t - 1)?, Some(&am.narrow(1, 0, t - 1)?))
        .map_err(|e| Error::Msg(e.to_string()))?;
    let lp = mathforge_model::logprob::tempered_logprobs_from_hidden(
        model,
        &hidden,
        &ids.narrow(1, 1, t - 1)?,
        chunk,
        temperature as f64,
    )
    .map_err(|e| Error::Msg(e.to_string()))?
    .to_dtype(DType::F32)?;
    completion_block(&lp, rows, device)
}

/// [`completion_logprobs`] with each distinct prompt run once: prompts left-padded, completions
/// (minus their last token, which predicts nothing) right-padded after them. Completion token 0
/// is scored from its prompt's last hidden state, token `t > 0` from suffix position `t - 1`.
#[allow(clippy::too_many_arguments)]
fn shared_prompt_logprobs(
    model: &mathforge_model::Llama,
    rows: &[&Rollout],
    prompts: &[&[u32]],
    which: &[usize],
    pad: u32,
    chunk: usize,
    temperature: f32,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let msg = |e: mathforge_model::Error| Error::Msg(e.to_string());
    let tp = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
    let (mut pids, mut pmask) = (Vec::with_capacity(prompts.len() * tp), Vec::with_capacity(prompts.len() * tp));
    for p in prompts {
        pids.extend(std::iter::repeat_n(pad, tp - p.len()).chain(p.iter().copied()));
        pmask.extend(std::iter::repeat_n(0f32, tp - p.len()).chain(std::iter::repeat_n(1f32, p.len())));
    }
    let pids = Tensor::from_vec(pids, (prompts.len(), tp), device)?;
    let pmask = Tensor::from_vec(pmask, (prompts.len(), tp), device)?;
    let suffixes: Vec<Vec<u32>> =
        rows.iter().map(|r| r.completion_ids[..r.completion_ids.len() - 1].to_vec()).collect();
    let (sids, smask) = pad_batch(&suffixes, pad, device)?;
    let (hp, hs) =
        model.forward_hidden_shared_prefix(&pids, &pmask, which, &sids, &smask).map_err(msg)?;
    let idx = Tensor::from_vec(which.iter().map(|&w| w as u32).collect::<Vec<_>>(), rows.len(), device)?;
    let first = hp.narrow(1, tp - 1, 1)?.contiguous()?.index_select(&idx, 0)?;
    let hidden = match hs {
        Some(hs) => Tensor::cat(&[&first, &hs], 1)?,
        None => first,
    };
    let tc = hidden.dim(1)?;
    let mut targets = vec![0u32; rows.len() * tc];
    let mut mask = vec![0f32; rows.len() * tc];
    for (b, r) in rows.iter().enumerate() {
        targets[b * tc..b * tc + r.completion_ids.len()].copy_from_slice(&r.completion_ids);
        mask[b * tc..b * tc + r.completion_ids.len()].iter_mut().for_each(|m| *m = 1.0);
    }
    let targets = Tensor::from_vec(targets, (rows.len(), tc), device)?;
    let lp = mathforge_model::logprob::tempered_logprobs_from_hidden(
        model,
        &hidden,
        &targets,
        chunk,
        temperature as f64,
    )
    .map_err(msg)?
    .to_dtype(DType::F32)?;
    // Zero past each completion's end, like the padded path.
    let mask = Tensor::from_vec(mask, (rows.len(), tc), device)?;
    Ok(((lp * &mask)?, mask))
}

/// The frozen reference policy: the fast CPU decoder's snapshot when it applies (f32 on the
/// CPU; the candle model is dropped, so the reference is held once), else the model itself.
enum Reference {
    Fast(mathforge_model::decode::FastDecoder),
    Model(mathforge_model::Llama),
}

impl Reference {
    fn new(model: mathforge_model::Llama) -> Result<Reference> {
        Ok(match mathforge_model::decode::FastDecoder::new(&model).map_err(|e| Error::Msg(e.to_string()))? {
            Some(f) => Reference::Fast(f),
            None => Reference::Model(model),
        })
    }
}

/// Run (or resume) GRPO. `progress` is called after every optimizer step.
pub fn run(
    cfg: &GrpoConfig,
    git_commit: Option<String>,
    mut progress: impl FnMut(&crate::trainer::StepReport),
) -> Result<std::path::PathBuf> {
    use crate::trainer::{MicroLoss, StepReport, Trainer};
    use rand::Rng;
    use serde_json::{Map, Value};
    if cfg.group_size < 2 {
        return Err(Error::Config {
            file: "<resolved>".into(),
            msg: "`group-size` must be >= 2".into(),
        });
    }
    if cfg.mu == 0 || cfg.questions_per_step == 0 {
        return Err(Error::Config {
            file: "<resolved>".into(),
            msg: "`mu` and `questions-per-step` must be >= 1".into(),
        });
    }
    let tok_path = cfg.common.tokenizer_path()?;
    let tok = if tok_path.is_dir() {
        mathforge_model::tokenizer::Tokenizer::from_dir(&tok_path)
    } else {
        mathforge_model::tokenizer::Tokenizer::from_file(&tok_path)
    }
    .map_err(|e| Error::Msg(e.to_string()))?;
    let train = open_task(&cfg.train_data)?;
    if train.examples().is_empty() {
        return Err(Error::Config {
            file: "<resolved>".into(),
            msg: format!("`train-data` {} has no problems", cfg.train_data),
        });
    }
    let eval = cfg.eval_data.as_deref().map(open_task).transpose()?;
    // Reference-reset period; with `iterations` > 1 and a reward model, each reset also
    // retrains the RM (iterative GRPO, `iterative.rs`).
    let period = crate::iterative::period(cfg)?;
    let retrain_rm = cfg.iterations > 1 && cfg.reward_model.is_some();
    let frozen = usize::from(cfg.beta != 0.0) + usize::from(cfg.reward_model.is_some());
    let seq = 64 + cfg.max_completion_len;
    let mut tr = Trainer::open(
        "grpo",
        &cfg.common,
        crate::config::to_json(cfg),
        &crate::config::to_toml(cfg)?,
        seq,
        frozen,
        git_commit.clone(),
    )?;
    let mut reference =
        if cfg.beta != 0.0 { Some(Reference::new(load_reference(&tr, period)?)?) } else { None };
    let mut scorer = match &cfg.reward_model {
        Some(d) => Some(crate::rm::RewardScorer::load(d, tok.pad_id(), &tr.device)?),
        None => None,
    };
    let rm_kind = scorer.as_ref().map(|s| s.kind).unwrap_or_default();
    // A resumed iterative run scores with its own iteration's RM (retrained here if the run
    // died before that RM was finished).
    let iteration = crate::iterative::iteration_of(tr.step(), period, cfg.iterations);
    if retrain_rm && iteration > 0 {
        let dir = crate::iterative::reward_model_dir(
            cfg,
            &tr.run_dir,
            iteration,
            period,
            rm_kind,
            git_commit.clone(),
        )?;
        scorer = Some(crate::rm::RewardScorer::load(dir, tok.pad_id(), &tr.device)?);
    }
    let rule_steps = scorer.is_none()
        && train.step_rewards(&train.examples()[0], "").is_some();
    if cfg.supervision == Supervision::Process
        && scorer.as_ref().map(|s| s.kind) != Some(crate::rm::RmKind::Prm)
        && !rule_steps
    {
        return Err(Error::Config {
            file: "<resolved>".into(),
            msg: "`supervision = process` needs a process reward model in `reward-model` \
                  (`mathforge train rm --kind prm`), or `train-data` whose task has rule-based \
                  step rewards (`arith:...`)"
                .into(),
        });
    }
    let mut samples = mathforge_io::jsonl::JsonlWriter::create(
        tr.run_dir.join(format!("samples-{}.jsonl", tr.step())),
    )?;
    let (pad, chunk, mb) = (tok.pad_id(), tr.cfg.logprob_chunk, tr.cfg.micro_batch_size);
    let loss_cfg = LossConfig {
        epsilon: cfg.epsilon,
        epsilon_high: cfg.epsilon_high,
        beta: cfg.beta,
        aggregation: cfg.loss_aggregation,
        max_completion_len: cfg.max_completion_len,
    };
    let eval_now = |tr: &Trainer| -> Result<Option<f64>> {
        match &eval {
            Some(t) => Ok(Some(greedy_accuracy(
                &tr.model,
                &tok,
                t.as_ref(),
                cfg.eval_questions,
                cfg.max_completion_len,
            )?)),
            None => Ok(None),
        }
    };
    // Training seconds of this and earlier runs of this folder (restored from the checkpoint).
    let mut budget = crate::paradigm::Budget::new(cfg.max_minutes, &tr);
    if tr.step() == 0 {
        if let Some(acc) = eval_now(&tr)? {
            let mut m = Map::new();
            m.insert("eval_greedy_acc".into(), Value::from(acc));
            tr.log(&m)?;
            progress(&StepReport { step: 0, total: cfg.common.steps, metrics: m });
        }
    }
    while !tr.done() {
        if !budget.fits_next_stage() {
            break;
        }
        let stage_start = std::time::Instant::now();
        // --- exploration: G samples per question from pi_old (the current policy).
        let n_ex = train.examples().len();
        let qs: Vec<usize> =
            (0..cfg.questions_per_step).map(|_| tr.rng.gen_range(0..n_ex)).collect();
        let prompts = qs
            .iter()
            .map(|&i| {
                tok.encode(&mathforge_model::chat::prompt(&train.examples()[i].question), true)
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Msg(e.to_string()))?;
        let params = mathforge_model::sampling::SamplingParams {
            temperature: cfg.temperature,
            top_p: cfg.top_p,
            max_new_tokens: cfg.max_completion_len,
            n: cfg.group_size,
            seed: tr.rng.gen(),
            ..Default::default()
        };
        let opts =
            mathforge_model::generate::GenerateOptions { max_batch: 256, ..Default::default() };
        let (groups, gstats) =
            mathforge_model::generate::generate(&tr.model, &tok, &prompts, &params, &opts, |_| {})
                .map_err(|e| Error::Msg(e.to_string()))?;
        let gen_s = stage_start.elapsed().as_secs_f64();
        // --- reward: the strict verifier through the task.
        let t_reward = std::time::Instant::now();
        let mut rollouts: Vec<Vec<Rollout>> = Vec::with_capacity(groups.len());
        for ((g, &qi), prompt) in groups.iter().zip(&qs).zip(&prompts) {
            let ex = &train.examples()[qi];
            rollouts.push(
                g.iter()
                    .map(|c| Rollout {
                        example: qi,
                        prompt_ids: prompt.clone(),
                        completion_ids: c.token_ids.clone(),
                        text: c.text.clone(),
                        reward: train.reward(ex, &c.text) as f64,
                        truncated: c.finish_reason
                            == mathforge_model::sampling::FinishReason::Length,
                    })
                    .collect(),
            );
        }
        let verified = rollouts.iter().flatten().filter(|r| r.reward >= 1.0).count() as f64;
        if retrain_rm {
            let correct: Vec<Vec<bool>> =
                rollouts.iter().map(|g| g.iter().map(|r| r.reward >= 1.0).collect()).collect();
            crate::iterative::write_step_rollouts(
                &tr.run_dir,
                tr.step(),
                train.as_ref(),
                &rollouts,
                &correct,
            )?;
        }
        // Per-token advantages, `[group][sample][token]`.
        let (adv, zero_std): (Vec<Vec<Vec<f64>>>, Vec<usize>) = match (&scorer, cfg.supervision) {
            (Some(s), Supervision::Process) => {
                process_supervision(s, &tok, &mut rollouts, cfg.reward_scaling)?
            }
            (None, Supervision::Process) => {
                rule_process_supervision(train.as_ref(), &tok, &rollouts, cfg.reward_scaling)?
            }
            (s, _) => {
                if let Some(s) = s {
                    crate::rm::rescore_rollouts(s, &mut rollouts)?;
                }
                let rewards: Vec<Vec<f64>> =
                    rollouts.iter().map(|g| g.iter().map(|r| r.reward).collect()).collect();
                let (adv, zero_std) = outcome_advantages(&rewards, cfg.reward_scaling);
                let adv = adv
                    .iter()
                    .zip(&rollouts)
                    .map(|(a, g)| {
                        a.iter().zip(g).map(|(a, r)| vec![*a; r.completion_ids.len()]).collect()
                    })
                    .collect();
                (adv, zero_std)
            }
        };
        let rewards: Vec<Vec<f64>> =
            rollouts.iter().map(|g| g.iter().map(|r| r.reward).collect()).collect();
        let reward_s = t_reward.elapsed().as_secs_f64();
        for g in &rollouts {
            for r in g {
                samples.write(&serde_json::json!({"step": tr.step(), "example": r.example, "text": r.text, "reward": r.reward, "truncated": r.truncated}))?;
            }
        }
        // Flatten into the training batch (dropping zero-variance groups when asked, and empty
        // completions, which have no token to train on).
        let mut rows: Vec<(&Rollout, &[f64])> = vec![];
        for (gi, g) in rollouts.iter().enumerate() {
            if cfg.skip_zero_variance && zero_std.contains(&gi) {
                continue;
            }
            for (r, a) in g.iter().zip(&adv[gi]) {
                if !r.completion_ids.is_empty() {
                    rows.push((r, a.as_slice()));
                }
            }
        }
        let all: Vec<&Rollout> = rollouts.iter().flatten().collect();
        let n_all = all.len() as f64;
        let lens: Vec<f64> = all.iter().map(|r| r.completion_ids.len() as f64).collect();
        let mut stage_m = Map::new();
        let rmean = rewards.iter().flatten().sum::<f64>() / n_all;
        let rstd =
            (rewards.iter().flatten().map(|r| (r - rmean).powi(2)).sum::<f64>() / n_all).sqrt();
        stage_m.insert("reward_mean".into(), Value::from(rmean));
        stage_m.insert("reward_std".into(), Value::from(rstd));
        stage_m.insert(
            "accuracy".into(),
            Value::from(verified / n_all),
        );
        stage_m.insert(
            "zero_std_frac".into(),
            Value::from(zero_std.len() as f64 / rollouts.len() as f64),
        );
        stage_m.insert("completion_len_mean".into(), Value::from(lens.iter().sum::<f64>() / n_all));
        stage_m.insert(
            "completion_len_max".into(),
            Value::from(lens.iter().cloned().fold(0.0, f64::max)),
        );
        stage_m.insert(
            "truncated_frac".into(),
            Value::from(all.iter().filter(|r| r.truncated).count() as f64 / n_all),
        );
        stage_m.insert("generation_seconds".into(), Value::from(gen_s));
        stage_m.insert("reward_seconds".into(), Value::from(reward_s));
        stage_m.insert("generated_tokens".into(), Value::from(gstats.generated_tokens as u64));
        if rows.is_empty() {
            // Nothing to learn from this stage (all groups skipped): count it as a step anyway
            // so a run cannot spin forever.
            tracing::warn!(step = tr.step(), "no trainable rollouts in this stage");
        }
        // --- mu policy updates on this stage's samples. pi_old log-probs come from the first
        // update's forward pass (detached), the reference's from its own forward pass.
        let device = tr.device.clone();
        let micro: Vec<Vec<(&Rollout, &[f64])>> = rows.chunks(mb).map(|c| c.to_vec()).collect();
        let mut old: Vec<Option<Tensor>> = vec![None; micro.len()];
        let t_ref = std::time::Instant::now();
        let refs: Vec<Option<Tensor>> = match &reference {
            Some(rm) => micro
                .iter()
                .map(|c| {
                    let rs: Vec<&Rollout> = c.iter().map(|(r, _)| *r).collect();
                    Ok(Some(match rm {
                        Reference::Fast(f) => fast_completion_logprobs(f, &rs, cfg.temperature, &device)?,
                        Reference::Model(m) => {
                            completion_logprobs(m, &rs, pad, chunk, cfg.temperature, &device)?.0.detach()
                        }
                    }))
                })
                .collect::<Result<_>>()?,
            None => vec![None; micro.len()],
        };
        stage_m.insert("reference_seconds".into(), Value::from(t_ref.elapsed().as_secs_f64()));
        let live: Vec<f64> = micro
            .iter()
            .map(|c| c.iter().filter(|(r, _)| !(cfg.mask_truncated && r.truncated)).count() as f64)
            .collect();
        let live_tokens: Vec<f64> = micro
            .iter()
            .map(|c| {
                c.iter()
                    .filter(|(r, _)| !(cfg.mask_truncated && r.truncated))
                    .map(|(r, _)| r.completion_ids.len() as f64)
                    .sum()
            })
            .collect();
        let (tot_live, tot_tokens) =
            (live.iter().sum::<f64>().max(1.0), live_tokens.iter().sum::<f64>().max(1.0));
        for _update in 0..cfg.mu {
            if tr.done() {
                break;
            }
            let before = serde_json::json!({});
            let t_train = std::time::Instant::now();
            let n_micro = micro.len().max(1);
            let res = tr.train_step(n_micro, |model, _rng, i| {
                let Some(c) = micro.get(i) else {
                    // No trainable rows: a zero loss that still touches the graph.
                    let z = Tensor::zeros((), DType::F32, &device)?;
                    return Ok(MicroLoss { loss: z, weight: 1.0, metrics: Map::new() });
                };
                let rs: Vec<&Rollout> = c.iter().map(|(r, _)| *r).collect();
                let (lp, mut mask) = completion_logprobs(model, &rs, pad, chunk, cfg.temperature, &device)?;
                if cfg.mask_truncated {
                    let keep: Vec<f32> =
                        rs.iter().map(|r| if r.truncated { 0.0 } else { 1.0 }).collect();
                    let keep = Tensor::from_vec(keep, (rs.len(), 1), &device)?;
                    mask = mask.broadcast_mul(&keep)?;
                }
                let o = match &old[i] {
                    Some(o) => o.clone(),
                    None => {
                        let o = lp.detach();
                        old[i] = Some(o.clone());
                        o
                    }
                };
                let tc = lp.dim(1)?;
                // Per-token advantages, zero-padded to the block's width.
                let a: Vec<f32> = c
                    .iter()
                    .flat_map(|(_, a)| {
                        (0..tc).map(move |t| a.get(t).copied().unwrap_or(0.0) as f32)
                    })
                    .collect();
                let a = Tensor::from_vec(a, (c.len(), tc), &device)?;
                let out = policy_loss(&lp, &o, refs[i].as_ref(), &a, &mask, &loss_cfg)?;
                // Entropy proxy: mean negative log-prob of the sampled tokens.
                let nlp = (lp.detach().neg()? * &mask)?.sum_all()?.to_scalar::<f32>()? as f64
                    / out.tokens.max(1.0);
                let weight = match cfg.loss_aggregation {
                    LossAggregation::Paper | LossAggregation::DrGrpo => live[i] / tot_live,
                    LossAggregation::TokenMean => live_tokens[i] / tot_tokens,
                };
                let mut m = Map::new();
                m.insert("kl".into(), Value::from(out.kl));
                m.insert("clip_frac".into(), Value::from(out.clip_frac));
                m.insert("entropy".into(), Value::from(nlp));
                Ok(MicroLoss { loss: out.loss, weight, metrics: m })
            });
            let mut m = match res {
                Ok(m) => m,
                Err(e @ Error::NonFinite { .. }) => return Err(tr.save_last_good(e, before)),
                Err(e) => return Err(e),
            };
            let train_s = t_train.elapsed().as_secs_f64();
            m.extend(stage_m.clone());
            m.insert("train_seconds".into(), Value::from(train_s));
            let total_s = stage_start.elapsed().as_secs_f64();
            // With mu > 1 the stage's generation time is counted once, at its first update.
            budget.add_stage(if _update == 0 { total_s } else { train_s }, _update == 0);
            m.insert("train_wall_seconds".into(), Value::from(budget.spent));
            m.insert(
                "tokens_per_second".into(),
                Value::from(gstats.generated_tokens as f64 / total_s.max(1e-9)),
            );
            let step = tr.step();
            if period > 0 && step % period == 0 && !tr.done() {
                // A new iteration: the reference becomes the current policy, and the reward
                // model learns from the iteration that just ended.
                if reference.is_some() {
                    let r = frozen_copy(&tr)?;
                    save_reference(&tr, &r)?;
                    reference = Some(Reference::new(r)?);
                }
                if retrain_rm {
                    let t_rm = std::time::Instant::now();
                    let k = crate::iterative::iteration_of(step, period, cfg.iterations);
                    let dir = crate::iterative::reward_model_dir(
                        cfg,
                        &tr.run_dir,
                        k,
                        period,
                        rm_kind,
                        tr.git_commit.clone(),
                    )?;
                    scorer = Some(crate::rm::RewardScorer::load(dir, pad, &device)?);
                    let rm_s = t_rm.elapsed().as_secs_f64();
                    budget.add(rm_s);
                    m.insert("rm_train_seconds".into(), Value::from(rm_s));
                    m.insert("train_wall_seconds".into(), Value::from(budget.spent));
                }
            }
            // The iteration this step belonged to.
            let it = crate::iterative::iteration_of(step - 1, period, cfg.iterations);
            m.insert("iteration".into(), Value::from(it));
            if tr.done() || (cfg.common.eval_every > 0 && step % cfg.common.eval_every == 0) {
                if let Some(acc) = eval_now(&tr)? {
                    m.insert("eval_greedy_acc".into(), Value::from(acc));
                }
            }
            tr.log(&m)?;
            progress(&StepReport { step, total: cfg.common.steps, metrics: m.clone() });
            let save = tr.done() || step % cfg.common.save_every == 0;
            if save {
                let it = crate::iterative::iteration_of(step, period, cfg.iterations);
                let data = serde_json::json!({ "train_wall_seconds": budget.spent, "iteration": it });
                tr.save(data, &m)?;
            }
            budget.stepped(step, &m, save);
        }
    }
    // Stopped by the time budget: evaluate (unless this step was just evaluated) and save.
    let it = crate::iterative::iteration_of(tr.step(), period, cfg.iterations);
    let data = serde_json::json!({ "train_wall_seconds": budget.spent, "iteration": it });
    budget.finish(&mut tr, data, &eval_now, &mut progress)?;
    samples.finish()?;
    tr.plot()?;
    Ok(tr.run_dir.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn t(v: &[[f32; 3]; 2]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    #[test]
    fn outcome_advantages_hand_values() {
        // Group 1: rewards 1,0,0,1 -> mean 0.5, sample std sqrt(1/3) = 0.57735.
        let (adv, zero) = outcome_advantages(
            &[vec![1.0, 0.0, 0.0, 1.0], vec![1.0, 1.0, 1.0, 1.0]],
            RewardScaling::Group,
        );
        let a = 0.5 / (0.577_350_269_189_625_8 + STD_EPS);
        assert!((adv[0][0] - a).abs() < 1e-12 && (adv[0][1] + a).abs() < 1e-12);
        assert_eq!(adv[1], vec![0.0; 4]);
        assert_eq!(zero, vec![1]);
        let (adv, _) = outcome_advantages(&[vec![1.0, 0.0]], RewardScaling::None);
        assert_eq!(adv[0], vec![0.5, -0.5]);
        // Batch std over all 8 rewards (6 ones, 2 zeros): mean .75, var = (6*.0625+2*.5625)/7.
        let (adv, _) = outcome_advantages(
            &[vec![1.0, 0.0, 0.0, 1.0], vec![1.0, 1.0, 1.0, 1.0]],
            RewardScaling::Batch,
        );
        let bstd = ((6.0 * 0.0625 + 2.0 * 0.5625) / 7.0f64).sqrt();
        assert!((adv[0][0] - 0.5 / (bstd + STD_EPS)).abs() < 1e-12);
    }

    #[test]
    fn process_advantages_sum_later_steps() {
        // Sample 0: steps ending at tokens 1 and 3 with rewards 1 and 0; sample 1: one step at 2
        // with reward 1. All step rewards {1, 0, 1}: mean 2/3, sample std sqrt(1/3).
        let steps = vec![
            vec![StepReward { end: 1, reward: 1.0 }, StepReward { end: 3, reward: 0.0 }],
            vec![StepReward { end: 2, reward: 1.0 }],
        ];
        let adv = process_advantages(&steps, &[4, 3], RewardScaling::Group);
        let s = (1.0f64 / 3.0).sqrt() + STD_EPS;
        let (hi, lo) = ((1.0 - 2.0 / 3.0) / s, (0.0 - 2.0 / 3.0) / s);
        let want0 = [hi + lo, hi + lo, lo, lo];
        for (g, w) in adv[0].iter().zip(want0) {
            assert!((g - w).abs() < 1e-12, "{:?}", adv[0]);
        }
        assert!(adv[1].iter().all(|g| (g - hi).abs() < 1e-12));
    }

    /// Hand-computed eq. 3 on a 2x3 batch, first update (old = current): ratio 1, so the
    /// surrogate is A, and the gradient of -J wrt logp is -A/|o_i|/G + beta * dKL/dlogp / ...
    #[test]
    fn paper_loss_value_and_gradient() {
        let logp = Var::from_tensor(&t(&[[-1.0, -2.0, -0.5], [-0.3, -1.2, 0.0]])).unwrap();
        let refp = t(&[[-1.5, -2.0, -0.4], [-0.3, -1.0, 0.0]]);
        let adv = t(&[[1.0, 1.0, 1.0], [-0.5, -0.5, 0.0]]);
        let mask = t(&[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        let cfg = LossConfig { beta: 0.04, ..Default::default() };
        let old = logp.as_tensor().detach();
        let out = policy_loss(logp.as_tensor(), &old, Some(&refp), &adv, &mask, &cfg).unwrap();
        // k3(d) with d = ref - logp: e^d - d - 1.
        let k3 = |d: f64| d.exp() - d - 1.0;
        let kl0 = [k3(-0.5), k3(0.0), k3(0.1)];
        let kl1 = [k3(0.0), k3(0.2)];
        let j0 = (3.0 - 0.04 * kl0.iter().sum::<f64>()) / 3.0;
        let j1 = (-1.0 - 0.04 * kl1.iter().sum::<f64>()) / 2.0;
        let want = -(j0 + j1) / 2.0;
        let got = out.loss.to_scalar::<f32>().unwrap() as f64;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        assert!((out.kl - (kl0.iter().sum::<f64>() + kl1.iter().sum::<f64>()) / 5.0).abs() < 1e-6);
        assert_eq!(out.clip_frac, 0.0);
        // d(-J)/dlogp_it = -(A_it - beta * dk3/dlogp)/|o_i|/G, dk3/dlogp = -(e^d) + 1.
        let g = out.loss.backward().unwrap();
        let g = g.get(logp.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        let dk = |d: f64| -d.exp() + 1.0;
        let want00 = -(1.0 - 0.04 * dk(-0.5)) / 3.0 / 2.0;
        let want11 = -(-0.5 - 0.04 * dk(0.2)) / 2.0 / 2.0;
        assert!((g[0][0] as f64 - want00).abs() < 1e-6, "{g:?}");
        assert!((g[1][1] as f64 - want11).abs() < 1e-6, "{g:?}");
        assert_eq!(g[1][2], 0.0, "masked token gets no gradient");
    }

    #[test]
    fn clipping_aggregations_and_clip_higher() {
        // Ratios e^0.5 = 1.65 (clipped at 1.2 for A > 0) and e^-0.5 = 0.61 (clipped at 0.8 for A < 0).
        let logp = t(&[[0.5, 0.0, 0.0], [-0.5, 0.0, 0.0]]);
        let old = t(&[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]);
        let adv = t(&[[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]);
        let mask = t(&[[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]);
        let base = LossConfig { beta: 0.0, max_completion_len: 4, ..Default::default() };
        let out = policy_loss(&logp, &old, None, &adv, &mask, &base).unwrap();
        // Row 0: min(1.6487, 1.2)=1.2 and 1 -> mean 1.1; row 1: min(-0.6065, -0.8) = -0.8, -1, -1.
        let r1 = (-0.8 - 1.0 - 1.0) / 3.0;
        let want = -(1.1 + r1) / 2.0;
        assert!((out.loss.to_scalar::<f32>().unwrap() as f64 - want).abs() < 1e-6);
        assert!((out.clip_frac - 2.0 / 5.0).abs() < 1e-9);
        let tm = LossConfig { aggregation: LossAggregation::TokenMean, ..base };
        let out = policy_loss(&logp, &old, None, &adv, &mask, &tm).unwrap();
        assert!((out.loss.to_scalar::<f32>().unwrap() as f64 + (2.2 - 2.8) / 5.0).abs() < 1e-6);
        let dr = LossConfig { aggregation: LossAggregation::DrGrpo, ..base };
        let out = policy_loss(&logp, &old, None, &adv, &mask, &dr).unwrap();
        assert!((out.loss.to_scalar::<f32>().unwrap() as f64 + (2.2 - 2.8) / 8.0).abs() < 1e-6);
        // Clip-higher 0.28 -> the positive side clips at 1.28.
        let ch = LossConfig { epsilon_high: Some(0.28), ..base };
        let out = policy_loss(&logp, &old, None, &adv, &mask, &ch).unwrap();
        let want = -((1.28 + 1.0) / 2.0 + r1) / 2.0;
        assert!((out.loss.to_scalar::<f32>().unwrap() as f64 - want).abs() < 1e-6);
        // Shape errors name the tensor.
        let bad = Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap();
        let err = policy_loss(&logp, &old, None, &bad, &mask, &base).err().unwrap().to_string();
        assert!(err.contains("`adv`"), "{err}");
    }

    /// Scoring each group's prompt once must give the per-row padded path's log-probs and
    /// gradients (groups of different prompt lengths, completions of lengths 1 to 5, T = 0.7).
    #[test]
    fn shared_prompt_logprobs_equal_the_padded_path() {
        let cfg = mathforge_model::Config::from_json_str(
            r#"{"model_type":"llama","hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,
               "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":40,"max_position_embeddings":64}"#,
        )
        .unwrap();
        let vm = mathforge_model::checkpoint::init_varmap(&cfg, 5, DType::F64, &Device::Cpu).unwrap();
        let model = mathforge_model::Llama::new(&cfg, candle_nn::VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu)).unwrap();
        let roll = |p: &[u32], c: &[u32]| Rollout {
            example: 0,
            prompt_ids: p.to_vec(),
            completion_ids: c.to_vec(),
            text: String::new(),
            reward: 0.0,
            truncated: false,
        };
        let rs = [
            roll(&[1, 5, 9], &[4, 4, 2, 7, 1]),
            roll(&[1, 5, 9], &[3]),
            roll(&[1, 8, 8, 6, 2, 11], &[9, 10]),
            roll(&[1, 5, 9], &[30, 31, 32]),
            roll(&[1, 8, 8, 6, 2, 11], &[5, 6, 7, 8]),
        ];
        let rows: Vec<&Rollout> = rs.iter().collect();
        let (a, ma) = completion_logprobs(&model, &rows, 0, 3, 0.7, &Device::Cpu).unwrap();
        let (b, mb) = padded_completion_logprobs(&model, &rows, 0, 3, 0.7, &Device::Cpu).unwrap();
        assert_eq!(ma.to_vec2::<f32>().unwrap(), mb.to_vec2::<f32>().unwrap());
        // The fast decoder's scoring pass (f32 snapshot of the same weights) agrees too.
        let f32s: std::collections::HashMap<String, Tensor> = vm
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().to_dtype(DType::F32).unwrap()))
            .collect();
        let m32 = mathforge_model::Llama::new(&cfg, candle_nn::VarBuilder::from_tensors(f32s, DType::F32, &Device::Cpu)).unwrap();
        let fast = mathforge_model::decode::FastDecoder::new(&m32).unwrap().unwrap();
        let c = fast_completion_logprobs(&fast, &rows, 0.7, &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
        for (x, y) in c.iter().flatten().zip(b.to_vec2::<f32>().unwrap().iter().flatten()) {
            assert!((x - y).abs() < 1e-4, "fast {x} vs {y}");
        }
        let (va, vb) = (a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
        for (x, y) in va.iter().flatten().zip(vb.iter().flatten()) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        let w = Tensor::arange(0f32, 25.0, &Device::Cpu).unwrap().reshape((5, 5)).unwrap().sin().unwrap();
        let ga = (a * &ma).unwrap().mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (b * &mb).unwrap().mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in vm.data().lock().unwrap().iter() {
            let x = ga.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let y = gb.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            for (x, y) in x.iter().zip(&y) {
                assert!((x - y).abs() < 1e-5, "{name}: {x} vs {y}");
            }
        }
    }
}
