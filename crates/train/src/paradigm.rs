//! The unified paradigm of DeepSeekMath §5.2.1 (and Appendix A.1, Table 10): SFT, RFT, Online
//! RFT, DPO, PPO and GRPO are one gradient,
//!
//! ```text
//! grad J_A(theta) = E[(q, o) ~ D] ( 1/|o| sum_t GC_A(q, o, t, pi_rf) * grad log pi_theta(o_t | q, o_<t) )
//! ```
//!
//! differing only in the **data source** `D` (offline SFT data, samples of the SFT model, samples
//! of the current policy), the **reward function** (none, a rule = the verifier, a reward model)
//! and the **gradient coefficient** `GC_A`:
//!
//! | method | data source | reward | GC |
//! |---|---|---|---|
//! | SFT | q, o ~ P_sft(Q, O) | - | 1 |
//! | RFT | q ~ P_sft(Q), o ~ pi_sft(O\|q) | rule | I(o): 1 if o is correct else 0 (eq. 10) |
//! | Online RFT | q ~ P_sft(Q), o ~ pi_theta(O\|q) | rule | I(o) (eq. 10) |
//! | DPO | q ~ P_sft(Q), o+, o- ~ pi_sft(O\|q) | rule | o+: beta sigma(beta(h- - h+)), o-: minus that (eq. 14) |
//! | PPO | q ~ P_sft(Q), o ~ pi_theta(O\|q) | model | A_t (eq. 18, on-policy step: ratio 1, no clip) |
//! | GRPO | q ~ P_sft(Q), {o_i} ~ pi_theta(O\|q) | model | A_it + beta (pi_ref/pi_theta - 1) (eq. 21) |
//!
//! with `h = log pi_theta(o|q) - log pi_ref(o|q)` summed over the response tokens. Two departures
//! from the paper's notation, both to match the losses the trainers actually minimize: DPO's GC is
//! the exact gradient of the sequence-level DPO loss (Rafailov et al. 2023), so it keeps the factor
//! `beta` and uses sequence log-ratios where eq. 14 writes per-token ratios; the averaging `1/|o|`
//! is a weight tensor ([`paper_weights`], [`token_mean_weights`]) so each trainer's own averaging
//! (SFT's token mean, GRPO's sample-then-group mean) is reproduced exactly.
//!
//! [`unified_loss`] builds `-sum(w * GC.detach() * log pi)`, whose gradient is the formula above;
//! the tests check on small tensors that it equals the gradient of each method's own loss
//! (SFT/RFT NLL, [`crate::dpo::dpo_loss`], [`crate::grpo::policy_loss`]) under autograd.
use crate::trainer::{CommonConfig, StepReport};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, D};
use mathforge_model::tokenizer::Tokenizer;
use mathforge_model::Llama;
use mathforge_tasks::Task;
use serde::{Deserialize, Serialize};

/// A training method of the unified view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Supervised fine-tuning on the SFT data.
    Sft,
    /// Rejection-sampling fine-tuning: SFT on the correct samples of the SFT model.
    Rft,
    /// RFT whose samples come from the current policy at every step.
    OnlineRft,
    /// Direct preference optimization on (correct, incorrect) pairs of SFT-model samples.
    Dpo,
    /// PPO with a value model (critic) and GAE advantages.
    Ppo,
    /// Group relative policy optimization (§4.1): the baseline is the group mean.
    Grpo,
}

/// Where the training outputs `o` come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// Questions and outputs of the SFT dataset (`q, o ~ P_sft(Q, O)`).
    SftData,
    /// Outputs sampled once, before training, from the SFT model (`o ~ pi_sft(O|q)`): offline.
    SftModelSamples,
    /// Outputs sampled from the current policy during training (`o ~ pi_theta(O|q)`): online.
    PolicySamples,
}

/// What scores an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewardSource {
    /// No reward: every output is a target.
    None,
    /// A rule: the answer verifier (`mathforge-verify`, strict mode).
    Rule,
    /// A learned reward model (or the rule, which the paper's small runs also use).
    Model,
}

impl Method {
    /// All methods in the paper's order (Table 10).
    pub const ALL: [Method; 6] =
        [Method::Sft, Method::Rft, Method::Dpo, Method::OnlineRft, Method::Ppo, Method::Grpo];

    /// The name used on the command line (`mathforge train <name>`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Sft => "sft",
            Method::Rft => "rft",
            Method::OnlineRft => "online-rft",
            Method::Dpo => "dpo",
            Method::Ppo => "ppo",
            Method::Grpo => "grpo",
        }
    }

    /// Where its outputs come from.
    pub fn data_source(self) -> DataSource {
        match self {
            Method::Sft => DataSource::SftData,
            Method::Rft | Method::Dpo => DataSource::SftModelSamples,
            Method::OnlineRft | Method::Ppo | Method::Grpo => DataSource::PolicySamples,
        }
    }

    /// What rewards its outputs (Table 10).
    pub fn reward_source(self) -> RewardSource {
        match self {
            Method::Sft => RewardSource::None,
            Method::Rft | Method::OnlineRft | Method::Dpo => RewardSource::Rule,
            Method::Ppo | Method::Grpo => RewardSource::Model,
        }
    }

    /// True when the data comes from the policy being trained (§5.2.2 "online" vs "offline").
    pub fn is_online(self) -> bool {
        self.data_source() == DataSource::PolicySamples
    }

    /// The gradient coefficient, as a formula (for docs and reports).
    pub fn gc_formula(self) -> &'static str {
        match self {
            Method::Sft => "1",
            Method::Rft | Method::OnlineRft => "I(o) = 1 if o is correct else 0",
            Method::Dpo => "o+: beta*sigmoid(beta*(h- - h+)); o-: -beta*sigmoid(beta*(h- - h+))",
            Method::Ppo => "A_t (GAE advantage)",
            Method::Grpo => "A_it + beta*(pi_ref/pi_theta - 1)",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Method::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            format!("unknown method `{s}` (expected one of: {})", names.join(", "))
        })
    }
}

