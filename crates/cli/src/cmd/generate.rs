//! `mathforge generate` (being built; see the issue tracker).
use clap::Args as ClapArgs;

/// Flags of `mathforge generate`.
#[derive(ClapArgs)]
pub struct Args {}

/// Run `mathforge generate`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`mathforge generate` is not built yet")
}
