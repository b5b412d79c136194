//! `mathforge tokenizer ...` (being built; see the issue tracker).
use clap::Subcommand;

/// Verbs of `mathforge tokenizer`.
#[derive(Subcommand)]
pub enum Command {
    /// Placeholder until the verbs land.
    Info {},
}

/// Run `mathforge tokenizer`.
pub fn run(_cmd: Command) -> anyhow::Result<()> {
    anyhow::bail!("`mathforge tokenizer` is not built yet")
}
