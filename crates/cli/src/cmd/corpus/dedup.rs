//! `mathforge corpus dedup`: exact-URL, exact-text and MinHash-LSH near-duplicate removal
//! (DeepSeekMath §2.1; datatrove's signature -> cluster -> filter stages, see
//! `mathforge_corpus::dedup`). Flags are parsed here; the library does the work.
use anyhow::Context;
use clap::{Args as ClapArgs, ValueEnum};
use mathforge_corpus::dedup::{self, minhash::MinhashConfig, DedupConfig};
use mathforge_io::shard::Shard;
use std::path::PathBuf;

/// Which stage(s) to run.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Stage {
    /// Every stage for every shard in this process.
    All,
    /// Stage 1 for `--shard I` (one array-job task per shard).
    Signatures,
    /// Stage 2, once, after every shard's signatures.
    Cluster,
    /// Stage 3 for `--shard I`.
    Filter,
}

/// Flags of `mathforge corpus dedup`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  # everything in one process (URL + exact + MinHash), all cores
  mathforge corpus dedup --input pages/ --output dedup/
  # only MinHash near-dedup, datatrove parameters spelled out
  mathforge corpus dedup --input a.jsonl.gz b.jsonl.gz --output dedup/ --minhash --ngrams 5 --bands 14 --rows 8
  # as array jobs: signatures per shard, one cluster step, filter per shard
  mathforge corpus dedup --input pages/ --output dedup/ --stage signatures --shard $I --shards 64
  mathforge corpus dedup --input pages/ --output dedup/ --stage cluster --shards 64
  mathforge corpus dedup --input pages/ --output dedup/ --stage filter --shard $I --shards 64

Kept records land in DIR/output/, removed ones (with dedup_reason, duplicate_of) in DIR/removed/,
totals in DIR/summary.{json,md}. Finished shards are skipped on rerun.")]
pub struct Args {
    /// Input files or directories (JSONL, .jsonl.gz, .jsonl.zst, Parquet).
    #[arg(long, num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    /// Output directory.
    #[arg(long)]
    output: PathBuf,
    /// Exact-URL dedup (normalized URLs). With none of --url/--exact/--minhash, all three run.
    #[arg(long)]
    url: bool,
    /// Exact dedup on normalized text.
    #[arg(long)]
    exact: bool,
    /// MinHash-LSH near-dedup.
    #[arg(long)]
    minhash: bool,
    /// Words per MinHash shingle.
    #[arg(long, default_value_t = 5)]
    ngrams: usize,
    /// LSH bands.
    #[arg(long, default_value_t = 14)]
    bands: usize,
    /// Hashes per band.
    #[arg(long, default_value_t = 8)]
    rows: usize,
    /// Permutation seed (same on every shard).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stage to run.
    #[arg(long, value_enum, default_value_t = Stage::All)]
    stage: Stage,
    /// This shard (for --stage signatures/filter).
    #[arg(long)]
    shard: Option<usize>,
    /// Number of shards (input files are split by index modulo shards).
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn print_summary(s: &dedup::DedupSummary) {
    println!("docs in      {}", s.docs_in);
    println!("docs out     {}", s.docs_out);
    for (k, v) in &s.removed {
        println!("removed      {k}: {v}");
    }
    for (k, v) in &s.bad_records {
        println!("skipped      {k}: {v}");
    }
    println!("clusters     {}", s.clusters);
    let total: f64 = s.seconds.values().sum();
    println!("seconds      {total:.2} ({})", s.seconds.iter().map(|(k, v)| format!("{k} {v:.2}")).collect::<Vec<_>>().join(", "));
}

/// Run `mathforge corpus dedup`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global().context("--threads")?;
    }
    let any = args.url || args.exact || args.minhash;
    let config = DedupConfig {
        url: args.url || !any,
        exact: args.exact || !any,
        minhash: args.minhash || !any,
        minhash_config: MinhashConfig {
            n_grams: args.ngrams,
            num_buckets: args.bands,
            hashes_per_bucket: args.rows,
            seed: args.seed,
        },
    };
    anyhow::ensure!(args.ngrams > 0 && args.bands > 0 && args.rows > 0, "--ngrams, --bands and --rows must be positive");
    let inputs = dedup::input::expand_inputs(&args.input).context("reading --input")?;
    let pb = crate::util::progress(0, "dedup");
    let tick = |n: u64| pb.inc(n);
    let shard = || -> anyhow::Result<Shard> {
        let i = args.shard.context("--stage signatures/filter needs --shard I")?;
        Ok(Shard::new(i, args.shards)?)
    };
    match args.stage {
        Stage::All => {
            let s = dedup::run_all(&inputs, args.shards, &args.output, &config, &tick)
                .with_context(|| format!("dedup into {}", args.output.display()))?;
            pb.finish_and_clear();
            print_summary(&s);
        }
        Stage::Signatures => {
            let s = dedup::signatures(&inputs, shard()?, &args.output, &config, &tick)?;
            pb.finish_and_clear();
            println!("signatures: {} docs ({} without signature), {:.2}s", s.docs, s.no_signature, s.seconds);
        }
        Stage::Cluster => {
            let s = dedup::cluster(&args.output, args.shards)?;
            pb.finish_and_clear();
            println!("cluster: {} clusters, removed {:?}, {:.2}s", s.clusters, s.removed, s.seconds);
        }
        Stage::Filter => {
            let s = dedup::filter(&inputs, shard()?, &args.output, &tick)?;
            pb.finish_and_clear();
            println!("filter: {} in, {} out, removed {:?}, {:.2}s", s.docs_in, s.docs_out, s.removed, s.seconds);
            if let Some(total) = dedup::write_summary(&args.output, args.shards)? {
                print_summary(&total);
            }
        }
    }
    Ok(())
}
