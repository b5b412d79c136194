//! Deduplication (DeepSeekMath §2.1; issue #4 items 4 and 7): exact-URL, exact normalized text and
//! MinHash-LSH near-duplicate removal, run as datatrove's four disk-backed stages
//! (`pipeline/dedup/minhash.py`):
//!
//! 1. **signatures** (per shard, all cores): each valid record gets a URL key, a text key and
//!    one key per LSH band ([`minhash`]); every key kind is written as a file of `(key, doc)`
//!    records **sorted** per shard ([`keys`]), plus the shard's document ids.
//! 2. **cluster** (global, once): for each key kind the shards' sorted files are k-way merged;
//!    documents sharing a key are joined in a [`unionfind::UnionFind`]. Every cluster keeps its
//!    first document (smallest `(shard, doc)`), the others are listed per shard with the reason
//!    (`url`, `exact` or `minhash`) and the id of the kept document.
//! 3. **filter** (per shard): the shard's inputs are re-read; kept records are written unchanged,
//!    removed ones go to `removed/` with `dedup_reason` and `duplicate_of` added.
//!
//! Output layout under `DIR`:
//!
//! ```text
//! output/00000.jsonl.gz     kept records of shard 0 (input lines byte for byte)
//! removed/00000.jsonl.gz    removed records + dedup_reason, duplicate_of
//! summary.json, summary.md  docs in/out, removed by reason, bad records by reason, seconds
//! work/signatures/{url,exact,band00..}/00000.keys, ids/00000.jsonl, completions/00000
//! work/cluster/remove/00000.jsonl, completions/00000
//! work/filter/completions/00000
//! ```
//!
//! Shards (`--shard I --shards N`) own the input files with `index % N == I`; each stage writes
//! its completion marker last and a rerun skips finished shards, so the stages map onto array
//! jobs (see `docs/dedup.md` for a Slurm example). Memory: a shard holds its keys
//! (16 kinds x 16 bytes per document) until they are sorted and written; the cluster stage
//! holds only documents that have a duplicate.
pub mod exact;
pub mod input;
pub mod keys;
pub mod minhash;
pub mod unionfind;

use crate::error::{Error, Result};
use input::{parse, spawn_reader, LineWriter, Raw};
use mathforge_io::shard::Shard;
use minhash::{MinHasher, MinhashConfig, Scratch};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;
use unionfind::UnionFind;

/// Which deduplication methods run, and the MinHash parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    /// Exact-URL dedup on normalized URLs.
    pub url: bool,
    /// Exact dedup on normalized text.
    pub exact: bool,
    /// MinHash-LSH near-dedup.
    pub minhash: bool,
    /// MinHash parameters.
    pub minhash_config: MinhashConfig,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig { url: true, exact: true, minhash: true, minhash_config: MinhashConfig::default() }
    }
}

impl DedupConfig {
    /// Key kinds in clustering order: `url`, `exact`, `band00`...
    pub fn kinds(&self) -> Vec<String> {
        let mut k = Vec::new();
        if self.url {
            k.push("url".to_string());
        }
        if self.exact {
            k.push("exact".to_string());
        }
        if self.minhash {
            k.extend((0..self.minhash_config.num_buckets).map(|b| format!("band{b:02}")));
        }
        k
    }
}

/// Called with the number of records just processed (for progress bars).
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// Paths of one dedup run under its output directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }
    /// Stage directory of the signature stage (its `completions/` live here).
    pub fn signatures(&self) -> PathBuf {
        self.root.join("work").join("signatures")
    }
    /// Stage directory of the cluster stage.
    pub fn cluster(&self) -> PathBuf {
        self.root.join("work").join("cluster")
    }
    /// Stage directory of the filter stage.
    pub fn filter(&self) -> PathBuf {
        self.root.join("work").join("filter")
    }
    /// Sorted key file of `kind` for `shard`.
    pub fn key_file(&self, kind: &str, shard: usize) -> PathBuf {
        self.signatures().join(kind).join(format!("{shard:05}.keys"))
    }
    /// Document ids of `shard`, one JSON string per line in document order.
    pub fn ids_file(&self, shard: usize) -> PathBuf {
        self.signatures().join("ids").join(format!("{shard:05}.jsonl"))
    }
    /// Removal list of `shard`.
    pub fn remove_file(&self, shard: usize) -> PathBuf {
        self.cluster().join("remove").join(format!("{shard:05}.jsonl"))
    }
    /// Kept records of `shard`.
    pub fn output_file(&self, shard: usize) -> PathBuf {
        self.root.join("output").join(format!("{shard:05}.jsonl.gz"))
    }
    /// Removed records of `shard`.
    pub fn removed_file(&self, shard: usize) -> PathBuf {
        self.root.join("removed").join(format!("{shard:05}.jsonl.gz"))
    }
}

