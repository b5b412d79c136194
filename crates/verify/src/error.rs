//! Errors of this crate: each variant names the file, line, field or tensor involved.

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Anything else, with a message that says what and where.
    #[error("{0}")]
    Msg(String),
}