fn check_shape(name: &str, t: &Tensor, want: (usize, usize)) -> Result<()> {
    if t.dims() != [want.0, want.1] {
        return Err(Error::Msg(format!(
            "paradigm: `{name}` has shape {:?}, expected [{}, {}]",
            t.dims(),
            want.0,
            want.1
        )));
    }
    Ok(())
}

/// SFT's GC: 1 on every counted token (`mask`, `[B, T]`).
pub fn gc_sft(mask: &Tensor) -> Result<Tensor> {
    Ok(mask.ones_like()?.to_dtype(DType::F32)?)
}

/// RFT / Online RFT GC (eq. 10): `I(o)` per sample, broadcast over its `t` tokens → `[B, T]`.
pub fn gc_rft(correct: &[bool], t: usize, device: &candle_core::Device) -> Result<Tensor> {
    let v: Vec<f32> = correct.iter().map(|&c| if c { 1.0 } else { 0.0 }).collect();
    Ok(Tensor::from_vec(v, (correct.len(), 1), device)?
        .broadcast_as((correct.len(), t))?
        .contiguous()?)
}

/// DPO's per-sequence GC for `P` pairs from the summed response log-probs (`[P]` each) of the
/// policy and the reference: returns `(gc_chosen, gc_rejected)`, each `[P]`, with
/// `gc_chosen = beta * sigmoid(beta * (h_rejected - h_chosen))` and `gc_rejected = -gc_chosen`.
/// This is `-dL/dlog pi(o)` of the DPO loss, for every token of the sequence.
pub fn gc_dpo(
    beta: f64,
    policy_chosen: &Tensor,
    policy_rejected: &Tensor,
    ref_chosen: &Tensor,
    ref_rejected: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let hc = (policy_chosen.detach() - ref_chosen.detach())?;
    let hr = (policy_rejected.detach() - ref_rejected.detach())?;
    let x = ((hr - hc)? * beta)?;
    // sigmoid(x) = 1 / (1 + e^-x)
    let s = (x.neg()?.exp()? + 1.0)?.recip()?;
    let gc = (s * beta)?;
    Ok((gc.clone(), gc.neg()?))
}

/// PPO's GC on its on-policy step (ratio 1, inside the clip range): the advantage itself.
pub fn gc_ppo(adv: &Tensor) -> Result<Tensor> {
    Ok(adv.detach())
}

/// GRPO's GC (eq. 21): `A_it + beta * (pi_ref / pi_theta - 1)`, from the advantages and the
/// per-token log-probs of the policy and the reference (`[B, T]` each).
pub fn gc_grpo(adv: &Tensor, logp: &Tensor, ref_logp: &Tensor, beta: f64) -> Result<Tensor> {
    let dims = adv.dims2()?;
    check_shape("logp", logp, dims)?;
    check_shape("ref_logp", ref_logp, dims)?;
    let ratio = (ref_logp.detach() - logp.detach())?.exp()?;
    Ok((adv.detach() + ((ratio - 1.0)? * beta)?)?)
}

/// The averaging of equation 3 / Table 10 as weights: `mask / (|o_i| * live samples)`, i.e. the
/// mean over each sample's tokens, then over the samples that have any token.
pub fn paper_weights(mask: &Tensor) -> Result<Tensor> {
    let len = mask.sum_keepdim(D::Minus1)?.clamp(1.0, f64::MAX)?;
    let live = mask.max(D::Minus1)?.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64;
    Ok((mask.broadcast_div(&len)? / live)?)
}

/// Token-mean weights: `mask / (number of counted tokens)` (SFT's loss).
pub fn token_mean_weights(mask: &Tensor) -> Result<Tensor> {
    let n = mask.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64;
    Ok((mask / n)?)
}

/// `-sum(weights * GC * log pi)` with GC and weights detached: the surrogate whose gradient with
/// respect to `logp` is the unified gradient `-weights * GC`.
pub fn unified_loss(logp: &Tensor, gc: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let dims = logp.dims2()?;
    check_shape("gc", gc, dims)?;
    check_shape("weights", weights, dims)?;
    Ok((gc.detach() * weights.detach())?.mul(logp)?.sum_all()?.neg()?)
}

