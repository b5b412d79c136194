//! Where problems come from: benchmark readers (GSM8K, MATH, ...), prompt formats, reference
//! answers and procedural generators. A `Task` grades and rewards through `mathforge-verify`, so RL
//! optimises what evaluation measures.
pub mod error;
pub use error::{Error, Result};
