//! Errors of this crate. Grading never fails (an unparseable answer is "not equivalent" with a
//! reason); these errors come from the lower-level [`parse_answer`](crate::parse_answer).

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The answer is not an expression this parser understands.
    #[error("cannot parse answer at token {pos}: {msg}")]
    Parse {
        /// Token (or character, for lexing errors) index.
        pos: usize,
        /// What was wrong.
        msg: String,
    },
    /// Anything else, with a message that says what and where.
    #[error("{0}")]
    Msg(String),
}
