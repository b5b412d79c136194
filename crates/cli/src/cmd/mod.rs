//! One module per CLI area; each exposes its clap `Args`/`Command` and a `run` function.
pub mod corpus;
pub mod eval;
pub mod fasttext;
pub mod generate;
pub mod model;
pub mod score;
pub mod tokenizer;
pub mod train;
pub mod train_ppo;
pub mod train_pref;
pub mod verify;
