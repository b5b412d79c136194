//! `mathforge corpus decont`: drop documents that contain a 10-gram of a benchmark question or
//! answer, or a whole 3..9-word benchmark text (DeepSeekMath §2.1; `mathforge_corpus::decont`).
use anyhow::Context;
use clap::Args as ClapArgs;
use mathforge_corpus::decont::{self, BenchmarkIndex, BenchmarkSpec, DecontConfig};
use mathforge_io::shard::Shard;
use std::path::PathBuf;

/// Flags of `mathforge corpus decont`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  mathforge corpus decont --input dedup/output/ --output clean.jsonl.gz --removed removed.jsonl \\
      --benchmark gsm8k_test.jsonl math_test.jsonl cmath_test.jsonl mgsm_zh.jsonl
  # pick the fields of a benchmark explicitly
  mathforge corpus decont --input pages.jsonl --output clean.jsonl --benchmark ocw_test.jsonl:problem,solution
  # one array-job task per shard: writes clean-0000I-of-00008.jsonl.gz
  mathforge corpus decont --input pages/ --output clean.jsonl.gz --benchmark b.jsonl --shard $I --shards 8

Default benchmark fields: question, problem, answer, solution, cot, golden, passage,
informal_statement, informal_proof, messages (whichever a record has). Each removed document
gets a decont_match object: benchmark file, line, id, field and the matching n-gram.")]
pub struct Args {
    /// Input files or directories (JSONL, .jsonl.gz, .jsonl.zst, Parquet).
    #[arg(long, num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    /// Benchmark JSONL files, each optionally FILE:field,field.
    #[arg(long, num_args = 1.., required = true)]
    benchmark: Vec<BenchmarkSpec>,
    /// Kept documents (JSONL; .gz/.zst by extension).
    #[arg(long)]
    output: PathBuf,
    /// Removed documents with their match.
    #[arg(long)]
    removed: Option<PathBuf>,
    /// N-gram length (paper: 10).
    #[arg(long, default_value_t = 10)]
    ngram: usize,
    /// Shorter benchmark texts with at least this many words are matched whole (paper: 3).
    #[arg(long, default_value_t = 3)]
    min_words: usize,
    /// This shard.
    #[arg(long, default_value_t = 0)]
    shard: usize,
    /// Number of shards.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Run `mathforge corpus decont`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global().context("--threads")?;
    }
    anyhow::ensure!(args.ngram >= 1 && args.min_words >= 1, "--ngram and --min-words must be positive");
    let shard = Shard::new(args.shard, args.shards)?;
    let inputs = decont::expand_inputs(&args.input).context("reading --input")?;
    let config = DecontConfig { n: args.ngram, min_words: args.min_words };
    let index = BenchmarkIndex::build(&args.benchmark, config).context("reading --benchmark")?;
    let st = index.stats();
    eprintln!(
        "benchmarks: {} texts, {} distinct {}-grams, {} short texts, {} below {} words",
        st.texts, st.ngrams, config.n, st.short_texts, st.too_short, config.min_words
    );
    let pb = crate::util::progress(0, "decont");
    let tick = |n: u64| pb.inc(n);
    let s = decont::decontaminate(&inputs, &index, &args.output, args.removed.as_deref(), shard, &tick)
        .with_context(|| format!("decontaminating into {}", args.output.display()))?;
    pb.finish_and_clear();
    println!("docs in      {}", s.docs_in);
    println!("docs out     {}", s.docs_out);
    for (k, v) in &s.removed {
        println!("removed      {k}: {v}");
    }
    for (k, v) in &s.bad_records {
        println!("skipped      {k}: {v}");
    }
    println!("seconds      {:.2}", s.seconds);
    Ok(())
}
