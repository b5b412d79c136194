//! Answer verification: extraction of a final answer from a response, parsing of LaTeX and plain
//! text into expressions, and mathematical equivalence. It is both the GRPO reward and the
//! benchmark grader (DeepSeekMath §4; rewards come from the same check that grades).
pub mod error;
pub use error::{Error, Result};
