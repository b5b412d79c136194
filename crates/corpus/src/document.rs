//! The unit every corpus stage reads and writes: a [`Document`] with Hugging Face
//! datasets-style columns (`id`, `url`, `text`, plus free-form metadata such as `score`,
//! `domain`, `round`). This mirrors datatrove's `Document` (text, id, metadata).
use serde::{Deserialize, Serialize};

/// One page or record of a corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Document {
    /// Stable identifier (e.g. the WARC-Record-ID, or `file:line`).
    pub id: String,
    /// Source URL, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Extracted text (math kept as LaTeX).
    pub text: String,
    /// Everything else: `score`, `domain`, `round`, `language`, `warc_date`, ...
    #[serde(flatten)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}
