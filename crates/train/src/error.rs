//! Errors of this crate: each variant names the file, line, field or tensor involved, so a failed
//! run says where to look (STYLE.md "Errors").
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed (shape mismatch, device error, ...).
    #[error("tensor op: {0}")]
    Candle(#[from] candle_core::Error),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A shared-IO error (JSONL reading, atomic writes) from `mathforge-io`.
    #[error(transparent)]
    MathforgeIo(#[from] mathforge_io::Error),
    /// A config file or flag is invalid: names the file (if any) and the key.
    #[error("config {file}: {msg}")]
    Config {
        /// The config file, or `<flags>` for command-line values.
        file: String,
        /// What is wrong, naming the key.
        msg: String,
    },
    /// A checkpoint is missing a tensor or has the wrong shape / metadata.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A loss or gradient became NaN or infinite; training must stop.
    #[error("non-finite {what} at step {step}: {value}")]
    NonFinite {
        /// Which quantity ("loss", "gradient norm").
        what: String,
        /// The optimizer step (0-based) at which it happened.
        step: u64,
        /// The offending value.
        value: f64,
    },
    /// The estimated memory of a run exceeds what is available.
    #[error("estimated memory {need_mib} MiB exceeds the available {have_mib} MiB ({detail})")]
    OutOfMemory {
        /// Estimated need.
        need_mib: u64,
        /// Available (MemAvailable, or the `--max-memory-mib` limit).
        have_mib: u64,
        /// Breakdown of the estimate.
        detail: String,
    },
    /// Bad data: names the file and line.
    #[error("{path}:{line}: {msg}")]
    Data {
        /// The data file.
        path: PathBuf,
        /// 1-based line (0 when not line-based).
        line: u64,
        /// What is wrong.
        msg: String,
    },
    /// Anything else, with a message that says what and where.
    #[error("{0}")]
    Msg(String),
}

impl Error {
    /// An IO error at `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
