//! `mathforge train rft` (offline RFT, or Online RFT with `--online`) and `mathforge train dpo`:
//! thin glue over `mathforge_train::rft` and `mathforge_train::dpo`, the offline / preference
//! methods of DeepSeekMath's unified paradigm (§5.2, Table 10). As for every trainer, each long
//! flag is also a key of `--config FILE.toml`, flags override the file, and running the same
//! command again resumes the run.
use super::train::{git_commit, overrides, reporter};
use crate::cmd::train::CommonArgs;
use clap::Args;
use mathforge_train::dpo::DpoConfig;
use mathforge_train::rft::RftConfig;
use serde::Serialize;

/// `--help` example of `train rft`.
pub const RFT_EXAMPLE: &str = "\
Example:
  # offline RFT: 8 samples per question from the SFT model, keep the correct distinct ones
  # (<out>/rft-data.jsonl, {question, answer} lines), then SFT on them
  mathforge train rft --init runs/tiny/sft/checkpoints/step-300 --out runs/tiny/rft \\
    --train-data arith:split=train,steps=2,n=2000 --eval-data arith:split=heldout,steps=2,n=200 \\
    --samples-per-question 8 --batch-size 64 --lr 1e-5 --steps 100
  # Online RFT: every step samples the current policy and trains on its correct samples
  mathforge train rft --online --config configs/train-tiny-online-rft.toml";

/// `--help` example of `train dpo`.
pub const DPO_EXAMPLE: &str = "\
Example:
  # pairs (correct, incorrect) sampled from the SFT model, which is also the frozen reference
  mathforge train dpo --init runs/tiny/sft/checkpoints/step-300 --out runs/tiny/dpo \\
    --train-data arith:split=train,steps=2,n=2000 --samples-per-question 8 --pairs-per-question 2 \\
    --beta 0.1 --lr 1e-5 --steps 100
  # pairs from a file of {\"prompt\", \"chosen\", \"rejected\"} lines
  mathforge train dpo --init sft/ --out runs/dpo --pairs-file pairs.jsonl --beta 0.1";

/// Flags of `train rft`.
#[derive(Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RftArgs {
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
    /// Online RFT: sample the current policy every step (`--online` alone means true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    online: Option<bool>,
    /// Responses sampled per question.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    samples_per_question: Option<usize>,
    /// Online: questions per step.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    questions_per_step: Option<usize>,
    /// Offline: drop identical correct responses to the same question.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    dedup: Option<bool>,
    /// Sampling temperature.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    /// Sampling top-p.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    /// Longest sampled response in tokens.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_len: Option<usize>,
    /// Offline data: questions of train-data to sample (seeded random subset; 0: all).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_questions: Option<usize>,
    /// Wall-clock budget in minutes for sampling + updates (evaluations not counted; 0: none).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_minutes: Option<f64>,
}

/// Flags of `train dpo`.
#[derive(Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DpoArgs {
    #[command(flatten)]
    #[serde(flatten)]
    common: CommonArgs,
    /// Problems to sample pairs for: arith:split=train,steps=2,n=2000 or a benchmark JSONL.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    train_data: Option<String>,
    /// JSONL of {prompt, chosen, rejected} used instead of sampling.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pairs_file: Option<String>,
    /// Held-out problems for greedy accuracy.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_data: Option<String>,
    /// Held-out questions for greedy accuracy.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_questions: Option<usize>,
    /// Responses sampled per question from the SFT model.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    samples_per_question: Option<usize>,
    /// Most (correct, incorrect) pairs per question.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pairs_per_question: Option<usize>,
    /// DPO beta.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    beta: Option<f64>,
    /// Sampling temperature.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    /// Sampling top-p.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    /// Longest sampled response in tokens (pairs-file responses are cut to it).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_len: Option<usize>,
    /// Offline data: questions of train-data to sample (seeded random subset; 0: all).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_questions: Option<usize>,
    /// Wall-clock budget in minutes for sampling + updates (evaluations not counted; 0: none).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_minutes: Option<f64>,
}


/// Metrics shown on the progress bar.
const KEYS: &[&str] = &["loss", "reward_margin", "reward_accuracy", "accuracy", "eval_greedy_acc"];

/// Run `mathforge train rft`.
pub fn run_rft(a: RftArgs) -> anyhow::Result<()> {
    let cfg: RftConfig =
        mathforge_train::config::resolve(a.common.config.as_deref(), overrides(&a)?)?;
    let (pb, f) = reporter(cfg.common.steps, if cfg.online { "online-rft" } else { "rft" }, KEYS);
    let dir = mathforge_train::rft::run(&cfg, git_commit(), f)?;
    pb.finish();
    println!("{}", dir.display());
    Ok(())
}

/// Run `mathforge train dpo`.
pub fn run_dpo(a: DpoArgs) -> anyhow::Result<()> {
    let cfg: DpoConfig =
        mathforge_train::config::resolve(a.common.config.as_deref(), overrides(&a)?)?;
    let (pb, f) = reporter(cfg.common.steps, "dpo", KEYS);
    let dir = mathforge_train::dpo::run(&cfg, git_commit(), f)?;
    pb.finish();
    println!("{}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Subcommand)]
    enum Verb {
        Rft(RftArgs),
        Dpo(DpoArgs),
    }
    #[derive(Parser)]
    struct Wrap {
        #[command(subcommand)]
        verb: Verb,
    }

    /// Config keys and long flags are the same set (DESIGN.md "Command line").
    #[test]
    fn config_keys_equal_long_flags() {
        let app = Wrap::command();
        for (verb, keys) in [
            ("rft", mathforge_train::config::known_keys::<RftConfig>()),
            ("dpo", mathforge_train::config::known_keys::<DpoConfig>()),
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

    /// `--online` alone, `--online true` and `--online false` all parse into the `online` key.
    #[test]
    fn online_flag_forms() {
        for (args, want) in [
            (vec!["x", "rft", "--online"], Some(true)),
            (vec!["x", "rft", "--online", "true"], Some(true)),
            (vec!["x", "rft", "--online", "false"], Some(false)),
            (vec!["x", "rft"], None),
        ] {
            let Verb::Rft(a) = Wrap::parse_from(&args).verb else { panic!("rft") };
            let o = overrides(&a).unwrap();
            assert_eq!(o.get("online").and_then(|v| v.as_bool()), want, "{args:?}");
        }
    }
}
