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
use candle_core::{DType, Tensor, D};
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
}
