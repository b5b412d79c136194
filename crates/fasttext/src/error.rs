//! Errors of this crate: each variant names the file, the field or the input line involved.
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A model file that is not in fastText's `.bin`/`.ftz` layout (or is truncated).
    #[error("{path}: bad fastText model file: {field}: {message}")]
    BadModel {
        /// The model file.
        path: PathBuf,
        /// The header field or section being read (e.g. `magic`, `dictionary entry 12`).
        field: String,
        /// What was wrong.
        message: String,
    },
    /// An invalid argument (flag value out of range, unsupported combination).
    #[error("invalid argument: {0}")]
    Args(String),
    /// Training data that cannot train a model (e.g. no labels after `minCountLabel`).
    #[error("{path}: {message}")]
    BadData {
        /// The training or test file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// An operation the model cannot do (e.g. predicting with an unsupervised model).
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    /// Wrap an IO error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

impl From<mathforge_io::Error> for Error {
    fn from(e: mathforge_io::Error) -> Self {
        match e {
            mathforge_io::Error::Io { path, source } => Error::Io { path, source },
            other => Error::Unsupported(other.to_string()),
        }
    }
}
