//! Benchmark decontamination (DeepSeekMath §2.1; issue #4 item 5).
//!
//! "To avoid benchmark contamination ... we filter out web pages containing questions or answers
//! from English mathematical benchmarks such as GSM8K and MATH and Chinese benchmarks such as
//! CMATH and AGIEval. The filtering criteria are as follows: any text segment containing a 10-gram
//! string that matches exactly with any sub-string from the evaluation benchmarks is removed from
//! our math training corpus. For benchmark texts that are shorter than 10 grams but have at least
//! 3 grams, we employ exact matching to filter out contaminated web pages."
//!
//! Texts are compared after [`crate::text::normalize`]: words are lowercased, punctuation-free
//! tokens and Chinese/Japanese text is one token per character, so a CMATH question is matched by
//! 10 consecutive characters. GSM8K's calculator annotations (`<<48/2=24>>`) never occur on the web
//! and would break every 10-gram that spans them, so `<<...>>` spans are removed from benchmark
//! texts first. The index ([`BenchmarkIndex`]) maps the xxh3 hash of every benchmark 10-gram to the
//! first item that contains it; shorter texts (3..9 tokens) become whole-token substring patterns
//! searched with Aho-Corasick. A page is dropped on its first match, and the match (benchmark file,
//! line, id, field, n-gram) is written with it.
//!
//! Benchmarks are JSONL files; `FILE:field,field` picks the fields, otherwise every present field
//! of [`DEFAULT_FIELDS`] is used (strings, lists of strings, or chat `messages` with `content`).
use crate::dedup::input::{parse, spawn_reader, LineWriter};
use crate::error::{Error, Result};
use aho_corasick::AhoCorasick;
use mathforge_io::shard::Shard;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

/// Fields read from a benchmark record when none are given: the question and answer fields of
/// GSM8K, MATH, MATH-500, CMATH, MGSM, AGIEval Gaokao, MMLU-STEM, SAT, OCW and miniF2F
/// (see `../shared/data/benchmarks/README.md`).
pub const DEFAULT_FIELDS: &[&str] = &[
    "question",
    "problem",
    "answer",
    "solution",
    "cot",
    "golden",
    "passage",
    "informal_statement",
    "informal_proof",
    "messages",
];

/// N-gram length and the shortest text that is still matched (paper: 10 and 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecontConfig {
    /// Tokens per n-gram.
    pub n: usize,
    /// Texts with at least this many (but fewer than `n`) tokens are matched as substrings.
    pub min_words: usize,
}

impl Default for DecontConfig {
    fn default() -> Self {
        DecontConfig { n: 10, min_words: 3 }
    }
}

/// `FILE[:field,field]` from the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkSpec {
    /// The JSONL file.
    pub path: PathBuf,
    /// Fields to read; `None` = [`DEFAULT_FIELDS`].
    pub fields: Option<Vec<String>>,
}

impl FromStr for BenchmarkSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some((path, fields)) = s.rsplit_once(':') {
            let looks_like_fields = !fields.is_empty()
                && fields.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ',' || c == '-');
            if looks_like_fields && !Path::new(s).exists() {
                let list: Vec<String> = fields.split(',').filter(|f| !f.is_empty()).map(str::to_string).collect();
                return Ok(BenchmarkSpec { path: PathBuf::from(path), fields: Some(list) });
            }
        }
        Ok(BenchmarkSpec { path: PathBuf::from(s), fields: None })
    }
}

/// Where a benchmark text came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkItem {
    /// Benchmark file.
    pub benchmark: String,
    /// 1-based line in that file.
    pub line: u64,
    /// The record's `id` / `unique_id`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The field the text came from.
    pub field: String,
}

/// Hasher for keys that are already uniformly distributed 64-bit hashes.
#[derive(Default)]
struct IdentityHasher(u64);
impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Counts of what the index holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IndexStats {
    /// Benchmark texts read (one per record and field).
    pub texts: u64,
    /// Distinct n-grams indexed.
    pub ngrams: u64,
    /// Short texts matched as substrings.
    pub short_texts: u64,
    /// Texts below `min_words`, not matched.
    pub too_short: u64,
    /// Records per benchmark file.
    pub records: BTreeMap<String, u64>,
}

/// The n-grams and short texts of a set of benchmarks.
pub struct BenchmarkIndex {
    config: DecontConfig,
    items: Vec<BenchmarkItem>,
    ngrams: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>,
    short: Option<AhoCorasick>,
    short_items: Vec<u32>,
    stats: IndexStats,
}

/// A match: the benchmark item and the normalized text that matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// Where the benchmark text came from.
    #[serde(flatten)]
    pub item: BenchmarkItem,
    /// The matching n-gram (or short text), normalized.
    pub ngram: String,
}