/// What the signature stage of one shard saw (stored in its completion marker).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SignatureSummary {
    /// Input files of the shard, in order (checked again by the filter stage).
    pub files: Vec<PathBuf>,
    /// Valid documents.
    pub docs: u64,
    /// Documents too short for a MinHash signature (fewer words than `n_grams`).
    pub no_signature: u64,
    /// Skipped records by reason.
    pub bad_records: BTreeMap<String, u64>,
    /// Wall time.
    pub seconds: f64,
    /// The configuration used (the cluster stage checks that all shards agree).
    pub config: Option<DedupConfig>,
}

/// What the cluster stage found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterSummary {
    /// Shards merged.
    pub shards: usize,
    /// Key records read.
    pub records: u64,
    /// Clusters with at least two documents.
    pub clusters: u64,
    /// Documents to remove, by reason.
    pub removed: BTreeMap<String, u64>,
    /// Wall time.
    pub seconds: f64,
}

/// What the filter stage of one shard wrote.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FilterSummary {
    /// Valid documents read.
    pub docs_in: u64,
    /// Documents kept.
    pub docs_out: u64,
    /// Documents removed, by reason.
    pub removed: BTreeMap<String, u64>,
    /// Wall time.
    pub seconds: f64,
}

/// Totals over all stages and shards (`summary.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DedupSummary {
    /// Shards.
    pub shards: usize,
    /// Valid documents read.
    pub docs_in: u64,
    /// Documents kept.
    pub docs_out: u64,
    /// Documents removed, by reason (`url`, `exact`, `minhash`).
    pub removed: BTreeMap<String, u64>,
    /// Records skipped, by reason (`invalid_json`, `missing_text`, `read_error`).
    pub bad_records: BTreeMap<String, u64>,
    /// Clusters with two or more documents.
    pub clusters: u64,
    /// Seconds per stage, summed over shards.
    pub seconds: BTreeMap<String, f64>,
}

fn read_marker<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::BadRecord { path: path.to_path_buf(), at: "1".into(), message: e.to_string() })
}

fn mark<T: Serialize>(shard: Shard, dir: &Path, summary: &T) -> Result<()> {
    let v = serde_json::to_value(summary).map_err(|e| Error::Msg(format!("summary: {e}")))?;
    Ok(shard.mark_done(dir, &v)?)
}

struct DocKeys {
    id: String,
    url: Option<u64>,
    exact: u64,
    bands: Vec<u64>,
}

