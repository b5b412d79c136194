//! `mathforge corpus ...`: each verb's flags and runner live in their own file.
use clap::Subcommand;

pub mod decont;
pub mod dedup;
pub mod extract;
pub mod mine;

/// Verbs of `mathforge corpus`.
#[derive(Subcommand)]
pub enum Command {
    /// Extract math-preserving text from WARC/HTML into JSONL/Parquet documents.
    Extract(extract::Args),
    /// URL, exact-text and MinHash-LSH near-duplicate removal.
    Dedup(dedup::Args),
    /// Remove documents that contain benchmark 10-grams.
    Decont(decont::Args),
    /// Iterative math-page mining: classifier, ranking, domain discovery, seed growth.
    Mine(mine::Args),
}

/// Run `mathforge corpus`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Extract(a) => extract::run(a),
        Command::Dedup(a) => dedup::run(a),
        Command::Decont(a) => decont::run(a),
        Command::Mine(a) => mine::run(a),
    }
}
