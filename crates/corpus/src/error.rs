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
    /// An operating-system error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A record that cannot be read: `file:where: message` (where = line, row or byte offset).
    #[error("{path}:{at}: {message}")]
    BadRecord {
        /// The file.
        path: std::path::PathBuf,
        /// Location inside the file, e.g. `12` (line), `row 7`, `offset 4096`.
        at: String,
        /// What was wrong.
        message: String,
    },
    /// A file whose format cannot be told from its name.
    #[error("{path}: unknown format (expected {expected})")]
    UnknownFormat {
        /// The file.
        path: std::path::PathBuf,
        /// The accepted extensions.
        expected: &'static str,
    },
    /// A configuration file or value that is not valid.
    #[error("{path}: {message}")]
    Config {
        /// The file (or `<flags>`).
        path: std::path::PathBuf,
        /// What was wrong.
        message: String,
    },
    /// An error from the shared IO crate (JSONL, atomic files, shard markers).
    #[error(transparent)]
    SharedIo(#[from] mathforge_io::Error),
}

impl Error {
    /// Wrap an `io::Error` with the path it happened on.
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// A bad record at `at` (line, row or offset) of `path`.
    pub fn bad(path: impl Into<std::path::PathBuf>, at: impl ToString, message: impl ToString) -> Self {
        Error::BadRecord { path: path.into(), at: at.to_string(), message: message.to_string() }
    }
}
