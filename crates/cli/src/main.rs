//! `mathforge`: the DeepSeekMath recipe from one binary. Thin glue: parse flags, build library
//! configs, run, report. Each area lives in `cmd/<area>.rs` (one owner per file).
use clap::{Parser, Subcommand};

mod cmd;
mod util;

/// mathforge: mine a math corpus, train a math LLM (pretrain, SFT, GRPO), verify and evaluate.
#[derive(Parser)]
#[command(name = "mathforge", version, about, long_about = None, after_help = "\
Examples:
  mathforge verify --reference '\\frac{1}{2}' --response 'The answer is $0.5$.'
  mathforge fasttext supervised -input train.txt -output model -dim 256 -wordNgrams 3
  mathforge generate --model runs/tiny/sft --prompt 'What is 2+3?'")]
struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Corpus pipeline: extract, dedup, decontaminate, mine.
    #[command(subcommand)]
    Corpus(cmd::corpus::Command),
    /// fastText-compatible classifier with fastText's own flags and output format.
    Fasttext(cmd::fasttext::Args),
    /// Train or inspect tokenizers.
    #[command(subcommand)]
    Tokenizer(cmd::tokenizer::Command),
    /// Create or inspect models.
    #[command(subcommand)]
    Model(cmd::model::Command),
    /// Sample completions from a model.
    Generate(cmd::generate::Args),
    /// Per-token log-probabilities of texts or completions (lm-eval loglikelihood).
    Score(cmd::score::Args),
    /// Grade responses against reference answers.
    Verify(cmd::verify::Args),
    /// Pretrain, SFT, GRPO and the other trainers of the unified paradigm.
    #[command(subcommand)]
    Train(cmd::train::Command),
    /// Evaluate on math benchmarks.
    Eval(cmd::eval::Args),
}

/// Run a model command on a worker of a rayon pool (`RAYON_NUM_THREADS` threads, as the global
/// pool would have). Candle's kernels, the gemm and our fused ops then start their parallel work
/// from a pool thread, which runs its share itself, instead of from the main thread, which hands
/// every op to the pool and sleeps until it is done. With a small model (thousands of tiny ops per
/// step) those hand-offs dominate: GRPO on the 0.8M bench model ran 2.06-2.25 -> 2.42-2.87 steps/s
/// (docs/benchmarks/train.md).
fn in_pool(run: impl FnOnce() -> anyhow::Result<()> + Send) -> anyhow::Result<()> {
    let pool = rayon::ThreadPoolBuilder::new().build()?;
    pool.install(run)
}

/// candle's CPU barrier pool (elementwise ops) spins 25,000 rounds after each op before it
/// parks. Our kernels run on rayon's workers, so on a small machine that spin takes a core from
/// them between candle ops; 1,000 rounds keeps the quick hand-off without the theft (same-session
/// A/B on the 2-core GRPO bench: 5-13% shorter steps). An explicit setting wins.
const CANDLE_SPIN: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

fn main() {
    if std::env::var_os(CANDLE_SPIN).is_none() {
        // Before any other thread exists (nothing has started yet), so nothing reads the
        // environment concurrently.
        std::env::set_var(CANDLE_SPIN, "1000");
    }
    let cli = Cli::parse();
    util::init_logging(cli.verbose);
    let result = match cli.command {
        Command::Corpus(c) => cmd::corpus::run(c),
        Command::Fasttext(a) => cmd::fasttext::run(a),
        Command::Tokenizer(c) => cmd::tokenizer::run(c),
        Command::Model(c) => in_pool(|| cmd::model::run(c)),
        Command::Generate(a) => in_pool(|| cmd::generate::run(a)),
        Command::Score(a) => in_pool(|| cmd::score::run(a)),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Train(c) => in_pool(|| cmd::train::run(c)),
        Command::Eval(a) => in_pool(|| cmd::eval::run(a)),
    };
    if let Err(err) = result {
        // A closed stdout (e.g. `| head`) is not a failure.
        if err.chain().any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        }) {
            std::process::exit(0);
        }
        eprintln!("error: {err:#}");
        std::process::exit(2);
    }
}
