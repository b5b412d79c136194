//! WET files (Common Crawl's extracted plain text: WARC records of type `conversion`,
//! `Content-Type: text/plain`) read as [`Document`]s.
//!
//! WET text has lost its math markup (MathJax scripts and MathML are gone), which is why
//! DeepSeekMath/OpenWebMath extract from WARC; WET input is still useful for classifier negatives
//! and for comparing extractions. Each `conversion` record becomes one document with the record
//! id, the target URI, `warc_date` and `language` (`WARC-Identified-Content-Language`).
use crate::document::Document;
use crate::error::Result;
use crate::extract::{extract_record, ExtractConfig, Outcome};
use crate::warc::{SkipReason, Skipped, WarcOptions, WarcReader};
use std::path::Path;

/// One item of a WET file: a document, or a skipped record with its reason.
pub type WetItem = std::result::Result<Document, Skipped>;

/// Iterate over the `conversion` records of a `.wet` / `.wet.gz` / `.warc.wet.gz` file as documents
/// (other record types such as `warcinfo` are passed over silently).
pub fn read_wet(
    path: impl AsRef<Path>,
    opts: WarcOptions,
) -> Result<impl Iterator<Item = WetItem>> {
    let cfg = ExtractConfig { max_bytes: opts.max_record_bytes, ..ExtractConfig::default() };
    Ok(WarcReader::open(path, opts)?.filter_map(move |item| match item {
        Err(s) => Some(Err(s)),
        Ok(rec) => {
            if !rec.warc_type().eq_ignore_ascii_case("conversion") {
                return None;
            }
            match extract_record(&rec, &cfg).0 {
                Outcome::Doc(d) => Some(Ok(*d)),
                Outcome::Reject("oversized") => Some(Err(Skipped {
                    reason: SkipReason::Oversized,
                    offset: rec.offset,
                    message: format!(
                        "conversion record of {} bytes over the limit",
                        rec.block.len()
                    ),
                })),
                // Empty conversion records carry no text: nothing to return.
                Outcome::Reject(_) => None,
                Outcome::Ignored(_) => None,
            }
        }
    }))
}
