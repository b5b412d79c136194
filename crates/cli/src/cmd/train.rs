//! `mathforge train ...` (being built; see the issue tracker).
use clap::Subcommand;

/// Verbs of `mathforge train`.
#[derive(Subcommand)]
pub enum Command {
    /// Placeholder until the trainers land.
    Sft {},
}

/// Run `mathforge train`.
pub fn run(_cmd: Command) -> anyhow::Result<()> {
    anyhow::bail!("`mathforge train` is not built yet")
}