/// A markdown rendering of Table 10 from [`Method`] (kept in docs/train.md).
pub fn table_markdown() -> String {
    let mut s = String::from("| method | data source | reward | online | gradient coefficient |\n|---|---|---|---|---|\n");
    for m in Method::ALL {
        let src = match m.data_source() {
            DataSource::SftData => "SFT dataset",
            DataSource::SftModelSamples => "samples of the SFT model",
            DataSource::PolicySamples => "samples of the current policy",
        };
        let rw = match m.reward_source() {
            RewardSource::None => "-",
            RewardSource::Rule => "rule (verifier)",
            RewardSource::Model => "model (or rule)",
        };
        s.push_str(&format!(
            "| {} | {src} | {rw} | {} | {} |\n",
            m.name(),
            if m.is_online() { "yes" } else { "no" },
            m.gc_formula()
        ));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Data sources: the pieces RFT, Online RFT and DPO share (sampling a model on a task's questions,
// rewarding with the strict verifier, and response log-probs under a model).

/// The shared settings' defaults of the methods that start from an SFT model (GRPO, PPO,
/// RFT, Online RFT and DPO, so they compare on equal terms): constant rate 1e-5, no warmup
/// or weight decay, a checkpoint every 20 steps and an evaluation every 10.
pub fn rl_common() -> CommonConfig {
    CommonConfig {
        lr: 1e-5,
        schedule: crate::schedule::ScheduleKind::Constant,
        warmup_steps: 0,
        weight_decay: 0.0,
        save_every: 20,
        eval_every: 10,
        ..Default::default()
    }
}

/// The run's tokenizer (`tokenizer`, else the `init` folder).
pub fn load_tokenizer(common: &CommonConfig) -> Result<Tokenizer> {
    let p = common.tokenizer_path()?;
    if p.is_dir() { Tokenizer::from_dir(&p) } else { Tokenizer::from_file(&p) }
        .map_err(|e| Error::Msg(format!("tokenizer {}: {e}", p.display())))
}

/// The run's *initial* model, inference only: the `init` folder, or the seeded random init of
/// `model-config`. Unlike [`crate::trainer::Trainer::open`]'s model this never holds resumed
/// weights, so it is the SFT model `pi_sft` (the sampler of offline data and DPO's reference)
/// whether the run is fresh or resumed.
pub fn initial_model(common: &CommonConfig, device: &Device) -> Result<Llama> {
    let dtype = common.dtype()?;
    let m = match (&common.init, &common.model_config) {
        (Some(dir), _) => mathforge_model::checkpoint::load(dir, dtype, device),
        (None, Some(file)) => {
            // Frozen: `init_model` returns trainable `Var`s, and a forward through those would
            // build (and hold, until its output is dropped) a whole autograd graph.
            let (model, varmap) = mathforge_model::Config::from_file(file)
                .and_then(|c| mathforge_model::checkpoint::init_model(&c, common.seed, dtype, device))
                .map_err(|e| Error::Msg(format!("initial model: {e}")))?;
            return crate::heads::frozen_llama(&model, &varmap, device);
        }
        _ => {
            return Err(Error::Config {
                file: "<resolved>".into(),
                msg: "`init` or `model-config` is required".into(),
            })
        }
    };
    m.map_err(|e| Error::Msg(format!("initial model: {e}")))
}

/// One sampled response with its verifier reward.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Index of the question in the task.
    pub example: usize,
    /// Prompt ids (chat format, with BOS).
    pub prompt_ids: Vec<u32>,
    /// Response ids as sampled (EOS included when the model emitted it).
    pub response_ids: Vec<u32>,
    /// Response text (special tokens skipped).
    pub text: String,
    /// Strict verifier reward: 1 correct, 0 not.
    pub reward: f64,
    /// Stopped at the length limit.
    pub truncated: bool,
}

impl Sample {
    /// `I(o)`: the answer is correct.
    pub fn correct(&self) -> bool {
        self.reward >= 1.0
    }
}

/// A sample for unit tests: one prompt and one response token, `text` rewarded `reward`.
#[cfg(test)]
pub(crate) fn test_sample(example: usize, text: &str, reward: f64) -> Sample {
    Sample {
        example,
        prompt_ids: vec![1],
        response_ids: vec![5],
        text: text.into(),
        reward,
        truncated: false,
    }
}

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSettings {
    /// Samples per question.
    pub k: usize,
    /// Temperature.
    pub temperature: f32,
    /// Nucleus threshold.
    pub top_p: f32,
    /// Longest response in tokens.
    pub max_new_tokens: usize,
    /// Base seed (chunk `c` uses `seed + c`).
    pub seed: u64,
}

/// Sample `s.k` responses to each of the task's questions `examples` with `model` (the model
/// crate's batched KV-cache sampler) and reward them with the task's strict verifier. Questions go
/// `chunk` at a time; `progress(done, total)` is called after each chunk. Returns the samples
/// grouped by question and the number of generated tokens.
pub fn sample_and_reward(
    model: &Llama,
    tok: &Tokenizer,
    task: &dyn Task,
    examples: &[usize],
    s: &SampleSettings,
    chunk: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<(Vec<Vec<Sample>>, usize)> {
    let mut out = Vec::with_capacity(examples.len());
    let mut generated = 0;
    for (ci, qs) in examples.chunks(chunk.max(1)).enumerate() {
        let prompts = qs
            .iter()
            .map(|&i| {
                tok.encode(&mathforge_model::chat::prompt(&task.examples()[i].question), true)
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Msg(e.to_string()))?;
        let params = mathforge_model::sampling::SamplingParams {
            temperature: s.temperature,
            top_p: s.top_p,
            max_new_tokens: s.max_new_tokens,
            n: s.k,
            seed: s.seed.wrapping_add(ci as u64),
            ..Default::default()
        };
        let opts =
            mathforge_model::generate::GenerateOptions { max_batch: 256, ..Default::default() };
        let (groups, stats) =
            mathforge_model::generate::generate(model, tok, &prompts, &params, &opts, |_| {})
                .map_err(|e| Error::Msg(e.to_string()))?;
        generated += stats.generated_tokens;
        for ((g, &qi), prompt) in groups.into_iter().zip(qs).zip(&prompts) {
            let ex = &task.examples()[qi];
            out.push(
                g.into_iter()
                    .map(|c| Sample {
                        example: qi,
                        prompt_ids: prompt.clone(),
                        reward: task.reward(ex, &c.text) as f64,
                        truncated: c.finish_reason
                            == mathforge_model::sampling::FinishReason::Length,
                        response_ids: c.token_ids,
                        text: c.text,
                    })
                    .collect(),
            );
        }
        progress(out.len(), examples.len());
    }
    Ok((out, generated))
}

/// Per-token log-probs of each row's response (`(prompt ids, response ids)`, response non-empty)
/// under `model`: `[B, Tr]` (right-padded with 0) and the response mask `[B, Tr]`. One forward
/// pass over prompt + response; differentiable unless the caller detaches.
pub fn response_logprobs(
    model: &Llama,
    rows: &[(&[u32], &[u32])],
    pad: u32,
    chunk: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    if let Some(i) = rows.iter().position(|(p, r)| p.is_empty() || r.is_empty()) {
        return Err(Error::Msg(format!(
            "response_logprobs: row {i} has an empty prompt or response"
        )));
    }
    let seqs: Vec<Vec<u32>> = rows.iter().map(|(p, r)| [*p, *r].concat()).collect();
    let (ids, am) = crate::trainer::pad_batch(&seqs, pad, device)?;
    let t = ids.dim(1)?;
    let lp = mathforge_model::logprob::token_logprobs(
        model,
        &ids.narrow(1, 0, t - 1)?,
        Some(&am.narrow(1, 0, t - 1)?),
        &ids.narrow(1, 1, t - 1)?,
        chunk,
    )
    .map_err(|e| Error::Msg(e.to_string()))?
    .to_dtype(DType::F32)?;
    let tr = rows.iter().map(|(_, r)| r.len()).max().unwrap_or(1);
    let mut parts = Vec::with_capacity(rows.len());
    let mut mask = vec![0f32; rows.len() * tr];
    for (b, (p, r)) in rows.iter().enumerate() {
        // Target position j predicts ids[j + 1], so the response starts at target p - 1.
        let row = lp.narrow(0, b, 1)?.narrow(1, p.len() - 1, r.len())?;
        parts.push(if r.len() < tr { row.pad_with_zeros(1, 0, tr - r.len())? } else { row });
        mask[b * tr..b * tr + r.len()].iter_mut().for_each(|m| *m = 1.0);
    }
    Ok((Tensor::cat(&parts, 0)?, Tensor::from_vec(mask, (rows.len(), tr), device)?))
}

/// The questions of a task with `n` examples that offline data is sampled for: all of them
/// (`limit` 0), or a random subset of `limit` drawn from `seed`.
pub fn question_subset(n: usize, limit: usize, seed: u64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    if limit == 0 || limit >= n {
        return all;
    }
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    all.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5_u64.rotate_left(40)));
    all.truncate(limit);
    all
}

/// The training problems of an offline or online method (`train-data`: an `arith:` spec or a
/// benchmark JSONL); an empty task is a config error.
pub fn open_train_task(spec: &str) -> Result<Box<dyn Task>> {
    let t = crate::grpo::open_task(spec)?;
    if t.examples().is_empty() {
        return Err(Error::Config {
            file: "<resolved>".into(),
            msg: format!("`train-data` {spec} has no problems"),
        });
    }
    Ok(t)
}

/// The offline data source of RFT and DPO (`q ~ P_sft(Q), o ~ pi_sft(O|q)`): `s.k` samples of
/// `model` (the SFT model) for each question of `task`'s seeded subset of `sample_questions`
/// ([`question_subset`] with the run's seed; 0: all), rewarded by the verifier, 64 questions a
/// chunk. After each chunk `progress` gets a step-0 report with `sampled_questions` and
/// `total_questions`. Returns the samples grouped by question and the generated token count.
pub fn sample_offline(
    model: &Llama,
    tok: &Tokenizer,
    task: &dyn Task,
    sample_questions: usize,
    common: &CommonConfig,
    s: &SampleSettings,
    progress: &mut impl FnMut(&StepReport),
) -> Result<(Vec<Vec<Sample>>, usize)> {
    let examples = question_subset(task.examples().len(), sample_questions, common.seed);
    sample_and_reward(model, tok, task, &examples, s, 64, |done, total| {
        let mut m = serde_json::Map::new();
        m.insert("sampled_questions".into(), serde_json::Value::from(done));
        m.insert("total_questions".into(), serde_json::Value::from(total));
        progress(&StepReport { step: 0, total: common.steps, metrics: m });
    })
}

/// `eval_greedy_acc` of RFT, Online RFT and DPO: the greedy accuracy of the current policy on
/// `questions` problems of the held-out `task` with responses of at most `max_len` tokens
/// ([`crate::grpo::greedy_accuracy`]); `None` without a held-out task.
pub fn greedy_eval<'a>(
    task: Option<&'a dyn Task>,
    tok: &'a Tokenizer,
    questions: usize,
    max_len: usize,
) -> impl Fn(&crate::trainer::Trainer) -> Result<Option<f64>> + 'a {
    move |tr| {
        task.map(|t| crate::grpo::greedy_accuracy(&tr.model, tok, t, questions, max_len))
            .transpose()
    }
}