fn field_texts(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Array(a) => {
            for x in a {
                match x {
                    serde_json::Value::Object(o) => {
                        if o.get("role").and_then(|r| r.as_str()) != Some("system") {
                            if let Some(c) = o.get("content") {
                                field_texts(c, out);
                            }
                        }
                    }
                    other => field_texts(other, out),
                }
            }
        }
        _ => {}
    }
}

/// Remove GSM8K calculator annotations `<<...>>`.
fn strip_annotations(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("<<") {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("<<") {
        out.push_str(&rest[..i]);
        match rest[i..].find(">>") {
            Some(j) => rest = &rest[i + j + 2..],
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.into()
}

impl BenchmarkIndex {
    /// Read every benchmark file and build the index. A file that cannot be read, or a record
    /// that is not a JSON object, is an error naming file and line; a record without any of the
    /// wanted fields is skipped.
    pub fn build(specs: &[BenchmarkSpec], config: DecontConfig) -> Result<Self> {
        let mut idx = BenchmarkIndex {
            config,
            items: Vec::new(),
            ngrams: HashMap::default(),
            short: None,
            short_items: Vec::new(),
            stats: IndexStats::default(),
        };
        let mut patterns: Vec<String> = Vec::new();
        let mut starts = Vec::new();
        let mut hashes = Vec::new();
        for spec in specs {
            let name = spec.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let fields: Vec<String> = match &spec.fields {
                Some(f) => f.clone(),
                None => DEFAULT_FIELDS.iter().map(|s| s.to_string()).collect(),
            };
            for rec in mathforge_io::jsonl::JsonlReader::open(&spec.path)? {
                let v = rec.value?;
                let obj = v.as_object().ok_or_else(|| Error::BadRecord {
                    path: spec.path.clone(),
                    at: rec.line.to_string(),
                    message: "benchmark record is not a JSON object".into(),
                })?;
                *idx.stats.records.entry(name.clone()).or_default() += 1;
                let id = ["id", "unique_id", "problem_name"].iter().find_map(|k| match obj.get(*k) {
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                });
                for field in &fields {
                    let Some(value) = obj.get(field) else { continue };
                    let mut texts = Vec::new();
                    field_texts(value, &mut texts);
                    for text in texts {
                        idx.stats.texts += 1;
                        let norm = crate::text::normalize(&strip_annotations(&text));
                        let words = crate::text::count_words(&norm);
                        if words < config.min_words {
                            idx.stats.too_short += 1;
                            continue;
                        }
                        let item = idx.items.len() as u32;
                        idx.items.push(BenchmarkItem {
                            benchmark: name.clone(),
                            line: rec.line,
                            id: id.clone(),
                            field: field.clone(),
                        });
                        if words < config.n {
                            idx.stats.short_texts += 1;
                            patterns.push(format!(" {norm} "));
                            idx.short_items.push(item);
                        } else {
                            crate::text::ngram_hashes(&norm, config.n, &mut starts, &mut hashes);
                            for &h in &hashes {
                                idx.ngrams.entry(h).or_insert(item);
                            }
                        }
                    }
                }
            }
        }
        idx.stats.ngrams = idx.ngrams.len() as u64;
        if !patterns.is_empty() {
            idx.short = Some(
                AhoCorasick::new(&patterns)
                    .map_err(|e| Error::Msg(format!("cannot build the short-text matcher: {e}")))?,
            );
        }
        Ok(idx)
    }

    /// What the index holds.
    pub fn stats(&self) -> &IndexStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> DecontConfig {
        self.config
    }

    /// The first benchmark match in a normalized text, if any. `starts`/`hashes` are scratch.
    pub fn find_normalized(&self, norm: &str, starts: &mut Vec<usize>, hashes: &mut Vec<u64>) -> Option<Match> {
        crate::text::ngram_hashes(norm, self.config.n, starts, hashes);
        for (i, h) in hashes.iter().enumerate() {
            if let Some(&item) = self.ngrams.get(h) {
                return Some(Match {
                    item: self.items[item as usize].clone(),
                    ngram: crate::text::ngram_text(norm, starts, i, self.config.n).to_string(),
                });
            }
        }
        let ac = self.short.as_ref()?;
        let padded = format!(" {norm} ");
        let m = ac.find(&padded)?;
        let item = self.short_items[m.pattern().as_usize()];
        Some(Match {
            item: self.items[item as usize].clone(),
            ngram: padded[m.start() + 1..m.end() - 1].to_string(),
        })
    }

    /// The first benchmark match in a raw text.
    pub fn find(&self, text: &str) -> Option<Match> {
        let norm = crate::text::normalize(text);
        self.find_normalized(&norm, &mut Vec::new(), &mut Vec::new())
    }
}

/// What a decontamination run did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DecontSummary {
    /// Valid documents read.
    pub docs_in: u64,
    /// Documents kept.
    pub docs_out: u64,
    /// Documents removed, by benchmark file.
    pub removed: BTreeMap<String, u64>,
    /// Records skipped, by reason.
    pub bad_records: BTreeMap<String, u64>,
    /// The benchmark index.
    pub index: IndexStats,
    /// Wall time.
    pub seconds: f64,
}

pub use crate::dedup::input::expand_inputs;

/// `out` for shard `shard`: unchanged for one shard, else `name-IIIII-of-NNNNN.ext`.
pub fn shard_path(out: &Path, shard: Shard) -> PathBuf {
    if shard.shards == 1 {
        return out.to_path_buf();
    }
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (stem, ext) = match name.find('.') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name.as_str(), ""),
    };
    out.with_file_name(format!("{stem}-{:05}-of-{:05}{ext}", shard.index, shard.shards))
}

