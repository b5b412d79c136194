//! PPO with a critic (DeepSeekMath §4.1 eq. 1-2, after InstructGPT, Ouyang et al. 2022), the
//! baseline GRPO removes: `mathforge train ppo`.
//!
//! Per exploration stage: questions from the task, `samples-per-question` completions each from
//! the current policy (pi_old); the score of a completion is the strict verifier's 0/1 (or a
//! trained outcome reward model's `sigmoid(score)`, `--reward-model DIR`). Then, per completion
//! token `t` (eq. 2):
//!
//! ```text
//! r_t  = -beta * (log pi_old(o_t) - log pi_ref(o_t))  +  [t = last] * score
//! d_t  = r_t + gamma * V(s_{t+1}) - V(s_t)              (V after the last token = 0)
//! A_t  = d_t + gamma * lambda * A_{t+1}                 (GAE, Schulman et al. 2016)
//! R_t  = A_t + V(s_t)                                   (value targets)
//! ```
//!
//! Advantages are whitened over all completion tokens of the stage. `mu` epochs over the stage's
//! micro-batches then update the policy with the clipped surrogate (eq. 1; [`grpo::policy_loss`]
//! with beta 0, since the KL is in the reward) and the critic with the clipped value loss
//! `vf-coef * 0.5 * max((V - R)^2, (V_old + clip(V - V_old, +-value-clip) - R)^2)` (PPO2 / TRL).
//!
//! The critic is a [`HeadModel`] (backbone + `score` head) with its own AdamW, initialised from the
//! policy's initial folder (or `critic-init`, e.g. a reward model); it is saved under
//! `<run>/critic/checkpoints/step-N/` (a `LlamaForSequenceClassification` folder). The reference
//! model is the initial policy, reloaded from `init` so a resumed run keeps the same reference.
//! pi_old log-probs and V_old are computed with the same micro-batches and code as the training
//! forward pass, so the first epoch's ratio is exactly 1 (no sampler/trainer mismatch).
//!
//! Memory: policy + its AdamW state + reference + critic + the critic's AdamW state; the critic is
//! what GRPO saves (`scripts/bench/grpo_vs_ppo_memory`).
use crate::checkpoint::{self, Meta, RngState};
use crate::grpo::{self, completion_block, completion_logprobs, padded, LossAggregation, LossConfig, Rollout};
use crate::heads::{HeadKind, HeadModel};
use crate::optim::{finite_loss, AdamW, GradAccumulator};
use crate::trainer::{check_memory, estimate_memory, MicroLoss, StepReport, Trainer};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// `mathforge train ppo` settings (keys = long flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct PpoConfig {
    /// Settings shared by all trainers.
    #[serde(flatten)]
    pub common: crate::trainer::CommonConfig,
    /// Training problems: `arith:split=train,steps=2,n=2000` or a benchmark JSONL file.
    pub train_data: String,
    /// Held-out problems for greedy accuracy.
    pub eval_data: Option<String>,
    /// Held-out questions for the greedy accuracy.
    pub eval_questions: usize,
    /// Questions per exploration stage.
    pub questions_per_step: usize,
    /// Completions per question (1 in InstructGPT; set G to match a GRPO batch).
    pub samples_per_question: usize,
    /// PPO epochs over each stage's rollouts.
    pub mu: usize,
    /// Policy clip range.
    pub epsilon: f64,
    /// Value clip range around V_old (0: no clipping).
    pub value_clip: f64,
    /// Weight of the value loss.
    pub vf_coef: f64,
    /// KL-in-reward coefficient.
    pub beta: f64,
    /// Discount.
    pub gamma: f64,
    /// GAE lambda.
    pub lam: f64,
    /// Normalize advantages to mean 0, std 1 over the stage.
    pub whiten_advantages: bool,
    /// token-mean (InstructGPT/TRL), paper or dr-grpo.
    pub loss_aggregation: LossAggregation,
    /// Critic initial weights: a model folder (default: `init`; a reward model works too).
    pub critic_init: Option<String>,
    /// Critic peak learning rate (default: `lr`).
    pub critic_lr: Option<f64>,
    /// Outcome reward model folder used instead of the verifier for the score.
    pub reward_model: Option<String>,
    /// Rollout temperature. The old, current and reference log-probs are scored under the same
    /// tempered distribution `softmax(logits / temperature)` (as TRL and verl do), so the ratio
    /// and the KL describe the policy the samples came from.
    pub temperature: f32,
    /// Rollout nucleus threshold.
    pub top_p: f32,
    /// Longest completion.
    pub max_completion_len: usize,
    /// Wall-clock budget in minutes for the exploration/update stages (held-out evaluations not
    /// counted; 0: no limit), as GRPO's, so both can be compared on the same budget: a stage
    /// starts only if, taking as long as the previous one, it ends within the budget
    /// ([`crate::paradigm::Budget::fits_next_stage`]). The time used is kept in the checkpoints,
    /// so a resumed run continues the same budget.
    pub max_minutes: f64,
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig {
            common: crate::paradigm::rl_common(),
            train_data: "arith:split=train,steps=2,n=2000".into(),
            eval_data: Some("arith:split=heldout,steps=2,n=200".into()),
            eval_questions: 100,
            questions_per_step: 64,
            samples_per_question: 1,
            mu: 1,
            epsilon: 0.2,
            value_clip: 0.2,
            vf_coef: 0.1,
            beta: 0.04,
            gamma: 1.0,
            lam: 0.95,
            whiten_advantages: true,
            loss_aggregation: LossAggregation::TokenMean,
            critic_init: None,
            critic_lr: None,
            reward_model: None,
            temperature: 1.0,
            top_p: 1.0,
            max_completion_len: 128,
            max_minutes: 0.0,
        }
    }
}

