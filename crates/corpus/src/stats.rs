//! Per-stage summary: documents in and out, bytes, seconds, and rejects counted by reason,
//! written as `summary.json` (for machines; `mathforge report` joins them) and `summary.md`
//! (for people).
//!
//! This is datatrove's `stats/<rank>.json` idea with its `dropped_<reason>` counters: bad input
//! is never fatal, it is skipped and shows up here with its reason, so a run over millions of
//! pages tells how much was lost and why. Shards each write their own summary; [`StageStats::merge`]
//! adds them up.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Counters of one stage (or one shard of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    /// Stage name, e.g. `extract`.
    pub stage: String,
    /// Records read (WARC records of the accepted types, HTML files, JSONL lines).
    pub docs_in: u64,
    /// Documents written.
    pub docs_out: u64,
    /// Payload bytes read.
    pub bytes_in: u64,
    /// Text bytes written.
    pub bytes_out: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Records skipped, by reason (e.g. `not_html`, `oversized`, `truncated_gzip`).
    pub rejects: BTreeMap<String, u64>,
    /// Things counted that are not rejects (e.g. `charset_lossy`, `records_skipped_type`).
    #[serde(default)]
    pub notes: BTreeMap<String, u64>,
}

impl StageStats {
    /// Empty counters for `stage`.
    pub fn new(stage: &str) -> Self {
        StageStats { stage: stage.to_string(), ..Default::default() }
    }

    /// Count one rejected record.
    pub fn reject(&mut self, reason: &str) {
        self.reject_n(reason, 1);
    }

    /// Count `n` rejected records.
    pub fn reject_n(&mut self, reason: &str, n: u64) {
        if n > 0 {
            *self.rejects.entry(reason.to_string()).or_insert(0) += n;
        }
    }

    /// Count a note (not a reject).
    pub fn note(&mut self, what: &str, n: u64) {
        if n > 0 {
            *self.notes.entry(what.to_string()).or_insert(0) += n;
        }
    }

    /// Total rejected records.
    pub fn rejected(&self) -> u64 {
        self.rejects.values().sum()
    }

    /// Add another shard's (or batch's) counters; seconds add up too (CPU-side view), so set
    /// `seconds` to the wall time afterwards when merging parallel work.
    pub fn merge(&mut self, other: &StageStats) {
        self.docs_in += other.docs_in;
        self.docs_out += other.docs_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.seconds += other.seconds;
        for (k, v) in &other.rejects {
            *self.rejects.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &other.notes {
            *self.notes.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// A markdown table of the counters.
    pub fn to_markdown(&self) -> String {
        let mut s = format!("# Stage `{}`\n\n| metric | value |\n|---|---:|\n", self.stage);
        s += &format!(
            "| documents in | {} |\n| documents out | {} |\n",
            self.docs_in, self.docs_out
        );
        s += &format!("| bytes in | {} |\n| bytes out | {} |\n", self.bytes_in, self.bytes_out);
        s += &format!("| seconds | {:.2} |\n", self.seconds);
        if self.seconds > 0.0 {
            s += &format!("| documents in / s | {:.1} |\n", self.docs_in as f64 / self.seconds);
        }
        s += &format!("| rejected | {} |\n", self.rejected());
        if !self.rejects.is_empty() {
            s += "\n## Rejects by reason\n\n| reason | records |\n|---|---:|\n";
            for (k, v) in &self.rejects {
                s += &format!("| {k} | {v} |\n");
            }
        }
        if !self.notes.is_empty() {
            s += "\n## Notes\n\n| what | count |\n|---|---:|\n";
            for (k, v) in &self.notes {
                s += &format!("| {k} | {v} |\n");
            }
        }
        s
    }

    /// Write `<dir>/<stem>.json` and `<dir>/<stem>.md` atomically (`stem` is usually `summary`).
    pub fn write(&self, dir: &Path, stem: &str) -> Result<()> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| Error::Msg(format!("summary: {e}")))?;
        mathforge_io::atomic::write_atomic(dir.join(format!("{stem}.json")), &json)?;
        mathforge_io::atomic::write_atomic(
            dir.join(format!("{stem}.md")),
            self.to_markdown().as_bytes(),
        )?;
        Ok(())
    }

    /// Read a `summary.json` written by [`StageStats::write`].
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::bad(path, "json", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_write() {
        let mut a = StageStats::new("extract");
        a.docs_in = 3;
        a.reject("not_html");
        let mut b = StageStats::new("extract");
        b.docs_in = 2;
        b.reject("not_html");
        b.reject("oversized");
        a.merge(&b);
        assert_eq!(a.docs_in, 5);
        assert_eq!(a.rejects["not_html"], 2);
        assert_eq!(a.rejected(), 3);
        let dir = tempfile::tempdir().unwrap();
        a.write(dir.path(), "summary").unwrap();
        let back = StageStats::read(&dir.path().join("summary.json")).unwrap();
        assert_eq!(back, a);
        let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        assert!(md.contains("| oversized | 1 |"), "{md}");
    }
}
