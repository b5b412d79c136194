//! `mathforge corpus decont` (being built; see the issue tracker).
use clap::Args as ClapArgs;

/// Flags of `mathforge corpus decont`.
#[derive(ClapArgs)]
pub struct Args {}

/// Run `mathforge corpus decont`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`mathforge corpus decont` is not built yet")
}
