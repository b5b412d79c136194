//! `mathforge corpus dedup` (being built; see the issue tracker).
use clap::Args as ClapArgs;

/// Flags of `mathforge corpus dedup`.
#[derive(ClapArgs)]
pub struct Args {}

/// Run `mathforge corpus dedup`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`mathforge corpus dedup` is not built yet")
}
