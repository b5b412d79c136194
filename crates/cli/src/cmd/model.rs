//! `mathforge model ...` (being built; see the issue tracker).
use clap::Subcommand;

/// Verbs of `mathforge model`.
#[derive(Subcommand)]
pub enum Command {
    /// Placeholder until the verbs land.
    Info {},
}

/// Run `mathforge model`.
pub fn run(_cmd: Command) -> anyhow::Result<()> {
    anyhow::bail!("`mathforge model` is not built yet")
}
