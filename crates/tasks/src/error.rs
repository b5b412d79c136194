//! Errors of `mathforge-tasks`: every variant names the file, line and field involved, so a bad
//! benchmark record reads as `file:line: missing field "question"`.
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An IO or JSONL error from `mathforge-io` (already carries file and line).
    #[error(transparent)]
    Io(#[from] mathforge_io::Error),
    /// A record lacks a field the benchmark format needs, or has it with the wrong type.
    #[error("{path}:{line}: {bench}: {message}")]
    BadRecord {
        /// The data file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The benchmark format being read.
        bench: &'static str,
        /// What is wrong (names the field).
        message: String,
    },
    /// The benchmark could not be detected from the record fields.
    #[error("{path}: cannot tell the benchmark from the fields {fields:?}; pass --bench NAME (one of: {known})")]
    UnknownFormat {
        /// The data file.
        path: PathBuf,
        /// The fields of the first record.
        fields: Vec<String>,
        /// Known benchmark names.
        known: String,
    },
    /// An unknown benchmark or prompt-format name.
    #[error("unknown {what} {name:?} (known: {known})")]
    UnknownName {
        /// "benchmark" or "prompt format".
        what: &'static str,
        /// The name given.
        name: String,
        /// The accepted names.
        known: String,
    },
    /// The file holds no usable record.
    #[error("{0}: no records")]
    Empty(PathBuf),
    /// Invalid generator settings.
    #[error("{0}")]
    Invalid(String),
}