/// Generalized advantage estimation for one completion: `(advantages, returns)`, with the value
/// after the last token taken as 0 (the episode ends with the completion).
pub fn gae(rewards: &[f64], values: &[f64], gamma: f64, lam: f64) -> (Vec<f64>, Vec<f64>) {
    let n = rewards.len().min(values.len());
    let mut adv = vec![0.0; n];
    let mut next_adv = 0.0;
    for t in (0..n).rev() {
        let next_v = if t + 1 < n { values[t + 1] } else { 0.0 };
        let delta = rewards[t] + gamma * next_v - values[t];
        next_adv = delta + gamma * lam * next_adv;
        adv[t] = next_adv;
    }
    let ret = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    (adv, ret)
}

/// Per-token rewards: `-beta * (old - ref)` everywhere plus `score` at the last token.
pub fn token_rewards(old: &[f64], reference: Option<&[f64]>, beta: f64, score: f64) -> Vec<f64> {
    let mut r: Vec<f64> = match reference {
        Some(rf) => old.iter().zip(rf).map(|(o, r)| -beta * (o - r)).collect(),
        None => vec![0.0; old.len()],
    };
    if let Some(last) = r.last_mut() {
        *last += score;
    }
    r
}

/// Normalize in place to mean 0 and (sample) std 1 over every element of every row.
pub fn whiten(rows: &mut [Vec<f64>]) {
    let all: Vec<f64> = rows.iter().flatten().copied().collect();
    if all.len() < 2 {
        return;
    }
    let n = all.len() as f64;
    let mean = all.iter().sum::<f64>() / n;
    let var = all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let inv = 1.0 / (var.sqrt() + 1e-8);
    rows.iter_mut().flatten().for_each(|x| *x = (*x - mean) * inv);
}

/// The clipped value loss and its diagnostics.
pub struct ValueLoss {
    /// `vf_coef * 0.5 * masked mean of max(unclipped, clipped)` (differentiable through `values`).
    pub loss: Tensor,
    /// Fraction of tokens where the clipped term was the larger.
    pub clip_frac: f64,
}

/// Clipped value loss on `[B, T]` f32 tensors: `values` (critic, differentiable), `old_values`
/// (V_old), `returns` (R), `mask` (1 on completion tokens). Averaged over masked tokens.
pub fn value_loss(
    values: &Tensor,
    old_values: &Tensor,
    returns: &Tensor,
    mask: &Tensor,
    value_clip: f64,
    vf_coef: f64,
) -> Result<ValueLoss> {
    let dims = values.dims2()?;
    for (name, t) in [("old_values", old_values), ("returns", returns), ("mask", mask)] {
        if t.dims() != [dims.0, dims.1] {
            return Err(Error::Msg(format!(
                "value_loss: `{name}` has shape {:?}, expected {:?}",
                t.dims(),
                dims
            )));
        }
    }
    let un = (values - returns)?.sqr()?;
    let n = mask.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64;
    let (per, clip_frac) = if value_clip > 0.0 {
        let old = old_values.detach();
        let vc = (&old + (values - &old)?.clamp(-value_clip, value_clip)?)?;
        let cl = (vc - returns)?.sqr()?;
        let frac =
            (cl.gt(&un)?.to_dtype(DType::F32)? * mask)?.sum_all()?.to_scalar::<f32>()? as f64 / n;
        (un.maximum(&cl)?, frac)
    } else {
        (un, 0.0)
    };
    let loss = ((per * mask)?.sum_all()? * (0.5 * vf_coef / n))?;
    Ok(ValueLoss { loss, clip_frac })
}

