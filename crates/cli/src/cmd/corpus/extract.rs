//! `mathforge corpus extract` (being built; see the issue tracker).
use clap::Args as ClapArgs;

/// Flags of `mathforge corpus extract`.
#[derive(ClapArgs)]
pub struct Args {}

/// Run `mathforge corpus extract`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`mathforge corpus extract` is not built yet")
}
