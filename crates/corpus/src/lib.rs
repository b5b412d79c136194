//! The DeepSeekMath corpus pipeline (paper §2.1): WARC/WET/JSONL/Parquet IO, math-preserving HTML
//! extraction, URL/exact/MinHash deduplication, 10-gram benchmark decontamination and the iterative
//! fastText mining loop with domain discovery.
pub mod document;
pub mod error;

pub use document::Document;
pub use error::{Error, Result};
pub mod extract;
pub mod formats;
pub mod stats;
pub mod warc;
pub mod text;
pub mod urlnorm;
pub mod dedup;
pub mod decont;
pub mod wet;

pub use formats::{read_documents, DocumentReader, DocumentWriter};
pub mod mine;
