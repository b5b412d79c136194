//! `mathforge train pretrain|sft|grpo`: thin glue over `mathforge-train`. Every long flag is also a
//! key of the `--config FILE.toml` file (same spelling); flags override the file; the resolved
//! config is written to `<out>/config.toml`. Running the same command again resumes the run from
//! its newest checkpoint.
use anyhow::Context;
use clap::{Args, Subcommand};
use mathforge_train::grpo::{GrpoConfig, LossAggregation, RewardScaling, Supervision};
use mathforge_train::pretrain::PretrainConfig;
use mathforge_train::schedule::ScheduleKind;
use mathforge_train::sft::SftConfig;
use mathforge_train::trainer::StepReport;
use serde::Serialize;
use std::path::PathBuf;

/// Verbs of `mathforge train`.
#[derive(Subcommand)]
pub enum Command {
    /// Pretrain on a weighted mixture of JSONL/Parquet corpora (packed sequences, held-out perplexity).
    #[command(after_help = "\
Example:
  mathforge train pretrain --model-config tiny.json --tokenizer tok/ --out runs/tiny/base \\
    --data math:0.56:math.jsonl --data code:0.2:code.parquet --data web:0.24:web.jsonl \\
    --text-column content --seq-len 256 --steps 1000 --batch-size 32 --lr 3e-3
  mathforge train pretrain --config configs/tiny-pretrain.toml --steps 2000   # flags override the file")]
    Pretrain(PretrainArgs),
    /// Supervised fine-tuning on question/answer pairs (`User: q\\n\\nAssistant: a<eos>`, loss on a).
    #[command(after_help = "\
Example:
  mathforge train sft --init runs/tiny/base/checkpoints/step-1000 --out runs/tiny/sft \\
    --train-file sft.jsonl --prompt-field question --response-field answer --steps 300 --lr 1e-3")]
    Sft(SftArgs),
    /// GRPO (DeepSeekMath §4.1): G samples per question, strict verifier reward, clipped surrogate + k3 KL.
    #[command(after_help = "\
Example:
  mathforge train grpo --init runs/tiny/sft/checkpoints/step-300 --out runs/tiny/grpo \\
    --train-data arith:split=train,steps=2,n=2000 --eval-data arith:split=heldout,steps=2,n=200 \\
    --group-size 8 --questions-per-step 8 --beta 0.04 --lr 1e-5 --steps 100

  # Process supervision: a process reward model scores every reasoning step.
  mathforge train grpo --init runs/tiny/sft/checkpoints/step-300 --out runs/tiny/grpo-ps \\
    --reward-model runs/tiny/prm/checkpoints/step-200 --supervision process --steps 100

  # Iterative GRPO: 4 iterations; the outcome RM is retrained (20 steps, 10% replay) before each.
  mathforge train grpo --init runs/tiny/sft/checkpoints/step-300 --out runs/tiny/grpo-it \\
    --reward-model runs/tiny/orm/checkpoints/step-200 --iterations 4 --rm-steps 20 --steps 100")]
    Grpo(GrpoArgs),
    /// PPO with a critic (DeepSeekMath §4.1 eq. 1-2): KL in the reward, GAE, clipped surrogate and value loss.
    #[command(after_help = crate::cmd::train_ppo::PPO_EXAMPLE)]
    Ppo(crate::cmd::train_ppo::PpoArgs),
    /// Outcome or process reward model: a scalar head on the backbone trained with BCE.
    #[command(after_help = crate::cmd::train_ppo::RM_EXAMPLE)]
    Rm(crate::cmd::train_ppo::RmArgs),
    /// RFT (§5.2.1): SFT on the correct samples of the SFT model; `--online`: of the current policy.
    #[command(after_help = crate::cmd::train_pref::RFT_EXAMPLE)]
    Rft(crate::cmd::train_pref::RftArgs),
    /// DPO (§5.2.1): (correct, incorrect) pairs of SFT-model samples, frozen SFT reference.
    #[command(after_help = crate::cmd::train_pref::DPO_EXAMPLE)]
    Dpo(crate::cmd::train_pref::DpoArgs),
}