/// Data position of RFT and DPO, saved in their checkpoints as
/// `{"epoch", "index", "train_wall_seconds"}`: epoch and index into that epoch's order
/// ([`crate::sft::EpochCursor`]) and the seconds of the time budget used ([`Budget`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OfflinePos {
    /// Epoch.
    pub epoch: u64,
    /// Next index in the epoch's order.
    pub index: usize,
    /// Seconds of the time budget used (absent in runs saved before the budget existed).
    #[serde(default)]
    pub train_wall_seconds: f64,
}

/// A wall-clock budget (`max-minutes`) with the semantics of GRPO's: sampling and updates count,
/// held-out evaluations do not; the seconds used are stored in the checkpoint's data position
/// (`train_wall_seconds`), so a resumed run continues the same budget. Lets RFT, Online RFT and
/// DPO be compared with GRPO "on the same budget".
#[derive(Debug, Clone)]
pub struct Budget {
    limit: Option<f64>,
    /// Seconds used so far (this run and the runs it resumes).
    pub spent: f64,
    saved_step: Option<u64>,
    last: serde_json::Map<String, serde_json::Value>,
    /// Seconds of the last exploration stage (GRPO/PPO), the estimate of the next one.
    last_stage: f64,
}

impl Budget {
    /// A budget of `max_minutes` (0: none) for `tr`, continuing a resumed run's.
    pub fn new(max_minutes: f64, tr: &crate::trainer::Trainer) -> Budget {
        let spent = tr
            .resumed_data
            .get("train_wall_seconds")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        Budget::resumed(max_minutes, spent, tr.step())
    }

