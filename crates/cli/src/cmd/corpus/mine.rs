//! `mathforge corpus mine`: the iterative math-page mining loop of DeepSeekMath §2.1
//! (`mathforge_corpus::mine`): train a fastText classifier on seed vs random pool pages, score and
//! rank the pool, keep the top pages, discover math domains, grow the seed from approved URL
//! paths, repeat until the kept set stops changing. This file maps flags onto [`MineConfig`],
//! shows progress and draws each round's score histogram as a PNG.
use anyhow::Context;
use clap::Args as ClapArgs;
use mathforge_corpus::mine::{self, MineConfig, MineEvent};
use std::path::PathBuf;

/// Flags of `mathforge corpus mine` (each overrides the same key of `--config`).
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  # the paper's settings are the defaults (500K/500K training pages, dim 256, lr 0.1,
  # wordNgrams 3, minCount 3, epoch 3, 10% domain threshold, stop at 98% overlap)
  mathforge corpus mine --config mine.toml
  mathforge corpus mine --seed openwebmath-sample.jsonl.gz --pool dedup/clean.jsonl.gz \\
      --out mine --keep-fraction 0.05 --rounds 1
  # review mine/round-1/paths.tsv, list approved prefixes (one host/path per line) in
  # approved.txt, then run again: round 1 is reused, its uncollected pages under approved
  # paths join the seed, and round 2 runs
  mathforge corpus mine --config mine.toml --approved-paths approved.txt --rounds 2

mine.toml keys are the long flags: seed = [\"seed.jsonl\"], pool = [\"pool.parquet\"],
out = \"mine\", rounds = 4, keep-tokens = 40000000000, approved-paths = \"approved.txt\", ...
Each round writes mine/round-N/: train.txt, model.bin (fastText format), seed-added.jsonl.gz,
scores/ (one file per shard), kept.ids, kept/kept-I-of-N.jsonl.gz (kept pages with score and
round), domains.tsv, paths.tsv, histogram.tsv, histogram.png, report.md, summary.json. Finished
phases are not redone on rerun.

On a cluster, run one round as four steps (see docs/corpus.md for a Slurm script):
  mathforge corpus mine --config mine.toml --round 1 --phase train
  mathforge corpus mine --config mine.toml --round 1 --phase score --shard $I --shards 64
  mathforge corpus mine --config mine.toml --round 1 --phase select --shards 64
  mathforge corpus mine --config mine.toml --round 1 --phase write --shard $I --shards 64")]
pub struct Args {
    /// TOML file whose keys are these flags' names.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed math pages (JSONL/Parquet documents with `id`, `url`, `text`).
    #[arg(long, num_args = 1..)]
    seed: Vec<PathBuf>,
    /// Pool of candidate pages (deduplicated Common Crawl documents).
    #[arg(long, num_args = 1..)]
    pool: Vec<PathBuf>,
    /// Output directory (`round-N/` inside).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Maximum rounds (paper: 4).
    #[arg(long)]
    rounds: Option<usize>,
    /// Positive training pages per round (paper: 500000).
    #[arg(long)]
    positives: Option<usize>,
    /// Negative training pages per round (paper: 500000).
    #[arg(long)]
    negatives: Option<usize>,
    /// Classifier dimension (paper: 256).
    #[arg(long)]
    dim: Option<i32>,
    /// Learning rate (paper: 0.1).
    #[arg(long)]
    lr: Option<f64>,
    /// Word n-grams (paper: 3).
    #[arg(long)]
    word_ngrams: Option<i32>,
    /// Minimum word count (paper: 3).
    #[arg(long)]
    min_count: Option<i32>,
    /// Epochs (paper: 3).
    #[arg(long)]
    epoch: Option<i32>,
    /// Threads for training and scoring (default: all cores).
    #[arg(long)]
    threads: Option<i32>,
    /// Keep the best pages up to this many whitespace tokens (paper: 40B); overrides --keep-fraction.
    #[arg(long)]
    keep_tokens: Option<u64>,
    /// Otherwise keep this fraction of the pool.
    #[arg(long)]
    keep_fraction: Option<f64>,
    /// A domain is math-related when more than this fraction of its pages is kept (paper: 0.1).
    #[arg(long)]
    domain_threshold: Option<f64>,
    /// File of approved `host/path` prefixes, one per line.
    #[arg(long)]
    approved_paths: Option<PathBuf>,
    /// Stop when this fraction of the previous round's pages is kept again (paper: 0.98).
    #[arg(long)]
    stop_overlap: Option<f64>,
    /// Seed of sampling and training.
    #[arg(long)]
    seed_rng: Option<u64>,
    /// Run one phase of one round (for cluster jobs): train (global), score (per shard),
    /// select (global, after all score shards), write (per shard). Default: the whole loop.
    #[arg(long, value_enum, default_value = "all")]
    phase: Phase,
    /// The round of `--phase` (from 1).
    #[arg(long, default_value_t = 1)]
    round: usize,
    /// This shard (score and write phases).
    #[arg(long, default_value_t = 0)]
    shard: usize,
    /// Number of shards (score, select and write phases).
    #[arg(long, default_value_t = 1)]
    shards: usize,
}

/// Phases of a mining round.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    All,
    Train,
    Score,
    Select,
    Write,
}

