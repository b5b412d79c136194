//! Integration tests of the `mathforge` binary, one module per area.
mod util;

mod corpus;
mod corpus_dedup;
mod corpus_mine;
mod eval;
mod fasttext;
mod generate;
mod model;
mod train;
mod verify;
