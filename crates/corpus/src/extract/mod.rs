//! The extraction stage (DeepSeekMath §2.1 builds on OpenWebMath-style extraction of Common
//! Crawl pages): raw records → [`Document`]s whose text keeps math as LaTeX.
//!
//! * [`charset`]: bytes → UTF-8 (HTTP header, `<meta>`, fallbacks; lossy decodes counted).
//! * [`html`]: HTML → text with math recovered from MathJax, KaTeX, MathML and images.
//! * [`math`]: MathML linearisation, TeX from image URLs, TeX fragment counting.
//! * [`boilerplate`]: element and line rules for navigation, footers, cookie notices, link lists.
//! * [`stage`]: the whole stage over files (WARC/WET/HTML/JSONL), sharded and parallel.
//!
//! [`extract_record`] decides per record: a WARC `response`/`resource` with an HTML payload is
//! extracted; a WET `conversion` record is taken as text; anything else is skipped with a
//! reason that the stage counts ([`Outcome::Reject`]).
pub mod boilerplate;
pub mod charset;
pub mod html;
pub mod math;
pub mod stage;

use crate::document::Document;
use crate::error::{Error, Result};
use crate::warc::{parse_http_response, WarcRecord};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use html::{extract_html, Extracted, HtmlOptions};

/// Settings of the extraction stage (`--config FILE.toml` keys equal these names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractConfig {
    /// Pages (HTTP payloads / HTML files) larger than this are skipped as `oversized`.
    pub max_bytes: u64,
    /// Documents with fewer characters of text than this are dropped as `too_short`.
    pub min_chars: usize,
    /// Remove boilerplate elements and lines.
    pub remove_boilerplate: bool,
    /// Accepted payload media types (lower case, without parameters).
    pub content_types: Vec<String>,
    /// Records per parallel batch.
    pub batch_size: usize,
}

impl Default for ExtractConfig {
    fn default() -> Self {
        ExtractConfig {
            // Common Crawl truncates payloads at 1 MiB; larger HTML is almost never prose.
            max_bytes: 2 << 20,
            min_chars: 1,
            remove_boilerplate: true,
            content_types: vec!["text/html".into(), "application/xhtml+xml".into()],
            batch_size: 256,
        }
    }
}

impl ExtractConfig {
    /// Read a TOML file whose keys are the fields above (unknown keys are an error).
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&s)
            .map_err(|e| Error::Config { path: path.to_path_buf(), message: e.to_string() })
    }

    fn html_options(&self) -> HtmlOptions {
        HtmlOptions { remove_boilerplate: self.remove_boilerplate }
    }
}

/// What happened to one input record.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A document to write.
    Doc(Box<Document>),
    /// Dropped, with the reason counted in the summary (e.g. `not_html`, `http_status`).
    Reject(&'static str),
    /// Not a page at all (WARC `request`, `metadata`, `warcinfo` records): counted as a note.
    Ignored(&'static str),
}

/// Extra facts about a record worth counting (not rejects).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordNotes {
    /// The charset decode replaced bytes.
    pub lossy_charset: bool,
}

