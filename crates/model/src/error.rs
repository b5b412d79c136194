//! Errors of the model crate: each variant names the file, field or tensor involved and what was
//! expected, so a bad checkpoint or config gives a one-line answer instead of a panic (issue 2,
//! "Bad input").
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file (config.json, index, tokenizer.json) is not valid JSON for its schema.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A config field is missing or has a value we cannot use.
    #[error("{path}: field `{field}`: {msg}")]
    ConfigField {
        /// The config file (or `<memory>`).
        path: PathBuf,
        /// The field name as written in config.json.
        field: String,
        /// What was expected.
        msg: String,
    },
    /// A checkpoint lacks a tensor the architecture needs.
    #[error("{path}: missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        /// Checkpoint directory or file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Shape the config implies.
        expected: Vec<usize>,
    },
    /// A checkpoint holds a tensor the architecture does not use.
    #[error("{path}: unexpected tensor `{name}` (shape {shape:?}) not used by this config")]
    ExtraTensor {
        /// Checkpoint directory or file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A checkpoint tensor has the wrong shape for the config.
    #[error("{path}: tensor `{name}` has shape {got:?}, config implies {expected:?}")]
    ShapeMismatch {
        /// Checkpoint directory or file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Shape the config implies.
        expected: Vec<usize>,
        /// Shape found.
        got: Vec<usize>,
    },
    /// A safetensors file could not be parsed or written.
    #[error("{path}: safetensors: {msg}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The error.
        msg: String,
    },
    /// tokenizer.json knows more tokens than the embedding has rows.
    #[error("{path}: tokenizer has {tokenizer_vocab} tokens but config.json vocab_size is {config_vocab}")]
    VocabMismatch {
        /// tokenizer.json.
        path: PathBuf,
        /// Tokens in the tokenizer (including added tokens).
        tokenizer_vocab: usize,
        /// `vocab_size` in config.json.
        config_vocab: usize,
    },
    /// A tokenizer file could not be loaded or used.
    #[error("{path}: tokenizer: {msg}")]
    Tokenizer {
        /// tokenizer.json.
        path: PathBuf,
        /// The error.
        msg: String,
    },
    /// A sequence is longer than the model's context window.
    #[error("sequence needs position {position} but max_position_embeddings is {max}")]
    ContextTooLong {
        /// Largest position requested (0-based).
        position: usize,
        /// `max_position_embeddings`.
        max: usize,
    },
    /// Tensors passed to the model have the wrong shape or dtype.
    #[error("bad input `{what}`: {msg}")]
    BadInput {
        /// Which argument.
        what: &'static str,
        /// What was expected.
        msg: String,
    },
    /// A `--device` string could not be used.
    #[error("device `{spec}`: {msg}")]
    Device {
        /// The string given.
        spec: String,
        /// Why it cannot be used.
        msg: String,
    },
    /// An error from the shared IO crate (atomic writes).
    #[error(transparent)]
    SharedIo(#[from] mathforge_io::Error),
    /// An error from candle (tensor ops).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// Anything else, with a message that says what and where.
    #[error("{0}")]
    Msg(String),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// An [`Error::ConfigField`].
    pub fn field(path: impl Into<PathBuf>, field: &str, msg: impl Into<String>) -> Self {
        Error::ConfigField { path: path.into(), field: field.to_string(), msg: msg.into() }
    }
}
