//! `mathforge fasttext ...` mirrors the fastText CLI (single-dash flags), parsed by hand.
use clap::Args as ClapArgs;

/// Raw arguments after `mathforge fasttext`, e.g. `supervised -input F -output M`.
#[derive(ClapArgs)]
pub struct Args {
    /// The fastText command and its flags.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Run `mathforge fasttext`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`mathforge fasttext` is not built yet")
}