/// Flags every trainer has (keys of `CommonConfig`).
#[derive(Args, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct CommonArgs {
    /// TOML file whose keys are these long flags; flags given here override it.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Run folder (an existing run resumes from its newest checkpoint).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    /// Initial model: a Hugging Face model folder.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// Train from scratch with this config.json.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_config: Option<String>,
    /// tokenizer.json or a folder holding it (default: the --init folder).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    /// Seed of init, data order and sampling.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Optimizer steps.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Peak learning rate.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// cosine, linear, constant or multi-step.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleKind>,
    /// Linear warmup steps.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup_steps: Option<u64>,
    /// Final rate as a fraction of the peak.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_lr_ratio: Option<f64>,
    /// Sequences per optimizer step.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Sequences per forward/backward (gradient accumulation up to --batch-size).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub micro_batch_size: Option<usize>,
    /// Clip the global gradient norm (0: off).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_grad_norm: Option<f64>,
    /// AdamW beta1.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta1: Option<f64>,
    /// AdamW beta2.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta2: Option<f64>,
    /// AdamW epsilon.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adam_eps: Option<f64>,
    /// Decoupled weight decay.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// f32 or bf16 (bf16 keeps fp32 master weights in AdamW).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// cpu, cuda or cuda:N.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Checkpoint every N steps.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_every: Option<u64>,
    /// Keep the newest N checkpoints (0: all).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_checkpoints: Option<usize>,
    /// Evaluate every N steps (0: at the end).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_every: Option<u64>,
    /// Refuse to start above this memory estimate (MiB; default MemAvailable).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_mib: Option<u64>,
    /// Positions per lm_head chunk in log-prob computation.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprob_chunk: Option<usize>,
    /// Recompute each layer in the backward pass instead of storing its activations (true/false).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gradient_checkpointing: Option<bool>,
}

/// Flags of `train pretrain`.
#[derive(Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PretrainArgs {
    #[command(flatten)]
    #[serde(flatten)]
    common: CommonArgs,
    /// A source NAME:WEIGHT:PATH (repeat; DeepSeekMath: math 0.56, algebraic-stack 0.04, arxiv 0.10, code 0.20, nl 0.10).
    #[arg(long)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    data: Vec<String>,
    /// JSONL field with the text.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    text_field: Option<String>,
    /// Parquet column with the text (`.parquet` sources).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    text_column: Option<String>,
    /// Tokens per sequence.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    seq_len: Option<usize>,
    /// Leading documents of each source held out for perplexity.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    heldout_docs: Option<usize>,
    /// Held-out windows per source.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    heldout_windows: Option<usize>,
}

/// Flags of `train sft`.
#[derive(Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SftArgs {
    #[command(flatten)]
    #[serde(flatten)]
    common: CommonArgs,
    /// Training pairs (JSONL).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    train_file: Option<String>,
    /// Held-out pairs for the eval loss.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_file: Option<String>,
    /// Field with the question.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_field: Option<String>,
    /// Field with the answer.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    response_field: Option<String>,
    /// Longest prompt + response in tokens.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_len: Option<usize>,
}

/// Flags of `train grpo`.
#[derive(Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct GrpoArgs {
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
    /// Samples per question G.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    group_size: Option<usize>,
    /// Questions per exploration stage.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    questions_per_step: Option<usize>,
    /// Policy updates per exploration stage.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    mu: Option<usize>,
    /// Clip range.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    epsilon: Option<f64>,
    /// Upper clip range (clip-higher).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    epsilon_high: Option<f64>,
    /// KL coefficient (paper 0.04).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    beta: Option<f64>,
    /// paper, token-mean or dr-grpo.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    loss_aggregation: Option<LossAggregation>,
    /// group, batch or none.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    reward_scaling: Option<RewardScaling>,
    /// Exclude truncated completions from the loss.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    mask_truncated: Option<bool>,
    /// Drop groups whose rewards are all equal.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    skip_zero_variance: Option<bool>,
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
    /// Reset the reference model every N steps (0: never).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    ref_reset_every: Option<u64>,
    /// Iterative GRPO (§4.1.4): K iterations, each resetting the reference and retraining the
    /// reward model (if any) on the last iteration's samples + a replay of older ones.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    iterations: Option<u64>,
    /// Reward-model training steps per iteration.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    rm_steps: Option<u64>,
    /// Fraction of older iterations' RM data replayed (paper 0.1).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    rm_replay: Option<f64>,
    /// Held-out questions for greedy accuracy.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_questions: Option<usize>,
    /// Wall-clock budget in minutes for sampling + updates (evaluations not counted; 0: none).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_minutes: Option<f64>,
    /// Reward model folder (train rm) scoring completions instead of the verifier.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    reward_model: Option<String>,
    /// outcome or process (a process RM in --reward-model scores every step; §4.1.3).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    supervision: Option<Supervision>,
}

