//! `mathforge score` (being built; see the issue tracker).
use clap::Args as ClapArgs;

/// Flags of `mathforge score`.
#[derive(ClapArgs)]
pub struct Args {}

/// Run `mathforge score`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`mathforge score` is not built yet")
}
