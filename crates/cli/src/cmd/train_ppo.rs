//! `mathforge train ppo` and `mathforge train rm`: thin glue over `mathforge_train::ppo` (PPO with
//! a critic, DeepSeekMath §4.1 eq. 1-2) and `mathforge_train::rm` (outcome / process reward models,
//! §4.1.2-§4.1.3). As for every trainer, each long flag is also a key of `--config FILE.toml`,
//! flags override the file, and running the same command again resumes the run.
use super::train::{git_commit, overrides, reporter};
use crate::cmd::train::CommonArgs;
use clap::Args;
use mathforge_train::grpo::LossAggregation;
use mathforge_train::ppo::PpoConfig;
use mathforge_train::rm::{RmConfig, RmKind};
use serde::Serialize;

/// `--help` example of `train ppo`.
pub const PPO_EXAMPLE: &str = "\
Example:
  mathforge train ppo --init runs/tiny/sft/checkpoints/step-300 --out runs/tiny/ppo \\
    --train-data arith:split=train,steps=2,n=2000 --eval-data arith:split=heldout,steps=2,n=200 \\
    --questions-per-step 64 --beta 0.04 --gamma 1 --lam 0.95 --vf-coef 0.1 --lr 1e-5 --steps 100
  mathforge train ppo --config configs/train-tiny-ppo.toml --reward-model runs/tiny/rm/checkpoints/step-200";

/// `--help` example of `train rm`.
pub const RM_EXAMPLE: &str = "\
Example:
  # outcome RM on {\"prompt\", \"completion\", \"label\"} lines
  mathforge train rm --init runs/tiny/sft/checkpoints/step-300 --out runs/tiny/rm \\
    --train-file orm.jsonl --heldout-frac 0.1 --steps 200 --lr 1e-4
  # outcome RM from GRPO rollouts, re-graded by the strict verifier
  mathforge train rm --init runs/tiny/sft/checkpoints/step-300 --out runs/tiny/rm \\
    --from-samples runs/tiny/grpo/samples-0.jsonl --samples-task arith:split=train,steps=2,n=2000
  # process RM on {\"prompt\", \"steps\": [...], \"labels\": [...]} lines
  mathforge train rm --kind prm --init runs/tiny/sft/checkpoints/step-300 --out runs/tiny/prm \\
    --train-file prm.jsonl";

/// Flags of `train ppo`.
#[derive(Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PpoArgs {
    #[command(flatten)]
    #[serde(flatten)]
    common: CommonArgs,
    /// Training problems: arith:split=train,steps=2,n=2000 or a benchmark JSONL.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    train_data: Option<String>,
    /// Held-out problems for greedy accuracy.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_data: Option<String>,
    /// Held-out questions for greedy accuracy.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_questions: Option<usize>,
    /// Questions per exploration stage.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    questions_per_step: Option<usize>,
    /// Completions per question (1 in InstructGPT).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    samples_per_question: Option<usize>,
    /// PPO epochs per stage (each one optimizer step).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    mu: Option<usize>,
    /// Policy clip range.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    epsilon: Option<f64>,
    /// Value clip range around the old values (0: off).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    value_clip: Option<f64>,
    /// Value-loss coefficient.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    vf_coef: Option<f64>,
    /// KL-in-reward coefficient.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    beta: Option<f64>,
    /// Discount.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    gamma: Option<f64>,
    /// GAE lambda.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lam: Option<f64>,
    /// Whiten advantages over the stage.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    whiten_advantages: Option<bool>,
    /// token-mean, paper or dr-grpo.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    loss_aggregation: Option<LossAggregation>,
    /// Critic initial weights (default: --init; a reward model folder works).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    critic_init: Option<String>,
    /// Critic learning rate (default: --lr).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    critic_lr: Option<f64>,
    /// Outcome reward model folder scoring completions instead of the verifier.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    reward_model: Option<String>,
    /// Rollout temperature.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    /// Rollout top-p.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    /// Longest completion in tokens.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_len: Option<usize>,
    /// Wall-clock budget in minutes for sampling + updates (evaluations not counted; 0: none).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_minutes: Option<f64>,
}

/// Flags of `train rm`.
#[derive(Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RmArgs {
    #[command(flatten)]
    #[serde(flatten)]
    common: CommonArgs,
    /// orm (one label per completion) or prm (one label per step).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<RmKind>,
    /// Labelled JSONL: {prompt, completion, label} or {prompt, steps, labels}.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    train_file: Option<String>,
    /// Held-out JSONL (default: --heldout-frac of the training data).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_file: Option<String>,
    /// Fraction held out when there is no --eval-file.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    heldout_frac: Option<f64>,
    /// GRPO samples-N.jsonl or eval samples.jsonl to build ORM data from (verifier-graded).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    from_samples: Option<String>,
    /// The problems of --from-samples (arith:... or a benchmark JSONL).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    samples_task: Option<String>,
    /// Longest prompt + completion in tokens.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_len: Option<usize>,
}


/// Metrics shown on the progress bar.
const KEYS: &[&str] = &["loss", "value_loss", "reward_mean", "eval_auc", "eval_accuracy", "eval_greedy_acc"];

/// Run `mathforge train ppo`.
pub fn run_ppo(a: PpoArgs) -> anyhow::Result<()> {
    let cfg: PpoConfig =
        mathforge_train::config::resolve(a.common.config.as_deref(), overrides(&a)?)?;
    let (pb, f) = reporter(cfg.common.steps, "ppo", KEYS);
    let dir = mathforge_train::ppo::run(&cfg, git_commit(), f)?;
    pb.finish();
    println!("{}", dir.display());
    Ok(())
}

/// Run `mathforge train rm`.
pub fn run_rm(a: RmArgs) -> anyhow::Result<()> {
    let cfg: RmConfig =
        mathforge_train::config::resolve(a.common.config.as_deref(), overrides(&a)?)?;
    let (pb, f) = reporter(cfg.common.steps, "rm", KEYS);
    let dir = mathforge_train::rm::run(&cfg, git_commit(), f)?;
    pb.finish();
    println!("{}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(clap::Parser)]
    enum Wrap {
        Ppo(PpoArgs),
        Rm(RmArgs),
    }

    /// Config keys and long flags are the same set (DESIGN.md "Command line").
    #[test]
    fn config_keys_equal_long_flags() {
        let app = Wrap::command();
        for (verb, keys) in [
            ("ppo", mathforge_train::config::known_keys::<PpoConfig>()),
            ("rm", mathforge_train::config::known_keys::<RmConfig>()),
        ] {
            let sub = app.find_subcommand(verb).expect("verb exists");
            let flags: std::collections::BTreeSet<String> = sub
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_string))
                .filter(|l| l != "config" && l != "help")
                .collect();
            assert_eq!(flags, keys, "{verb}: flags vs config keys");
        }
    }
}
