//! A fastText-compatible supervised classifier (Joulin et al. 2017, "Bag of Tricks for Efficient
//! Text Classification"): training, prediction and exact `.bin`/`.ftz` IO.
pub mod error;
pub use error::{Error, Result};
