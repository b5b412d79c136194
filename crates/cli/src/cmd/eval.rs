//! `mathforge eval` (being built; see the issue tracker).
use clap::Args as ClapArgs;

/// Flags of `mathforge eval`.
#[derive(ClapArgs)]
pub struct Args {}

/// Run `mathforge eval`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`mathforge eval` is not built yet")
}