fn config(a: &mut Args) -> anyhow::Result<MineConfig> {
    let mut c = match &a.config {
        Some(p) => MineConfig::from_toml_file(p)?,
        None => MineConfig::default(),
    };
    if !a.seed.is_empty() {
        c.seed = std::mem::take(&mut a.seed);
    }
    if !a.pool.is_empty() {
        c.pool = std::mem::take(&mut a.pool);
    }
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f.take() { c.$f = v; } )* };
    }
    set!(out, rounds, positives, negatives, dim, lr, word_ngrams, min_count, epoch, threads);
    set!(keep_fraction, domain_threshold, stop_overlap, seed_rng);
    if a.keep_tokens.is_some() {
        c.keep_tokens = a.keep_tokens;
    }
    if a.approved_paths.is_some() {
        c.approved_paths = a.approved_paths.take();
    }
    anyhow::ensure!(!c.seed.is_empty(), "no seed pages: give --seed FILE or `seed = [...]` in --config");
    anyhow::ensure!(!c.pool.is_empty(), "no pool: give --pool FILE or `pool = [...]` in --config");
    anyhow::ensure!(
        (0.0..=1.0).contains(&c.keep_fraction),
        "--keep-fraction must be in [0, 1], got {}",
        c.keep_fraction
    );
    anyhow::ensure!(c.dim > 0 && c.epoch > 0 && c.word_ngrams > 0, "--dim, --epoch and --word-ngrams must be positive");
    if let Some(p) = &c.approved_paths {
        anyhow::ensure!(p.is_file(), "--approved-paths {}: file not found", p.display());
    }
    Ok(c)
}

/// Run `mathforge corpus mine`.
pub fn run(mut args: Args) -> anyhow::Result<()> {
    let cfg = config(&mut args)?;
    let shard = mathforge_io::shard::Shard::new(args.shard, args.shards)?;
    anyhow::ensure!(args.round >= 1, "--round starts at 1");
    if cfg.threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.threads as usize)
            .build_global()
            .context("--threads")?;
    }
    // The bar follows each round's scoring pass over the pool.
    let pb = crate::util::progress(0, "mine");
    let out = cfg.out.clone();
    let round = std::sync::atomic::AtomicUsize::new(0);
    let on_event = |e: MineEvent| match e {
        MineEvent::Loaded { seed, pool } => {
            pb.set_length(pool as u64);
            pb.suspend(|| eprintln!("seed pages {seed}, pool pages {pool}"));
        }
        MineEvent::Round(r) => {
            round.store(r, std::sync::atomic::Ordering::Relaxed);
            pb.set_position(0);
            pb.set_message(format!("round {r}"));
        }
        MineEvent::Phase(p) => {
            let r = round.load(std::sync::atomic::Ordering::Relaxed);
            pb.set_message(format!("round {r} {p}"));
        }
        MineEvent::Scored(n) => pb.set_position(n as u64),
        MineEvent::RoundDone(r, bins) => {
            let png = out.join(format!("round-{}", r.round)).join("histogram.png");
            let bars: Vec<(f64, f64, u64)> = bins
                .iter()
                .enumerate()
                .map(|(b, &n)| (b as f64 / 20.0, (b + 1) as f64 / 20.0, n as u64))
                .collect();
            let title = format!("round {}: classifier score of {} pool pages", r.round, r.pool_pages);
            if let Err(e) = mathforge_train::metrics::plot_bars(&png, &title, "p(math)", &bars) {
                pb.suspend(|| eprintln!("warning: {e}"));
            }
        }
    };
    let reports = match args.phase {
        Phase::All => mine::run(&cfg, &on_event).context("corpus mine")?,
        Phase::Train => {
            mine::train_phase(&cfg, args.round, &on_event).context("corpus mine --phase train")?;
            pb.finish_and_clear();
            println!("round {} trained: {}/round-{}/model.bin", args.round, cfg.out.display(), args.round);
            return Ok(());
        }
        Phase::Score => {
            mine::score_phase(&cfg, args.round, shard, &on_event).context("corpus mine --phase score")?;
            pb.finish_and_clear();
            println!("round {} shard {} of {} scored", args.round, shard.index, shard.shards);
            return Ok(());
        }
        Phase::Select => {
            vec![mine::select_phase(&cfg, args.round, args.shards, &on_event).context("corpus mine --phase select")?]
        }
        Phase::Write => {
            let n = mine::write_phase(&cfg, args.round, shard, &on_event).context("corpus mine --phase write")?;
            pb.finish_and_clear();
            println!("round {} shard {} of {}: {n} kept pages written", args.round, shard.index, shard.shards);
            return Ok(());
        }
    };
    pb.finish_and_clear();
    println!("| round | seed | trained (math/other) | pool | kept pages | kept tokens | overlap | math domains | added to seed |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for r in &reports {
        println!(
            "| {} | {} | {}/{} | {} | {} | {} | {} | {} | {} |",
            r.round,
            r.seed_pages,
            r.trained_pos,
            r.trained_neg,
            r.pool_pages,
            r.kept_pages,
            r.kept_tokens,
            r.overlap_with_previous.map_or("-".into(), |o| format!("{:.1}%", o * 100.0)),
            r.math_domains,
            r.added_to_seed
        );
    }
    if let Some(last) = reports.last() {
        if last.overlap_with_previous.is_some_and(|o| o >= cfg.stop_overlap) {
            println!("stopped: overlap reached {:.0}%", cfg.stop_overlap * 100.0);
        }
        if last.skipped_records > 0 {
            println!("skipped records: {}", last.skipped_records);
        }
    }
    println!("reports: {}/round-N/report.md", cfg.out.display());
    Ok(())
}
