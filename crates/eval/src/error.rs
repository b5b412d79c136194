//! Errors of `mathforge-eval`: each variant names the file, line, field or endpoint involved.
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing JSONL / outputs.
    #[error(transparent)]
    Io(#[from] mathforge_io::Error),
    /// Reading a benchmark.
    #[error(transparent)]
    Tasks(#[from] mathforge_tasks::Error),
    /// A responses file record is malformed (names file, line and field).
    #[error("{path}:{line}: {message}")]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A filesystem error outside `mathforge-io`.
    #[error("{path}: {source}")]
    Fs {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The local model backend failed to load or run.
    #[error("model: {0}")]
    Model(String),
    /// Invalid settings.
    #[error("{0}")]
    Invalid(String),
}