    /// A budget of `max_minutes` (0: none) of which `spent` seconds were used by the run that
    /// saved step `step` (0: a fresh run).
    pub fn resumed(max_minutes: f64, spent: f64, step: u64) -> Budget {
        Budget {
            limit: (max_minutes > 0.0).then_some(max_minutes * 60.0),
            spent,
            saved_step: (step > 0).then_some(step),
            last: serde_json::Map::new(),
            last_stage: 0.0,
        }
    }

    /// True when the budget is spent (never without a limit).
    pub fn exhausted(&self) -> bool {
        self.limit.is_some_and(|l| self.spent >= l)
    }

    /// Count `seconds` of sampling or training.
    pub fn add(&mut self, seconds: f64) {
        self.spent += seconds;
    }

    /// GRPO's and PPO's rule for an exploration stage (sampling, rewards and `mu` updates): start
    /// it only if, taking as long as the previous stage, it ends within the budget, so "at most N
    /// minutes" holds instead of "N minutes plus one stage" (the tiny GRPO run overshot 600 s by
    /// 7.8 s before). The first stage always starts unless the budget is already spent.
    pub fn fits_next_stage(&self) -> bool {
        !self.limit.is_some_and(|l| self.spent + self.last_stage > l)
    }

    /// Count `seconds` of an exploration stage: `first` for its first update (which includes the
    /// stage's sampling), `false` for each further update of the same stage.
    pub fn add_stage(&mut self, seconds: f64, first: bool) {
        self.spent += seconds;
        self.last_stage = if first { seconds } else { self.last_stage + seconds };
    }

    /// True when [`Budget::finish`] will save a checkpoint (a budget-ended run whose last step
    /// was not saved): trainers with a second model (PPO's critic) save it first.
    pub fn will_save(&self, tr: &crate::trainer::Trainer) -> bool {
        !tr.done() && self.saved_step != Some(tr.step())
    }