/// The media type of a `Content-Type` value, lower case, without parameters.
pub fn media_type(ct: &str) -> String {
    ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Extract one HTML page given as bytes.
pub fn extract_page(
    bytes: &[u8],
    content_type: Option<&str>,
    id: String,
    url: Option<String>,
    cfg: &ExtractConfig,
) -> (Outcome, RecordNotes) {
    let mut notes = RecordNotes::default();
    if bytes.len() as u64 > cfg.max_bytes {
        return (Outcome::Reject("oversized"), notes);
    }
    let decoded = charset::decode_html(bytes, content_type);
    notes.lossy_charset = decoded.lossy;
    let ex = extract_html(&decoded.text, &cfg.html_options());
    if ex.text.trim().is_empty() {
        return (Outcome::Reject("empty_text"), notes);
    }
    if ex.text.chars().count() < cfg.min_chars {
        return (Outcome::Reject("too_short"), notes);
    }
    let mut doc = Document::new(id, url, ex.text);
    if let Some(t) = ex.title {
        doc.metadata.insert("title".into(), t.into());
    }
    doc.metadata.insert("charset".into(), decoded.charset.into());
    doc.metadata.insert("math_markup".into(), (ex.math_from_markup as u64).into());
    (Outcome::Doc(Box::new(doc)), notes)
}

/// Decide and extract one WARC record (WARC or WET file).
pub fn extract_record(rec: &WarcRecord, cfg: &ExtractConfig) -> (Outcome, RecordNotes) {
    let id =
        rec.record_id().unwrap_or("").trim_start_matches('<').trim_end_matches('>').to_string();
    let url = rec.target_uri().map(str::to_string);
    let date = rec.date().map(str::to_string);
    let with_date = |(o, n): (Outcome, RecordNotes)| {
        let o = match o {
            Outcome::Doc(mut d) => {
                if let Some(dt) = &date {
                    d.metadata.insert("warc_date".into(), dt.clone().into());
                }
                Outcome::Doc(d)
            }
            other => other,
        };
        (o, n)
    };
    match rec.warc_type().to_ascii_lowercase().as_str() {
        "response" => {
            let http = match parse_http_response(&rec.block) {
                Ok(h) => h,
                Err(_) => return (Outcome::Reject("bad_http"), RecordNotes::default()),
            };
            if !(200..300).contains(&http.status) {
                return (Outcome::Reject("http_status"), RecordNotes::default());
            }
            let ct = http.header("Content-Type");
            let mt = ct.map(media_type).unwrap_or_default();
            if !accepts(cfg, &mt, http.body) {
                return (Outcome::Reject("not_html"), RecordNotes::default());
            }
            with_date(extract_page(http.body, ct, id, url, cfg))
        }
        "resource" => {
            let ct = rec.content_type();
            let mt = ct.map(media_type).unwrap_or_default();
            if !accepts(cfg, &mt, &rec.block) {
                return (Outcome::Reject("not_html"), RecordNotes::default());
            }
            with_date(extract_page(&rec.block, ct, id, url, cfg))
        }
        "conversion" => {
            // WET: the text is already extracted by Common Crawl (math markup is lost there).
            if rec.block.len() as u64 > cfg.max_bytes {
                return (Outcome::Reject("oversized"), RecordNotes::default());
            }
            let text = String::from_utf8_lossy(&rec.block);
            let notes = RecordNotes { lossy_charset: matches!(text, std::borrow::Cow::Owned(_)) };
            let text = text.trim().to_string();
            if text.chars().count() < cfg.min_chars.max(1) {
                return (Outcome::Reject("empty_text"), notes);
            }
            let mut doc = Document::new(id, url, text);
            if let Some(lang) = rec.header("WARC-Identified-Content-Language") {
                doc.metadata.insert("language".into(), lang.into());
            }
            with_date((Outcome::Doc(Box::new(doc)), notes))
        }
        "request" => (Outcome::Ignored("warc_request"), RecordNotes::default()),
        "metadata" => (Outcome::Ignored("warc_metadata"), RecordNotes::default()),
        "warcinfo" => (Outcome::Ignored("warc_warcinfo"), RecordNotes::default()),
        _ => (Outcome::Ignored("warc_other_type"), RecordNotes::default()),
    }
}

fn accepts(cfg: &ExtractConfig, media_type: &str, body: &[u8]) -> bool {
    if media_type.is_empty() {
        // No header: sniff (WHATWG MIME sniffing, reduced to "starts like HTML").
        let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
        let head = head.trim_start();
        return head.starts_with("<!doctype html")
            || head.starts_with("<html")
            || head.starts_with("<head")
            || head.starts_with("<body");
    }
    cfg.content_types.iter().any(|c| c == media_type)
}