/// The flags that were given, as a TOML table keyed by long flag name.
pub(super) fn overrides<T: Serialize>(args: &T) -> anyhow::Result<serde_json::Value> {
    serde_json::to_value(args).context("converting flags to config keys")
}

pub(super) fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A progress bar with ETA fed by the trainer's per-step reports, showing the metrics `keys`
/// (the one reporter of every `train` verb). Offline sampling reports (`sampled_questions` of
/// `total_questions`, RFT/DPO) only update the message.
pub(super) fn reporter(
    total: u64,
    what: &str,
    keys: &'static [&'static str],
) -> (indicatif::ProgressBar, impl FnMut(&StepReport)) {
    let pb = crate::util::progress(total, what);
    let pb2 = pb.clone();
    let f = move |r: &StepReport| {
        let pick = |k: &str| r.metrics.get(k).and_then(|v| v.as_f64());
        if let (Some(d), Some(t)) = (pick("sampled_questions"), pick("total_questions")) {
            pb2.set_message(format!("sampling {d}/{t} questions"));
            return;
        }
        pb2.set_position(r.step);
        let mut msg = String::new();
        for &k in keys {
            if let Some(v) = pick(k) {
                msg.push_str(&format!("{k} {v:.4} "));
            }
        }
        pb2.set_message(msg.trim_end().to_string());
    };
    (pb, f)
}

/// Metrics shown by pretrain, SFT and GRPO.
const KEYS: &[&str] = &["loss", "heldout_ppl", "eval_loss", "reward_mean", "eval_greedy_acc"];

/// Run `mathforge train`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Pretrain(a) => {
            let cfg: PretrainConfig =
                mathforge_train::config::resolve(a.common.config.as_deref(), overrides(&a)?)?;
            let (pb, f) = reporter(cfg.common.steps, "pretrain", KEYS);
            let dir = mathforge_train::pretrain::run(&cfg, git_commit(), f)?;
            pb.finish();
            println!("{}", dir.display());
        }
        Command::Sft(a) => {
            let cfg: SftConfig =
                mathforge_train::config::resolve(a.common.config.as_deref(), overrides(&a)?)?;
            let (pb, f) = reporter(cfg.common.steps, "sft", KEYS);
            let dir = mathforge_train::sft::run(&cfg, git_commit(), f)?;
            pb.finish();
            println!("{}", dir.display());
        }
        Command::Grpo(a) => {
            let cfg: GrpoConfig =
                mathforge_train::config::resolve(a.common.config.as_deref(), overrides(&a)?)?;
            let (pb, f) = reporter(cfg.common.steps, "grpo", KEYS);
            let dir = mathforge_train::grpo::run(&cfg, git_commit(), f)?;
            pb.finish();
            println!("{}", dir.display());
        }
        Command::Ppo(a) => crate::cmd::train_ppo::run_ppo(a)?,
        Command::Rm(a) => crate::cmd::train_ppo::run_rm(a)?,
        Command::Rft(a) => crate::cmd::train_pref::run_rft(a)?,
        Command::Dpo(a) => crate::cmd::train_pref::run_dpo(a)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(subcommand)]
        cmd: Command,
    }

    /// Config keys and long flags are the same set for every verb (DESIGN.md "Command line").
    #[test]
    fn config_keys_equal_long_flags() {
        let app = Wrap::command();
        let keys = [
            ("pretrain", mathforge_train::config::known_keys::<PretrainConfig>()),
            ("sft", mathforge_train::config::known_keys::<SftConfig>()),
            ("grpo", mathforge_train::config::known_keys::<GrpoConfig>()),
        ];
        for (verb, keys) in keys {
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