/// Directory holding the completion markers of a run writing `out`.
pub fn marker_dir(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!(".{name}.decont"))
}

/// Decontaminate this shard's inputs: kept records (unchanged) to `out` (shard-suffixed when
/// `shards > 1`), removed ones with a `decont_match` object to `removed` when given. Skips a
/// shard whose completion marker exists.
pub fn decontaminate(
    inputs: &[PathBuf],
    index: &BenchmarkIndex,
    out: &Path,
    removed: Option<&Path>,
    shard: Shard,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<DecontSummary> {
    let markers = marker_dir(out);
    if shard.is_done(&markers) {
        let p = shard.marker(&markers);
        let bytes = std::fs::read(&p).map_err(|e| Error::Io { path: p.clone(), source: e })?;
        return serde_json::from_slice(&bytes)
            .map_err(|e| Error::BadRecord { path: p, at: "1".into(), message: e.to_string() });
    }
    let _span = tracing::info_span!("decont", shard = shard.index).entered();
    let start = Instant::now();
    let files = shard.select(inputs);
    let mut kept = LineWriter::create(&shard_path(out, shard))?;
    let mut dropped = match removed {
        Some(p) => Some(LineWriter::create(&shard_path(p, shard))?),
        None => None,
    };
    let mut summary = DecontSummary { index: index.stats().clone(), ..Default::default() };
    let (rx, handle) = spawn_reader(files.clone());
    for batch in rx {
        let batch = batch?;
        let results: Vec<std::result::Result<Option<Match>, &'static str>> = batch
            .par_iter()
            .map_init(
                || (String::new(), Vec::new(), Vec::new()),
                |(norm, starts, hashes), raw| {
                    let doc = parse(raw, &files[raw.file])?;
                    crate::text::normalize_into(&doc.text, norm);
                    Ok(index.find_normalized(norm, starts, hashes))
                },
            )
            .collect();
        progress(batch.len() as u64);
        for (raw, res) in batch.iter().zip(results) {
            match res {
                Err(reason) => *summary.bad_records.entry(reason.to_string()).or_default() += 1,
                Ok(None) => {
                    summary.docs_in += 1;
                    if let Some(line) = crate::dedup::input::to_line(raw) {
                        kept.write_line(&line)?;
                        summary.docs_out += 1;
                    }
                }
                Ok(Some(m)) => {
                    summary.docs_in += 1;
                    *summary.removed.entry(m.item.benchmark.clone()).or_default() += 1;
                    if let Some(w) = dropped.as_mut() {
                        let mut obj = crate::dedup::input::to_json(raw).unwrap_or_default();
                        obj.insert(
                            "decont_match".into(),
                            serde_json::to_value(&m).map_err(|e| Error::Msg(e.to_string()))?,
                        );
                        w.write_json(&obj)?;
                    }
                }
            }
        }
    }
    handle.join().map_err(|_| Error::Msg("input reader thread panicked".into()))?;
    kept.finish()?;
    if let Some(w) = dropped {
        w.finish()?;
    }
    summary.seconds = start.elapsed().as_secs_f64();
    let v = serde_json::to_value(&summary).map_err(|e| Error::Msg(e.to_string()))?;
    shard.mark_done(&markers, &v)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing_and_annotations() {
        let s: BenchmarkSpec = "b/gsm8k.jsonl:question,answer".parse().unwrap();
        assert_eq!(s.path, PathBuf::from("b/gsm8k.jsonl"));
        assert_eq!(s.fields, Some(vec!["question".to_string(), "answer".to_string()]));
        let s: BenchmarkSpec = "b/math.jsonl".parse().unwrap();
        assert_eq!(s.fields, None);
        assert_eq!(strip_annotations("16 - 3 = <<16-3=13>>13 eggs <<x"), "16 - 3 = 13 eggs <<x");
        let p = shard_path(Path::new("/o/clean.jsonl.gz"), Shard::new(3, 8).unwrap());
        assert_eq!(p, PathBuf::from("/o/clean-00003-of-00008.jsonl.gz"));
    }
}