    /// The end of an optimizer step of RFT, Online RFT and DPO, in GRPO's order: count the
    /// step's `seconds`, add `train_wall_seconds` to its metrics `m`, add `eval_greedy_acc` every
    /// `eval-every` steps and at the last, log and report them, and save every `save-every` steps
    /// and at the last with the data position `data(spent)` (called every step, so a position
    /// that carries the seconds spent is current for [`Budget::finish`] too).
    pub fn end_step(
        &mut self,
        tr: &mut crate::trainer::Trainer,
        seconds: f64,
        mut m: serde_json::Map<String, serde_json::Value>,
        data: impl FnOnce(f64) -> serde_json::Value,
        eval_now: &dyn Fn(&crate::trainer::Trainer) -> Result<Option<f64>>,
        progress: &mut dyn FnMut(&StepReport),
    ) -> Result<()> {
        self.add(seconds);
        let data = data(self.spent);
        m.insert("train_wall_seconds".into(), serde_json::Value::from(self.spent));
        let (step, every) = (tr.step(), tr.cfg.eval_every);
        if tr.done() || (every > 0 && step.is_multiple_of(every)) {
            if let Some(acc) = eval_now(tr)? {
                m.insert("eval_greedy_acc".into(), serde_json::Value::from(acc));
            }
        }
        tr.log(&m)?;
        progress(&StepReport { step, total: tr.cfg.steps, metrics: m.clone() });
        let save = tr.done() || step.is_multiple_of(tr.cfg.save_every);
        if save {
            tr.save(data, &m)?;
        }
        self.stepped(step, &m, save);
        Ok(())
    }

    /// Record the metrics logged for `step` and whether a checkpoint of it was saved.
    pub fn stepped(
        &mut self,
        step: u64,
        m: &serde_json::Map<String, serde_json::Value>,
        saved: bool,
    ) {
        self.last = m.clone();
        if saved {
            self.saved_step = Some(step);
        }
    }

    /// After the step loop: when the budget (not `steps`) ended the run, log a held-out
    /// evaluation of the final weights unless its last step had one (and unless no step ran in
    /// this invocation: a rerun of a spent run logs nothing), and save a checkpoint with data
    /// position `data` unless the last step was saved.
    pub fn finish(
        &mut self,
        tr: &mut crate::trainer::Trainer,
        data: serde_json::Value,
        eval_now: &dyn Fn(&crate::trainer::Trainer) -> Result<Option<f64>>,
        progress: &mut dyn FnMut(&crate::trainer::StepReport),
    ) -> Result<()> {
        let step = tr.step();
        if tr.done() {
            return Ok(());
        }
        tracing::info!(step, spent = self.spent, "time budget spent");
        if !self.last.is_empty() && !self.last.contains_key("eval_greedy_acc") {
            if let Some(acc) = eval_now(tr)? {
                let mut m = serde_json::Map::new();
                m.insert("eval_greedy_acc".into(), serde_json::Value::from(acc));
                tr.log(&m)?;
                progress(&crate::trainer::StepReport {
                    step,
                    total: tr.cfg.steps,
                    metrics: m.clone(),
                });
                self.last.extend(m);
            }
        }
        if self.saved_step != Some(step) {
            let last = self.last.clone();
            tr.save(data, &last)?;
            self.saved_step = Some(step);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpo::{policy_loss, LossAggregation, LossConfig};
    use candle_core::{Device, Var};

    /// Offline sampling (RFT's and DPO's data source) on a tiny random model: `k` samples for
    /// each question of the seeded subset, in its order, rewarded, and a step-0 progress report
    /// per chunk of 64 questions; an empty task is refused by name.
    #[test]
    fn sample_offline_covers_the_question_subset_and_reports_progress() {
        let task = open_train_task("arith:split=train,steps=1,n=70").unwrap();
        let texts: Vec<String> = task
            .examples()
            .iter()
            .map(|e| format!("{} #### {}", e.question, e.reference))
            .collect();
        let tok = mathforge_model::tokenizer::train_bpe(
            texts.iter().map(String::as_str),
            &mathforge_model::tokenizer::BpeTrainConfig { vocab_size: 300, ..Default::default() },
        )
        .unwrap();
        let cfg = mathforge_model::Config::from_json_str(&format!(
            r#"{{"model_type": "llama", "hidden_size": 16, "intermediate_size": 32,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
            "vocab_size": {}, "max_position_embeddings": 128, "bos_token_id": 0,
            "eos_token_id": 1}}"#,
            tok.vocab_size()
        ))
        .unwrap();
        let dev = Device::Cpu;
        let (model, _) =
            mathforge_model::checkpoint::init_model(&cfg, 3, DType::F32, &dev).unwrap();
        let common = CommonConfig { seed: 11, steps: 5, ..Default::default() };
        let s = SampleSettings { k: 2, temperature: 1.0, top_p: 1.0, max_new_tokens: 3, seed: 9 };
        let mut reports = vec![];
        let (groups, generated) =
            sample_offline(&model, &tok, task.as_ref(), 66, &common, &s, &mut |r: &StepReport| {
                reports.push((r.step, r.total, r.metrics.clone()))
            })
            .unwrap();
        let want = question_subset(70, 66, 11);
        assert_eq!(groups.iter().map(|g| g[0].example).collect::<Vec<_>>(), want);
        assert!(groups.iter().all(|g| g.len() == 2 && g.iter().all(|x| x.example == g[0].example)));
        assert!(generated > 0 && generated <= 66 * 2 * 3);
        let done: Vec<(u64, u64, Option<u64>, Option<u64>)> = reports
            .iter()
            .map(|(step, total, m)| {
                let get = |k: &str| m.get(k).and_then(serde_json::Value::as_u64);
                (*step, *total, get("sampled_questions"), get("total_questions"))
            })
            .collect();
        assert_eq!(done, vec![(0, 5, Some(64), Some(66)), (0, 5, Some(66), Some(66))]);
        let err = open_train_task("arith:split=train,steps=1,n=0").err().unwrap().to_string();
        assert!(
            err.contains("`train-data` arith:split=train,steps=1,n=0 has no problems"),
            "{err}"
        );
    }

