//! `mathforge corpus extract`: WARC/WET/HTML/JSONL pages → math-preserving text documents
//! (JSONL or Parquet), the first stage of the DeepSeekMath corpus pipeline (paper §2.1, with
//! OpenWebMath-style extraction). Thin glue: flags and `--config` → `ExtractJob`, a progress bar,
//! a one-line result; the work is `mathforge_corpus::extract::stage::run`.
use anyhow::Context;
use clap::Args as ClapArgs;
use mathforge_corpus::extract::stage::{run as run_stage, ExtractJob, Progress};
use mathforge_corpus::extract::ExtractConfig;
use mathforge_io::shard::Shard;
use std::path::PathBuf;

/// Flags of `mathforge corpus extract`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  mathforge corpus extract --input CC-MAIN-*.warc.gz --output extract/docs.jsonl.gz
  mathforge corpus extract --input pages/*.html --output extract/docs.parquet --max-bytes 1000000
  # one shard of a Slurm array job (writes extract/docs-00003-of-00064.jsonl.gz and a marker):
  mathforge corpus extract --input warcs/*.warc.gz --output extract/docs.jsonl.gz \\
      --shard $SLURM_ARRAY_TASK_ID --shards 64

Inputs: .warc/.warc.gz/.warc.zst (response and resource records), .wet/.wet.gz (conversion
records), .html/.htm files, .jsonl[.gz|.zst] with an `html` field. Bad records are skipped and
counted by reason in summary.json / summary.md beside the output.")]
pub struct Args {
    /// Input files (WARC, WET, HTML or JSONL with an `html` field).
    #[arg(long, short = 'i', num_args = 1.., required = true)]
    pub input: Vec<PathBuf>,
    /// Output file: .jsonl, .jsonl.gz, .jsonl.zst or .parquet.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// This process's shard index (0-based).
    #[arg(long, default_value_t = 0)]
    pub shard: usize,
    /// Number of shards.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Skip pages larger than this many bytes (default 2 MiB).
    #[arg(long)]
    pub max_bytes: Option<u64>,
    /// Drop documents with fewer characters of text.
    #[arg(long)]
    pub min_chars: Option<usize>,
    /// Keep navigation, footers and other boilerplate (for debugging the extractor).
    #[arg(long)]
    pub keep_boilerplate: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// TOML file with the settings (keys: max_bytes, min_chars, remove_boilerplate,
    /// content_types, batch_size); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Run `mathforge corpus extract`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(p) => ExtractConfig::from_toml_file(p)?,
        None => ExtractConfig::default(),
    };
    if let Some(m) = args.max_bytes {
        config.max_bytes = m;
    }
    if let Some(m) = args.min_chars {
        config.min_chars = m;
    }
    if args.keep_boilerplate {
        config.remove_boilerplate = false;
    }
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .context("setting up worker threads")?;
    }
    let shard = Shard::new(args.shard, args.shards)?;
    let job = ExtractJob { inputs: args.input, output: args.output, shard, config };
    let pb = crate::util::progress(0, "extract");
    let mut first = true;
    let mut on_progress = |p: Progress| {
        if first {
            pb.set_length(p.files_total as u64);
            first = false;
        }
        pb.set_position(p.files_done as u64);
        pb.set_message(format!("{} docs", p.docs_out));
    };
    let report = run_stage(&job, &mut on_progress).context("corpus extract")?;
    pb.finish_and_clear();
    let s = &report.stats;
    if report.skipped_done {
        println!(
            "shard {} of {} already complete: {}",
            shard.index,
            shard.shards,
            report.output.display()
        );
        return Ok(());
    }
    let rejects: Vec<String> = s.rejects.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "extract: {} records in, {} documents out ({:.1} MB text) in {:.1}s -> {}{}",
        s.docs_in,
        s.docs_out,
        s.bytes_out as f64 / 1e6,
        s.seconds,
        report.output.display(),
        if rejects.is_empty() {
            String::new()
        } else {
            format!("; rejected: {}", rejects.join(", "))
        }
    );
    Ok(())
}
