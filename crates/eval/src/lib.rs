//! The evaluation harness: generation backends (local model, OpenAI-compatible HTTP, response
//! files), greedy / maj@k / pass@k metrics, Python tool execution and reports.
pub mod error;
pub use error::{Error, Result};