    /// RFT, Online RFT and DPO start from GRPO's shared defaults (DPO with larger batches), so
    /// the methods of Table 10 compare on equal terms.
    #[test]
    fn rl_defaults_follow_grpo() {
        assert_eq!(crate::grpo::GrpoConfig::default().common, rl_common());
        assert_eq!(crate::rft::RftConfig::default().common, rl_common());
        let dpo = CommonConfig { batch_size: 16, micro_batch_size: 8, ..rl_common() };
        assert_eq!(crate::dpo::DpoConfig::default().common, dpo);
        assert_eq!(rl_common().lr, 1e-5);
    }

    /// RFT and DPO checkpoints store the position as this JSON: resuming existing runs (also
    /// those saved before the time budget) depends on it.
    #[test]
    fn offline_position_json_is_stable() {
        let p = OfflinePos { epoch: 3, index: 1, train_wall_seconds: 2.5 };
        let text = r#"{"epoch":3,"index":1,"train_wall_seconds":2.5}"#;
        assert_eq!(serde_json::to_string(&p).unwrap(), text);
        assert_eq!(serde_json::from_str::<OfflinePos>(text).unwrap(), p);
        let old: OfflinePos = serde_json::from_str(r#"{"epoch":3,"index":1}"#).unwrap();
        assert_eq!(old, OfflinePos { train_wall_seconds: 0.0, ..p });
    }

    /// A stage starts only when, lasting as long as the previous one, it ends within the budget.
    #[test]
    fn stage_look_ahead() {
        let mut b = Budget::resumed(1.0, 0.0, 0);
        assert!(b.fits_next_stage(), "the first stage starts");
        b.add_stage(25.0, true);
        b.add_stage(5.0, false);
        // 30 s spent, the last stage took 30 s: a second one ends at 60 s, within the minute.
        assert!(b.fits_next_stage());
        b.add_stage(31.0, true);
        assert!(!b.fits_next_stage(), "61 s spent");
        let mut b = Budget::resumed(1.0, 40.0, 3);
        assert!(b.fits_next_stage(), "resumed: no stage measured yet");
        b.add_stage(15.0, true);
        assert!(!b.fits_next_stage(), "55 + 15 > 60");
        assert!(!b.exhausted(), "the plain rule would start it");
        assert!(Budget::resumed(0.0, 1e9, 0).fits_next_stage(), "no limit");
    }

    fn t2(v: &[[f32; 3]; 2]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }
    fn grad_of(loss: &Tensor, v: &Var) -> Vec<Vec<f32>> {
        loss.backward().unwrap().get(v.as_tensor()).unwrap().to_vec2::<f32>().unwrap()
    }
    fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>]) {
        for (ra, rb) in a.iter().zip(b) {
            for (x, y) in ra.iter().zip(rb) {
                assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn table_and_names() {
        assert_eq!(Method::Rft.data_source(), DataSource::SftModelSamples);
        assert!(Method::OnlineRft.is_online() && !Method::Dpo.is_online());
        assert_eq!("online-rft".parse::<Method>().unwrap(), Method::OnlineRft);
        assert!("rlhf".parse::<Method>().unwrap_err().contains("online-rft"));
        let md = table_markdown();
        assert_eq!(md.lines().count(), 8);
        assert!(md.contains("| grpo | samples of the current policy |"));
    }

    /// SFT: the mean NLL over response tokens has the gradient of GC = 1 with token-mean weights.
    #[test]
    fn sft_gc_matches_nll_gradient() {
        let lp = Var::from_tensor(&t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.2, -4.0]])).unwrap();
        let mask = t2(&[[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        let own =
            ((lp.as_tensor() * &mask).unwrap().sum_all().unwrap().neg().unwrap() / 4.0).unwrap();
        let uni = unified_loss(
            lp.as_tensor(),
            &gc_sft(&mask).unwrap(),
            &token_mean_weights(&mask).unwrap(),
        )
        .unwrap();
        assert_close(&grad_of(&own, &lp), &grad_of(&uni, &lp));
        // Same value too: the surrogate is the loss when GC is constant.
        let (a, b) = (own.to_scalar::<f32>().unwrap(), uni.to_scalar::<f32>().unwrap());
        // (2 + 0.5 + 0.3 + 1.2) / 4 = 1.
        assert!((a - b).abs() < 1e-6 && (a - 1.0).abs() < 1e-6, "{a} {b}");
    }

    /// RFT: SFT on only the correct samples = GC I(o) on all samples. With the paper's averaging
    /// (over all G samples) the incorrect ones count in the denominator.
    #[test]
    fn rft_gc_matches_filtered_nll_gradient() {
        let lp = Var::from_tensor(&t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.2, -4.0]])).unwrap();
        let mask = t2(&[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        // Only sample 0 is correct: its own loss is SFT on row 0 alone, averaged like eq. 10.
        let row0 = lp.as_tensor().narrow(0, 0, 1).unwrap();
        let own = (row0.sum_all().unwrap().neg().unwrap() / 6.0).unwrap();
        let gc = gc_rft(&[true, false], 3, &Device::Cpu).unwrap();
        let uni = unified_loss(lp.as_tensor(), &gc, &paper_weights(&mask).unwrap()).unwrap();
        let g = grad_of(&uni, &lp);
        assert_close(&grad_of(&own, &lp), &g);
        assert_eq!(g[1], vec![0.0; 3], "incorrect sample: GC 0, no gradient");
    }

    /// DPO: the gradient of -log sigmoid(beta*((pw-rw)-(pl-rl))) wrt each token log-prob equals
    /// the unified surrogate's with [`gc_dpo`]'s sequence coefficients.
    #[test]
    fn dpo_gc_matches_dpo_loss_gradient() {
        // Rows 0,1: chosen of pairs 0,1; rows 2,3: rejected.
        let lp = Var::from_tensor(
            &Tensor::new(
                &[
                    [-1.0f32, -2.0, -0.5],
                    [-0.3, -1.2, -4.0],
                    [-0.7, -0.1, -2.0],
                    [-3.0, -0.2, -0.9],
                ],
                &Device::Cpu,
            )
            .unwrap(),
        )
        .unwrap();
        let mask = Tensor::new(
            &[[1.0f32, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]],
            &Device::Cpu,
        )
        .unwrap();
        let ref_sum = Tensor::new(&[-3.0f32, -1.0, -2.5, -4.5], &Device::Cpu).unwrap();
        let beta = 0.3;
        let seq = (lp.as_tensor() * &mask).unwrap().sum(D::Minus1).unwrap();
        let (pc, pr) = (seq.narrow(0, 0, 2).unwrap(), seq.narrow(0, 2, 2).unwrap());
        let (rc, rr) = (ref_sum.narrow(0, 0, 2).unwrap(), ref_sum.narrow(0, 2, 2).unwrap());
        let own = crate::dpo::dpo_loss(&pc, &pr, &rc, &rr, beta).unwrap().loss;
        let (gw, gl) = gc_dpo(beta, &pc, &pr, &rc, &rr).unwrap();
        let gc =
            Tensor::cat(&[gw, gl], 0).unwrap().unsqueeze(1).unwrap().broadcast_as((4, 3)).unwrap();
        // Mean over the 2 pairs, sum over tokens: weight mask / 2.
        let uni = unified_loss(lp.as_tensor(), &gc.contiguous().unwrap(), &(&mask / 2.0).unwrap())
            .unwrap();
        assert_close(&grad_of(&own, &lp), &grad_of(&uni, &lp));
    }

    /// GRPO: eq. 21's GC with the paper's averaging gives the gradient of the GRPO loss on the
    /// first update of an exploration stage (pi_old = pi_theta).
    #[test]
    fn grpo_gc_matches_policy_loss_gradient() {
        let lp = Var::from_tensor(&t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.2, 0.0]])).unwrap();
        let refp = t2(&[[-1.5, -2.0, -0.4], [-0.3, -1.0, 0.0]]);
        let adv = t2(&[[1.0, 1.0, 1.0], [-0.5, -0.5, 0.0]]);
        let mask = t2(&[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        let cfg = LossConfig { beta: 0.04, ..Default::default() };
        let old = lp.as_tensor().detach();
        let own = policy_loss(lp.as_tensor(), &old, Some(&refp), &adv, &mask, &cfg).unwrap().loss;
        let gc = gc_grpo(&adv, lp.as_tensor(), &refp, 0.04).unwrap();
        let uni = unified_loss(lp.as_tensor(), &gc, &paper_weights(&mask).unwrap()).unwrap();
        assert_close(&grad_of(&own, &lp), &grad_of(&uni, &lp));
    }

    /// PPO's on-policy step: the clipped surrogate (no KL term in the loss: PPO puts it in the
    /// reward) has the gradient of GC = A with token-mean weights.
    #[test]
    fn ppo_gc_matches_surrogate_gradient() {
        let lp = Var::from_tensor(&t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.2, 0.0]])).unwrap();
        let adv = t2(&[[0.7, -0.2, 1.5], [-0.5, 0.3, 0.0]]);
        let mask = t2(&[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        let cfg =
            LossConfig { beta: 0.0, aggregation: LossAggregation::TokenMean, ..Default::default() };
        let old = lp.as_tensor().detach();
        let own = policy_loss(lp.as_tensor(), &old, None, &adv, &mask, &cfg).unwrap().loss;
        let uni = unified_loss(
            lp.as_tensor(),
            &gc_ppo(&adv).unwrap(),
            &token_mean_weights(&mask).unwrap(),
        )
        .unwrap();
        assert_close(&grad_of(&own, &lp), &grad_of(&uni, &lp));
    }

    #[test]
    fn shapes_are_checked() {
        let a = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap();
        let err = unified_loss(&a, &b, &a).unwrap_err().to_string();
        assert!(err.contains("`gc`"), "{err}");
        let err = gc_grpo(&a, &a, &b, 0.1).unwrap_err().to_string();
        assert!(err.contains("`ref_logp`"), "{err}");
    }
}
