//! `mathforge verify` (being built; see the issue tracker).
use clap::Args as ClapArgs;

/// Flags of `mathforge verify`.
#[derive(ClapArgs)]
pub struct Args {}

/// Run `mathforge verify`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`mathforge verify` is not built yet")
}