/// Critic values `V(s_t)` `[B, Tc]` (the state before completion token `t`) and the mask.
pub fn completion_values(
    critic: &HeadModel,
    rows: &[&Rollout],
    pad: u32,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let (ids, am) = padded(rows, pad, device)?;
    let v = critic.forward(&ids, Some(&am))?;
    completion_block(&v, rows, device)
}

fn rows_of(t: &Tensor, rows: &[&Rollout]) -> Result<Vec<Vec<f64>>> {
    let v = t.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    Ok(v.into_iter()
        .zip(rows)
        .map(|(row, r)| row[..r.completion_ids.len()].iter().map(|&x| x as f64).collect())
        .collect())
}

fn to_tensor(rows: &[Vec<f64>], tc: usize, device: &Device) -> Result<Tensor> {
    let mut v = vec![0f32; rows.len() * tc];
    for (b, r) in rows.iter().enumerate() {
        for (t, x) in r.iter().enumerate() {
            v[b * tc + t] = *x as f32;
        }
    }
    Ok(Tensor::from_vec(v, (rows.len(), tc), device)?)
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    s / n.max(1) as f64
}

fn variance(xs: &[f64]) -> f64 {
    let m = mean(xs.iter().copied());
    mean(xs.iter().map(|x| (x - m).powi(2)))
}

/// What one micro-batch carries through the PPO epochs.
struct Micro<'a> {
    rows: Vec<&'a Rollout>,
    old: Vec<Vec<f64>>,
    old_values: Vec<Vec<f64>>,
    adv: Vec<Vec<f64>>,
    returns: Vec<Vec<f64>>,
}