/// Stage 1 for one shard: keys of every valid record, written sorted per kind. Returns the
/// shard's summary (read back from the marker when the shard was already done).
pub fn signatures(
    inputs: &[PathBuf],
    shard: Shard,
    out: &Path,
    config: &DedupConfig,
    progress: Progress<'_>,
) -> Result<SignatureSummary> {
    let layout = Layout::new(out);
    let stage = layout.signatures();
    if shard.is_done(&stage) {
        return read_marker(&shard.marker(&stage));
    }
    let _span = tracing::info_span!("dedup_signatures", shard = shard.index).entered();
    let start = Instant::now();
    let files = shard.select(inputs);
    let hasher = MinHasher::new(config.minhash_config);
    let kinds = config.kinds();
    let mut records: Vec<Vec<(u64, u32)>> = vec![Vec::new(); kinds.len()];
    let band0 = usize::from(config.url) + usize::from(config.exact);
    let mut ids = LineWriter::create(&layout.ids_file(shard.index))?;
    let mut summary = SignatureSummary { files: files.clone(), config: Some(*config), ..Default::default() };
    let (rx, handle) = spawn_reader(files.clone());
    for batch in rx {
        let batch = batch?;
        let keys: Vec<std::result::Result<DocKeys, &'static str>> = batch
            .par_iter()
            .map_init(
                || (String::new(), Scratch::default()),
                |(norm, scratch), raw: &Raw| {
                    let doc = parse(raw, &files[raw.file])?;
                    crate::text::normalize_into(&doc.text, norm);
                    let mut bands = Vec::new();
                    if config.minhash {
                        hasher.text_band_keys(norm, scratch, &mut bands);
                    }
                    Ok(DocKeys {
                        url: if config.url { doc.url.as_deref().map(exact::url_key) } else { None },
                        exact: exact::text_key(norm),
                        bands,
                        id: doc.id,
                    })
                },
            )
            .collect();
        progress(batch.len() as u64);
        for k in keys {
            let k = match k {
                Ok(k) => k,
                Err(reason) => {
                    *summary.bad_records.entry(reason.to_string()).or_default() += 1;
                    continue;
                }
            };
            let doc = u32::try_from(summary.docs).map_err(|_| {
                Error::Msg(format!("shard {} has more than 2^32 documents; use more shards", shard.index))
            })?;
            let mut kind = 0;
            if config.url {
                if let Some(u) = k.url {
                    records[kind].push((u, doc));
                }
                kind += 1;
            }
            if config.exact {
                records[kind].push((k.exact, doc));
            }
            if config.minhash && k.bands.is_empty() {
                summary.no_signature += 1;
            }
            for (b, key) in k.bands.iter().enumerate() {
                records[band0 + b].push((*key, doc));
            }
            ids.write_json(&k.id)?;
            summary.docs += 1;
        }
    }
    handle.join().map_err(|_| Error::Msg("input reader thread panicked".into()))?;
    records
        .par_iter_mut()
        .zip(kinds.par_iter())
        .try_for_each(|(recs, kind)| keys::write_sorted(&layout.key_file(kind, shard.index), recs))?;
    ids.finish()?;
    summary.seconds = start.elapsed().as_secs_f64();
    mark(shard, &stage, &summary)?;
    Ok(summary)
}

fn gid(shard: usize, doc: u32) -> u64 {
    ((shard as u64) << 32) | u64::from(doc)
}

const FLAG_URL: u8 = 1;
const FLAG_EXACT: u8 = 2;

/// One entry of a shard's removal list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Removal {
    /// Document index inside the shard.
    pub doc: u32,
    /// `url`, `exact` or `minhash`.
    pub reason: String,
    /// Id of the document kept from the cluster.
    pub duplicate_of: String,
}

