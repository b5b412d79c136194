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

impl Document {
    /// A document with no metadata.
    pub fn new(id: impl Into<String>, url: Option<String>, text: impl Into<String>) -> Self {
        Document { id: id.into(), url, text: text.into(), metadata: serde_json::Map::new() }
    }

    /// Build from one parsed JSON record (a JSONL line or a converted Parquet row).
    ///
    /// `text` must be a string. `id` may be a string or a number; when absent, `fallback_id`
    /// (e.g. `file:line`) is used so every document stays addressable. A `url` that is not a
    /// string is kept in the metadata rather than dropped. Errors are plain messages; the caller
    /// adds the file and line.
    pub fn from_json(
        value: serde_json::Value,
        fallback_id: impl FnOnce() -> String,
    ) -> Result<Self, String> {
        let serde_json::Value::Object(mut map) = value else {
            return Err("record is not a JSON object".to_string());
        };
        let text = match map.remove("text") {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => {
                return Err(format!("field `text` is not a string (found {})", json_kind(&other)))
            }
            None => return Err("missing field `text`".to_string()),
        };
        let id = match map.remove("id") {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(serde_json::Value::Null) | None => fallback_id(),
            Some(other) => {
                return Err(format!(
                    "field `id` is not a string or number (found {})",
                    json_kind(&other)
                ))
            }
        };
        let url = match map.remove("url") {
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Null) | None => None,
            Some(other) => {
                map.insert("url".to_string(), other);
                None
            }
        };
        Ok(Document { id, url, text, metadata: map })
    }

    /// Set one metadata field (builder style).
    pub fn with_meta(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.insert(key.to_string(), value.into());
        self
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