/// Run (or resume) PPO. `progress` is called after every optimizer step.
pub fn run(
    cfg: &PpoConfig,
    git_commit: Option<String>,
    mut progress: impl FnMut(&StepReport),
) -> Result<PathBuf> {
    use rand::Rng;
    let bad = |m: String| Error::Config { file: "<resolved>".into(), msg: m };
    if cfg.mu == 0 || cfg.questions_per_step == 0 || cfg.samples_per_question == 0 {
        return Err(bad(
            "`mu`, `questions-per-step` and `samples-per-question` must be >= 1".into()
        ));
    }
    if !(0.0..=1.0).contains(&cfg.gamma) || !(0.0..=1.0).contains(&cfg.lam) {
        return Err(bad("`gamma` and `lam` must be in [0, 1]".into()));
    }
    let c = &cfg.common;
    c.validate()?;
    let tok_path = c.tokenizer_path()?;
    let tok = if tok_path.is_dir() {
        mathforge_model::tokenizer::Tokenizer::from_dir(&tok_path)
    } else {
        mathforge_model::tokenizer::Tokenizer::from_file(&tok_path)
    }
    .map_err(|e| Error::Msg(e.to_string()))?;
    let tok_json =
        Some(if tok_path.is_dir() { tok_path.join("tokenizer.json") } else { tok_path.clone() })
            .filter(|p| p.exists());
    let train = grpo::open_task(&cfg.train_data)?;
    if train.examples().is_empty() {
        return Err(bad(format!("`train-data` {} has no problems", cfg.train_data)));
    }
    let eval = cfg.eval_data.as_deref().map(grpo::open_task).transpose()?;
    let dtype = c.dtype()?;
    let model_cfg = match (&c.init, &c.model_config) {
        (Some(dir), _) => mathforge_model::Config::from_file(Path::new(dir).join("config.json")),
        (None, Some(f)) => mathforge_model::Config::from_file(f),
        _ => return Err(bad("`init` or `model-config` is required".into())),
    }
    .map_err(|e| Error::Msg(e.to_string()))?;
    // The critic is a second trained model: count it before anything is allocated.
    let seq = 64 + cfg.max_completion_len;
    let frozen = usize::from(cfg.beta != 0.0) + usize::from(cfg.reward_model.is_some());
    let ckpt = c.gradient_checkpointing;
    let chunk = c.logprob_chunk;
    let mut est = estimate_memory(&model_cfg, dtype, c.micro_batch_size, seq, frozen, ckpt, chunk);
    let critic_est = estimate_memory(&model_cfg, dtype, c.micro_batch_size, seq, 0, ckpt, chunk);
    est.weights += critic_est.weights;
    est.master += critic_est.master;
    est.moments += critic_est.moments;
    est.grads += critic_est.grads;
    let spec: mathforge_model::DeviceSpec =
        c.device.parse().map_err(|e: mathforge_model::Error| bad(e.to_string()))?;
    let device = spec.device().map_err(|e| Error::Msg(e.to_string()))?;
    check_memory(&est, c.max_memory_mib, &device)?;
    let mut tr = Trainer::open(
        "ppo",
        c,
        crate::config::to_json(cfg),
        &crate::config::to_toml(cfg)?,
        seq,
        frozen,
        git_commit.clone(),
    )?;
    // Reference = the initial policy, from its source (not the resumed weights).
    // Frozen weights: a forward through trainable `Var`s would record a whole autograd graph.
    let reference = if cfg.beta != 0.0 {
        Some(crate::paradigm::initial_model(c, &device)?)
    } else {
        None
    };
    let scorer = match &cfg.reward_model {
        Some(dir) => Some(crate::rm::RewardScorer::load(dir, tok.pad_id(), &device)?),
        None => None,
    };
    let mut critic = match cfg.critic_init.as_ref().or(c.init.as_ref()) {
        Some(dir) => HeadModel::load(dir, c.seed, dtype, &device)?,
        None => HeadModel::init(&model_cfg, c.seed, dtype, &device)?,
    };
    critic.backbone.set_gradient_checkpointing(c.gradient_checkpointing);
    let mut critic_opt = AdamW::new(critic.named_vars()?, c.adamw())?;
    let critic_sched =
        crate::schedule::Schedule { lr: cfg.critic_lr.unwrap_or(c.lr), ..c.schedule() };
    let critic_dir = tr.run_dir.join("critic");
    if tr.step() > 0 {
        let dir = checkpoint::step_dir(&critic_dir, tr.step());
        if !dir.join(checkpoint::META_FILE).exists() {
            return Err(Error::Checkpoint {
                path: dir,
                msg: format!(
                    "the policy resumes at step {} but the critic has no checkpoint of that step",
                    tr.step()
                ),
            });
        }
        checkpoint::restore(&dir, &mut critic_opt, &device)?;
    }
    let save_critic =
        |opt: &AdamW, rng: &rand_chacha::ChaCha8Rng, m: &Map<String, Value>| -> Result<PathBuf> {
            let meta = Meta {
                stage: "ppo-critic".into(),
                step: opt.steps_taken(),
                rng: RngState::capture(rng),
                data: Value::Null,
                config: crate::config::to_json(cfg),
                git_commit: git_commit.clone(),
                metrics: Value::Object(m.clone()),
            };
            let d = checkpoint::save(&critic_dir, &[], opt, &meta, |d| {
                critic.save(d, HeadKind::Value, dtype, tok_json.as_deref())
            })?;
            checkpoint::prune(&critic_dir, c.keep_checkpoints)?;
            Ok(d)
        };
    let mut samples = mathforge_io::jsonl::JsonlWriter::create(
        tr.run_dir.join(format!("samples-{}.jsonl", tr.step())),
    )?;
    let (pad, chunk, mb) = (tok.pad_id(), tr.cfg.logprob_chunk, tr.cfg.micro_batch_size);
    let loss_cfg = LossConfig {
        epsilon: cfg.epsilon,
        epsilon_high: None,
        beta: 0.0,
        aggregation: cfg.loss_aggregation,
        max_completion_len: cfg.max_completion_len,
    };
    let eval_now = |tr: &Trainer| -> Result<Option<f64>> {
        match &eval {
            Some(t) => Ok(Some(grpo::greedy_accuracy(
                &tr.model,
                &tok,
                t.as_ref(),
                cfg.eval_questions,
                cfg.max_completion_len,
            )?)),
            None => Ok(None),
        }
    };
    let mut budget = crate::paradigm::Budget::new(cfg.max_minutes, &tr);
    let mut last_m: Map<String, Value> = Map::new();
    if tr.step() == 0 {
        if let Some(acc) = eval_now(&tr)? {
            let mut m = Map::new();
            m.insert("eval_greedy_acc".into(), Value::from(acc));
            tr.log(&m)?;
            progress(&StepReport { step: 0, total: c.steps, metrics: m });
        }
    }
    while !tr.done() {
        // As GRPO: a stage starts only if it should end within the budget.
        if !budget.fits_next_stage() {
            break;
        }
        let stage_start = std::time::Instant::now();
        // --- exploration from pi_old.
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
            n: cfg.samples_per_question,
            seed: tr.rng.gen(),
            ..Default::default()
        };
        let opts =
            mathforge_model::generate::GenerateOptions { max_batch: 256, ..Default::default() };
        let (groups, gstats) =
            mathforge_model::generate::generate(&tr.model, &tok, &prompts, &params, &opts, |_| {})
                .map_err(|e| Error::Msg(e.to_string()))?;
        let gen_s = stage_start.elapsed().as_secs_f64();
        // --- scores: verifier (always, for accuracy) and the reward model when given.
        let t_reward = std::time::Instant::now();
        let mut rollouts: Vec<Rollout> = vec![];
        for (g, (&qi, prompt)) in groups.iter().zip(qs.iter().zip(&prompts)) {
            let ex = &train.examples()[qi];
            for comp in g {
                rollouts.push(Rollout {
                    example: qi,
                    prompt_ids: prompt.clone(),
                    completion_ids: comp.token_ids.clone(),
                    text: comp.text.clone(),
                    reward: train.reward(ex, &comp.text) as f64,
                    truncated: comp.finish_reason
                        == mathforge_model::sampling::FinishReason::Length,
                });
            }
        }
        let correct: Vec<f64> = rollouts.iter().map(|r| r.reward).collect();
        if let Some(s) = &scorer {
            let pairs: Vec<(&[u32], &[u32])> = rollouts
                .iter()
                .map(|r| (r.prompt_ids.as_slice(), r.completion_ids.as_slice()))
                .collect();
            let xs = s.score(&pairs)?;
            for (r, x) in rollouts.iter_mut().zip(xs) {
                r.reward = x;
            }
        }
        let reward_s = t_reward.elapsed().as_secs_f64();
        for r in &rollouts {
            samples.write(&serde_json::json!({"step": tr.step(), "example": r.example, "text": r.text, "reward": r.reward, "truncated": r.truncated}))?;
        }
        let n_all = rollouts.len().max(1) as f64;
        let scores: Vec<f64> = rollouts.iter().map(|r| r.reward).collect();
        let lens: Vec<f64> = rollouts.iter().map(|r| r.completion_ids.len() as f64).collect();
        // --- pi_old, pi_ref, V_old; rewards; GAE.
        let t_prep = std::time::Instant::now();
        let live: Vec<&Rollout> =
            rollouts.iter().filter(|r| !r.completion_ids.is_empty()).collect();
        let mut micro: Vec<Micro> = vec![];
        let mut kl_sum = 0.0f64;
        // pi_old and V_old need no graph: score with detached views of the trained weights.
        let (policy_view, critic_view) = (tr.model.detached(), critic.detached());
        for rows in live.chunks(mb) {
            let rows = rows.to_vec();
            let old = rows_of(
                &completion_logprobs(&policy_view, &rows, pad, chunk, cfg.temperature, &device)?.0.detach(),
                &rows,
            )?;
            let refl = match &reference {
                Some(m) => Some(rows_of(
                    &completion_logprobs(m, &rows, pad, chunk, cfg.temperature, &device)?.0.detach(),
                    &rows,
                )?),
                None => None,
            };
            let old_values =
                rows_of(&completion_values(&critic_view, &rows, pad, &device)?.0.detach(), &rows)?;
            let (mut adv, mut returns) = (vec![], vec![]);
            for (i, r) in rows.iter().enumerate() {
                let rew = token_rewards(
                    &old[i],
                    refl.as_ref().map(|x| x[i].as_slice()),
                    cfg.beta,
                    r.reward,
                );
                let (a, ret) = gae(&rew, &old_values[i], cfg.gamma, cfg.lam);
                adv.push(a);
                returns.push(ret);
            }
            if let Some(rf) = &refl {
                // Mean per-token log ratio log pi_old - log pi_ref (the KL in the reward).
                kl_sum += old
                    .iter()
                    .zip(rf)
                    .flat_map(|(o, r)| o.iter().zip(r).map(|(a, b)| a - b))
                    .sum::<f64>();
            }
            micro.push(Micro { rows, old, old_values, adv, returns });
        }
        let tokens: f64 =
            micro.iter().flat_map(|m| m.adv.iter()).map(|a| a.len() as f64).sum::<f64>().max(1.0);
        let kl_mean = kl_sum / tokens;
        let all_returns: Vec<f64> =
            micro.iter().flat_map(|m| m.returns.iter().flatten().copied()).collect();
        let all_values: Vec<f64> =
            micro.iter().flat_map(|m| m.old_values.iter().flatten().copied()).collect();
        let resid: Vec<f64> = all_returns.iter().zip(&all_values).map(|(r, v)| r - v).collect();
        let var_r = variance(&all_returns);
        let explained_variance = if var_r > 0.0 { 1.0 - variance(&resid) / var_r } else { 0.0 };
        if cfg.whiten_advantages {
            let mut all: Vec<Vec<f64>> = micro.iter().flat_map(|m| m.adv.iter().cloned()).collect();
            whiten(&mut all);
            let mut it = all.into_iter();
            for m in micro.iter_mut() {
                for a in m.adv.iter_mut() {
                    *a = it.next().unwrap_or_default();
                }
            }
        }
        let prep_s = t_prep.elapsed().as_secs_f64();
        let mut stage_m = Map::new();
        stage_m.insert("reward_mean".into(), Value::from(mean(scores.iter().copied())));
        stage_m.insert("reward_std".into(), Value::from(variance(&scores).sqrt()));
        stage_m.insert(
            "accuracy".into(),
            Value::from(correct.iter().filter(|&&x| x >= 1.0).count() as f64 / n_all),
        );
        stage_m.insert("kl".into(), Value::from(kl_mean));
        stage_m.insert("returns_mean".into(), Value::from(mean(all_returns.iter().copied())));
        stage_m.insert("values_mean".into(), Value::from(mean(all_values.iter().copied())));
        stage_m.insert("explained_variance".into(), Value::from(explained_variance));
        stage_m.insert("completion_len_mean".into(), Value::from(lens.iter().sum::<f64>() / n_all));
        stage_m.insert(
            "completion_len_max".into(),
            Value::from(lens.iter().cloned().fold(0.0, f64::max)),
        );
        stage_m.insert(
            "truncated_frac".into(),
            Value::from(rollouts.iter().filter(|r| r.truncated).count() as f64 / n_all),
        );
        stage_m.insert("generation_seconds".into(), Value::from(gen_s));
        stage_m.insert("reward_seconds".into(), Value::from(reward_s));
        stage_m.insert("advantage_seconds".into(), Value::from(prep_s));
        stage_m.insert("generated_tokens".into(), Value::from(gstats.generated_tokens as u64));
        let n_rows: f64 = micro.iter().map(|m| m.rows.len() as f64).sum::<f64>().max(1.0);
        let weight = |m: &Micro| match cfg.loss_aggregation {
            LossAggregation::TokenMean => {
                m.adv.iter().map(|a| a.len() as f64).sum::<f64>() / tokens
            }
            _ => m.rows.len() as f64 / n_rows,
        };
        // --- mu epochs: critic update, then policy update, on the same micro-batches.
        for epoch in 0..cfg.mu {
            if tr.done() {
                break;
            }
            let t_train = std::time::Instant::now();
            let step = tr.step();
            let mut acc = GradAccumulator::new(&critic_opt);
            let (mut vloss, mut vclip) = (0.0, 0.0);
            for m in &micro {
                let (v, mask) = completion_values(&critic, &m.rows, pad, &device)?;
                let tc = v.dim(1)?;
                let out = value_loss(
                    &v,
                    &to_tensor(&m.old_values, tc, &device)?,
                    &to_tensor(&m.returns, tc, &device)?,
                    &mask,
                    cfg.value_clip,
                    cfg.vf_coef,
                )?;
                let w = m.adv.iter().map(|a| a.len() as f64).sum::<f64>() / tokens;
                match finite_loss(&out.loss, step) {
                    Ok(l) => vloss += l * w,
                    Err(e) => {
                        save_critic(&critic_opt, &tr.rng, &Map::new())?;
                        return Err(tr.save_last_good(e, Value::Null));
                    }
                }
                vclip += out.clip_frac * w;
                acc.add(critic.backward(&out.loss)?, w)?;
            }
            let mut grads = acc.take();
            let critic_norm = match grads.clip(c.max_grad_norm, step) {
                Ok(n) => n,
                Err(e @ Error::NonFinite { .. }) => {
                    save_critic(&critic_opt, &tr.rng, &Map::new())?;
                    return Err(tr.save_last_good(e, Value::Null));
                }
                Err(e) => return Err(e),
            };
            let critic_lr = critic_sched.lr_at(step);
            if !micro.is_empty() {
                critic_opt.step(&grads, critic_lr)?;
            }
            let n_micro = micro.len().max(1);
            let res = tr.train_step(n_micro, |model, _rng, i| {
                let Some(m) = micro.get(i) else {
                    let z = Tensor::zeros((), DType::F32, &device)?;
                    return Ok(MicroLoss { loss: z, weight: 1.0, metrics: Map::new() });
                };
                let (lp, mask) = completion_logprobs(model, &m.rows, pad, chunk, cfg.temperature, &device)?;
                let tc = lp.dim(1)?;
                let old = to_tensor(&m.old, tc, &device)?;
                let adv = to_tensor(&m.adv, tc, &device)?;
                let out = grpo::policy_loss(&lp, &old, None, &adv, &mask, &loss_cfg)?;
                let nlp = (lp.detach().neg()? * &mask)?.sum_all()?.to_scalar::<f32>()? as f64
                    / out.tokens.max(1.0);
                let mut mm = Map::new();
                mm.insert("clip_frac".into(), Value::from(out.clip_frac));
                mm.insert("entropy".into(), Value::from(nlp));
                Ok(MicroLoss { loss: out.loss, weight: weight(m), metrics: mm })
            });
            let mut m = match res {
                Ok(m) => m,
                Err(e @ Error::NonFinite { .. }) => {
                    save_critic(&critic_opt, &tr.rng, &Map::new())?;
                    return Err(tr.save_last_good(e, Value::Null));
                }
                Err(e) => return Err(e),
            };
            m.extend(stage_m.clone());
            m.insert("value_loss".into(), Value::from(vloss));
            m.insert("value_clip_frac".into(), Value::from(vclip));
            m.insert("critic_grad_norm".into(), Value::from(critic_norm));
            m.insert("critic_lr".into(), Value::from(critic_lr));
            let train_s = t_train.elapsed().as_secs_f64();
            m.insert("train_seconds".into(), Value::from(train_s));
            // The stage's generation and advantage time is counted once, at its first epoch.
            let stage_s = if epoch == 0 { stage_start.elapsed().as_secs_f64() } else { train_s };
            budget.add_stage(stage_s, epoch == 0);
            m.insert("train_wall_seconds".into(), Value::from(budget.spent));
            m.insert(
                "tokens_per_second".into(),
                Value::from(
                    gstats.generated_tokens as f64 / stage_start.elapsed().as_secs_f64().max(1e-9),
                ),
            );
            let step = tr.step();
            if tr.done() || (c.eval_every > 0 && step % c.eval_every == 0) {
                if let Some(acc) = eval_now(&tr)? {
                    m.insert("eval_greedy_acc".into(), Value::from(acc));
                }
            }
            tr.log(&m)?;
            progress(&StepReport { step, total: c.steps, metrics: m.clone() });
            let save = tr.done() || step % c.save_every == 0;
            if save {
                // Critic first: a run killed in between resumes from an older policy checkpoint,
                // whose critic checkpoint still exists.
                save_critic(&critic_opt, &tr.rng, &m)?;
                tr.save(serde_json::json!({ "train_wall_seconds": budget.spent }), &m)?;
            }
            budget.stepped(step, &m, save);
            last_m = m;
        }
    }
    // Stopped by the time budget: evaluate (unless just done) and save critic, then policy.
    if budget.will_save(&tr) {
        save_critic(&critic_opt, &tr.rng, &last_m)?;
    }
    let data = serde_json::json!({ "train_wall_seconds": budget.spent });
    budget.finish(&mut tr, data, &eval_now, &mut progress)?;
    samples.finish()?;
    tr.plot()?;
    Ok(tr.run_dir.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn gae_hand_values() {
        // gamma 1, lambda 0.95, rewards (0, 0, 1), values (0.5, 0.2, 0.4):
        // d = (-0.3, 0.2, 0.6); A2 = 0.6, A1 = 0.2 + 0.95 * 0.6 = 0.77, A0 = -0.3 + 0.95 * 0.77.
        let (a, r) = gae(&[0.0, 0.0, 1.0], &[0.5, 0.2, 0.4], 1.0, 0.95);
        let want = [-0.3 + 0.95 * 0.77, 0.77, 0.6];
        for (g, w) in a.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{a:?}");
        }
        for (g, w) in r.iter().zip([want[0] + 0.5, 0.97, 1.0]) {
            assert!((g - w).abs() < 1e-12, "{r:?}");
        }
        // lambda 1 gives Monte-Carlo returns whatever the values: gamma^k discounted.
        let (_, r) = gae(&[0.0, 0.0, 1.0], &[0.5, 0.2, 0.4], 0.9, 1.0);
        for (g, w) in r.iter().zip([0.81, 0.9, 1.0]) {
            assert!((g - w).abs() < 1e-12, "{r:?}");
        }
        // lambda 0: one-step TD errors.
        let (a, _) = gae(&[0.0, 0.0, 1.0], &[0.5, 0.2, 0.4], 1.0, 0.0);
        assert!((a[0] + 0.3).abs() < 1e-12 && (a[1] - 0.2).abs() < 1e-12);
    }

    #[test]
    fn kl_in_reward_and_whitening() {
        let r = token_rewards(&[-1.0, -2.0], Some(&[-1.5, -1.0]), 0.1, 1.0);
        assert!((r[0] + 0.05).abs() < 1e-12 && (r[1] - (0.1 + 1.0)).abs() < 1e-12, "{r:?}");
        assert_eq!(token_rewards(&[-1.0, -2.0], None, 0.1, 0.5), vec![0.0, 0.5]);
        let mut rows = vec![vec![1.0, 2.0], vec![3.0]];
        whiten(&mut rows);
        // mean 2, sample std 1.
        assert!(
            (rows[0][0] + 1.0).abs() < 1e-6
                && rows[0][1].abs() < 1e-6
                && (rows[1][0] - 1.0).abs() < 1e-6
        );
    }

    /// Clipped value loss on a 1x2 batch: token 0 (V 1, V_old 0.5, R 2) is clipped to 0.7, whose
    /// error 1.69 beats the unclipped 1 (and, saturated, passes no gradient); token 1 (V 0.5,
    /// V_old 0, R 0) keeps its unclipped 0.25 > 0.04. Loss = 0.5 * (1.69 + 0.25) / 2.
    #[test]
    fn value_loss_hand_values() {
        let dev = Device::Cpu;
        let v = Var::from_tensor(&Tensor::new(&[[1.0f32, 0.5]], &dev).unwrap()).unwrap();
        let old = Tensor::new(&[[0.5f32, 0.0]], &dev).unwrap();
        let ret = Tensor::new(&[[2.0f32, 0.0]], &dev).unwrap();
        let mask = Tensor::new(&[[1.0f32, 1.0]], &dev).unwrap();
        let out = value_loss(v.as_tensor(), &old, &ret, &mask, 0.2, 1.0).unwrap();
        let got = out.loss.to_scalar::<f32>().unwrap() as f64;
        assert!((got - 0.485).abs() < 1e-6, "{got}");
        assert!((out.clip_frac - 0.5).abs() < 1e-9);
        let g = out.loss.backward().unwrap();
        let g = g.get(v.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        assert!(g[0][0].abs() < 1e-7 && (g[0][1] - 0.25).abs() < 1e-6, "{g:?}");
        // No clipping and vf_coef 0.1: 0.1 * 0.5 * (1 + 0.25) / 2.
        let out = value_loss(v.as_tensor(), &old, &ret, &mask, 0.0, 0.1).unwrap();
        assert!((out.loss.to_scalar::<f32>().unwrap() as f64 - 0.03125).abs() < 1e-7);
        let bad = Tensor::zeros((1, 3), DType::F32, &dev).unwrap();
        let err = value_loss(v.as_tensor(), &old, &bad, &mask, 0.2, 1.0).err().unwrap().to_string();
        assert!(err.contains("`returns`"), "{err}");
    }
}