/// Stage 2 (global): merge the sorted key files of all `shards`, cluster, and write one removal
/// list per shard. Fails naming the missing shards if the signature stage is incomplete.
pub fn cluster(out: &Path, shards: usize) -> Result<ClusterSummary> {
    let layout = Layout::new(out);
    let stage = layout.cluster();
    let global = Shard::default();
    if global.is_done(&stage) {
        return read_marker(&global.marker(&stage));
    }
    let _span = tracing::info_span!("dedup_cluster", shards).entered();
    let start = Instant::now();
    let sig_stage = layout.signatures();
    let missing: Vec<usize> = (0..shards).filter(|&i| !Shard { index: i, shards }.is_done(&sig_stage)).collect();
    if !missing.is_empty() {
        return Err(Error::Config {
            path: sig_stage,
            message: format!("signature stage not finished for shard(s) {missing:?} of {shards}"),
        });
    }
    let mut config = None;
    for i in 0..shards {
        let s: SignatureSummary = read_marker(&Shard { index: i, shards }.marker(&sig_stage))?;
        match (&config, s.config) {
            (None, c) => config = c,
            (Some(a), Some(b)) if *a != b => {
                return Err(Error::Config {
                    path: sig_stage,
                    message: format!("shard {i} used a different dedup configuration"),
                })
            }
            _ => {}
        }
    }
    let config = config.unwrap_or_default();
    let mut uf = UnionFind::new();
    let mut flags: HashMap<u64, u8> = HashMap::new();
    let mut summary = ClusterSummary { shards, ..Default::default() };
    for kind in config.kinds() {
        let paths: Vec<(usize, PathBuf)> = (0..shards).map(|s| (s, layout.key_file(&kind, s))).collect();
        let flag = match kind.as_str() {
            "url" => FLAG_URL,
            "exact" => FLAG_EXACT,
            _ => 0,
        };
        summary.records += keys::merge_runs(&paths, |run| {
            let first = gid(run[0].0, run[0].1);
            for &(s, d) in run {
                let g = gid(s, d);
                uf.union(first, g);
                if flag != 0 {
                    *flags.entry(g).or_default() |= flag;
                }
            }
        })?;
    }
    // Removals, and the kept documents whose ids we need.
    let members: Vec<u64> = uf.members().collect();
    let mut removals: Vec<(u64, u64, &'static str)> = Vec::new();
    let mut roots = HashSet::new();
    for m in members {
        let root = uf.find(m);
        if root != m {
            let f = flags.get(&m).copied().unwrap_or(0);
            let reason = if f & FLAG_URL != 0 {
                "url"
            } else if f & FLAG_EXACT != 0 {
                "exact"
            } else {
                "minhash"
            };
            removals.push((m, root, reason));
        }
        roots.insert(root);
    }
    summary.clusters = roots.len() as u64;
    let mut needed: BTreeMap<usize, HashSet<u32>> = BTreeMap::new();
    for &(_, root, _) in &removals {
        needed.entry((root >> 32) as usize).or_default().insert(root as u32);
    }
    let mut root_ids: HashMap<u64, String> = HashMap::new();
    for (shard, docs) in needed {
        let path = layout.ids_file(shard);
        for (i, rec) in mathforge_io::jsonl::JsonlReader::open(&path)?.enumerate() {
            if docs.contains(&(i as u32)) {
                let v = rec.value?;
                root_ids.insert(gid(shard, i as u32), v.as_str().unwrap_or_default().to_string());
            }
        }
    }
    removals.sort_unstable();
    let mut by_shard: Vec<Vec<Removal>> = vec![Vec::new(); shards];
    for (m, root, reason) in removals {
        *summary.removed.entry(reason.to_string()).or_default() += 1;
        by_shard[(m >> 32) as usize].push(Removal {
            doc: m as u32,
            reason: reason.to_string(),
            duplicate_of: root_ids.get(&root).cloned().unwrap_or_default(),
        });
    }
    for (shard, list) in by_shard.iter().enumerate() {
        let mut w = LineWriter::create(&layout.remove_file(shard))?;
        for r in list {
            w.write_json(r)?;
        }
        w.finish()?;
    }
    summary.seconds = start.elapsed().as_secs_f64();
    mark(global, &stage, &summary)?;
    Ok(summary)
}

/// Stage 3 for one shard: copy kept records to `output/`, removed ones (with `dedup_reason`
/// and `duplicate_of`) to `removed/`. Inputs must be the list given to [`signatures`].
pub fn filter(inputs: &[PathBuf], shard: Shard, out: &Path, progress: Progress<'_>) -> Result<FilterSummary> {
    let layout = Layout::new(out);
    let stage = layout.filter();
    if shard.is_done(&stage) {
        return read_marker(&shard.marker(&stage));
    }
    if !Shard::default().is_done(&layout.cluster()) {
        return Err(Error::Config {
            path: layout.cluster(),
            message: "cluster stage not finished; run `--stage cluster` first".into(),
        });
    }
    let _span = tracing::info_span!("dedup_filter", shard = shard.index).entered();
    let start = Instant::now();
    let files = shard.select(inputs);
    let sig: SignatureSummary = read_marker(&shard.marker(&layout.signatures()))?;
    if sig.files != files {
        return Err(Error::Config {
            path: shard.marker(&layout.signatures()),
            message: format!(
                "shard {} was signed with inputs {:?} but the filter got {:?}; pass the same --input list",
                shard.index, sig.files, files
            ),
        });
    }
    let remove_path = layout.remove_file(shard.index);
    let mut removals = Vec::new();
    for rec in mathforge_io::jsonl::JsonlReader::open(&remove_path)? {
        let v = rec.value?;
        let r: Removal = serde_json::from_value(v).map_err(|e| Error::BadRecord {
            path: remove_path.clone(),
            at: rec.line.to_string(),
            message: e.to_string(),
        })?;
        removals.push(r);
    }
    let mut next = removals.into_iter().peekable();
    let mut kept = LineWriter::create(&layout.output_file(shard.index))?;
    let mut dropped = LineWriter::create(&layout.removed_file(shard.index))?;
    let mut summary = FilterSummary::default();
    let (rx, handle) = spawn_reader(files.clone());
    for batch in rx {
        let batch = batch?;
        let valid: Vec<bool> = batch.par_iter().map(|raw| parse(raw, &files[raw.file]).is_ok()).collect();
        progress(batch.len() as u64);
        for (raw, ok) in batch.iter().zip(valid) {
            if !ok {
                continue;
            }
            let doc = summary.docs_in as u32;
            summary.docs_in += 1;
            if next.peek().is_some_and(|r| r.doc == doc) {
                let r = next.next().unwrap_or_else(|| unreachable!());
                let mut obj = input::to_json(raw).unwrap_or_default();
                obj.insert("dedup_reason".into(), r.reason.clone().into());
                obj.insert("duplicate_of".into(), r.duplicate_of.into());
                dropped.write_json(&obj)?;
                *summary.removed.entry(r.reason).or_default() += 1;
            } else if let Some(line) = input::to_line(raw) {
                kept.write_line(&line)?;
                summary.docs_out += 1;
            }
        }
    }
    handle.join().map_err(|_| Error::Msg("input reader thread panicked".into()))?;
    if let Some(r) = next.next() {
        return Err(Error::Config {
            path: remove_path,
            message: format!("document {} of shard {} is listed for removal but the inputs are shorter; were they changed?", r.doc, shard.index),
        });
    }
    kept.finish()?;
    dropped.finish()?;
    summary.seconds = start.elapsed().as_secs_f64();
    mark(shard, &stage, &summary)?;
    Ok(summary)
}

/// Join the markers of all stages into `summary.json` and `summary.md` (once every filter shard
/// is done); returns `None` while shards are missing.
pub fn write_summary(out: &Path, shards: usize) -> Result<Option<DedupSummary>> {
    let layout = Layout::new(out);
    if !Shard::all_done(&layout.filter(), shards) {
        return Ok(None);
    }
    let mut s = DedupSummary { shards, ..Default::default() };
    for i in 0..shards {
        let sh = Shard { index: i, shards };
        let sig: SignatureSummary = read_marker(&sh.marker(&layout.signatures()))?;
        for (k, v) in sig.bad_records {
            *s.bad_records.entry(k).or_default() += v;
        }
        *s.seconds.entry("signatures".into()).or_default() += sig.seconds;
        let f: FilterSummary = read_marker(&sh.marker(&layout.filter()))?;
        s.docs_in += f.docs_in;
        s.docs_out += f.docs_out;
        for (k, v) in f.removed {
            *s.removed.entry(k).or_default() += v;
        }
        *s.seconds.entry("filter".into()).or_default() += f.seconds;
    }
    let c: ClusterSummary = read_marker(&Shard::default().marker(&layout.cluster()))?;
    s.clusters = c.clusters;
    s.seconds.insert("cluster".into(), c.seconds);
    let json = serde_json::to_vec_pretty(&s).map_err(|e| Error::Msg(format!("summary: {e}")))?;
    mathforge_io::atomic::write_atomic(out.join("summary.json"), &json)?;
    let mut md = String::from("# dedup summary\n\n| what | count |\n|---|---|\n");
    md += &format!("| shards | {} |\n| docs in | {} |\n| docs out | {} |\n| clusters | {} |\n", s.shards, s.docs_in, s.docs_out, s.clusters);
    for (k, v) in &s.removed {
        md += &format!("| removed: {k} | {v} |\n");
    }
    for (k, v) in &s.bad_records {
        md += &format!("| skipped: {k} | {v} |\n");
    }
    for (k, v) in &s.seconds {
        md += &format!("| seconds: {k} | {v:.2} |\n");
    }
    mathforge_io::atomic::write_atomic(out.join("summary.md"), md.as_bytes())?;
    Ok(Some(s))
}

/// All stages in this process: signatures for every shard, cluster, filter for every shard
/// (finished shards are skipped), then the summary.
pub fn run_all(
    inputs: &[PathBuf],
    shards: usize,
    out: &Path,
    config: &DedupConfig,
    progress: Progress<'_>,
) -> Result<DedupSummary> {
    for i in 0..shards {
        signatures(inputs, Shard::new(i, shards)?, out, config, progress)?;
    }
    cluster(out, shards)?;
    for i in 0..shards {
        filter(inputs, Shard::new(i, shards)?, out, progress)?;
    }
    write_summary(out, shards)?.ok_or_else(|| Error::Msg("filter stage incomplete".into()))
}
