//! Iterative math-page mining (DeepSeekMath §2.1, Figure 2): train a fastText classifier on seed
//! math pages vs random pool pages, score the whole (deduplicated) pool, keep the top pages,
//! discover math-heavy domains, let a person approve URL path prefixes, grow the seed, repeat.
//!
//! One round `r` writes `<out>/round-<r>/`:
//! * `train.txt`: the fastText training file (`__label__math` / `__label__other`, one page per
//!   line, newlines flattened, CJK characters spaced so they hash as words, as issue 4 item 8 asks);
//! * `model.bin`: the classifier (fastText `.bin`, loads in fastText 0.9);
//! * `kept.jsonl.gz`: kept pages with `score` and `round` metadata, best first;
//! * `domains.tsv`: per domain `pool`, `kept`, `fraction`, `math` (fraction > `domain_threshold`,
//!   the paper's 10%); `paths.tsv`: for math domains, first-level URL paths with pool/kept counts,
//!   for annotation;
//! * `histogram.tsv`: score histogram (20 bins); `report.md` and `summary.json`.
//!
//! Pages of the pool under a prefix listed in `approved_paths` (one `host/path` prefix per line,
//! e.g. `mathoverflow.net/questions/`) that were not kept join the seed of the next round. The loop
//! stops after `rounds` rounds or when the overlap of kept pages with the previous round reaches
//! `stop_overlap` (the paper stopped at 98% in round 4).
//!
//! Deviations: the paper collects 40B tokens of pages and samples 500K/500K training pages; the
//! sizes here are configuration. Sampling is deterministic (pages ordered by a seeded xxh3 of
//! their id) so a rerun reproduces a round. The library writes the score histogram as TSV and
//! hands it to the caller in [`MineEvent::RoundDone`]; `mathforge corpus mine` draws it as
//! `histogram.png`.
//!
//! Resume: a round whose `summary.json` exists is not redone; rerunning the command after
//! editing the approved-paths file continues with the next round (the annotation loop of the
//! paper: run a round, review `paths.tsv`, approve prefixes, run again).
use crate::document::Document;
use crate::error::{Error, Result};
use crate::formats::{read_documents, DocumentWriter};
use mathforge_io::shard::Shard;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Settings of `mathforge corpus mine`. TOML keys are these names in kebab case, the same as
/// the command's long flags (`keep-fraction = 0.1`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct MineConfig {
    /// Seed math pages (JSONL/Parquet documents), e.g. an OpenWebMath sample.
    pub seed: Vec<PathBuf>,
    /// The candidate pool (deduplicated Common Crawl documents).
    pub pool: Vec<PathBuf>,
    /// Output directory (`round-N/` inside).
    pub out: PathBuf,
    /// Maximum rounds (the paper ran 4).
    pub rounds: usize,
    /// Positive training pages per round (paper: 500K).
    pub positives: usize,
    /// Negative training pages per round (paper: 500K).
    pub negatives: usize,
    /// Classifier dimension (paper: 256).
    pub dim: i32,
    /// Learning rate (paper: 0.1).
    pub lr: f64,
    /// Word n-grams (paper: 3).
    pub word_ngrams: i32,
    /// Minimum word count (paper: 3).
    pub min_count: i32,
    /// Epochs (paper: 3).
    pub epoch: i32,
    /// Training threads (0: all cores).
    pub threads: i32,
    /// Keep the top pages until this many whitespace tokens (paper: 40B); overrides `keep_fraction`.
    pub keep_tokens: Option<u64>,
    /// Otherwise keep this fraction of the pool.
    pub keep_fraction: f64,
    /// Domains with more than this fraction of their pool pages kept are math-related (paper: 10%).
    pub domain_threshold: f64,
    /// File of approved `host/path` prefixes (one per line, `#` comments); optional.
    pub approved_paths: Option<PathBuf>,
    /// Stop when this fraction of the previous round's kept pages is kept again (paper: 98%).
    pub stop_overlap: f64,
    /// Seed of the deterministic sampling and of fastText.
    pub seed_rng: u64,
}

impl Default for MineConfig {
    fn default() -> Self {
        MineConfig {
            seed: Vec::new(),
            pool: Vec::new(),
            out: PathBuf::from("mine"),
            rounds: 4,
            positives: 500_000,
            negatives: 500_000,
            dim: 256,
            lr: 0.1,
            word_ngrams: 3,
            min_count: 3,
            epoch: 3,
            threads: 0,
            keep_tokens: None,
            keep_fraction: 0.1,
            domain_threshold: 0.10,
            approved_paths: None,
            stop_overlap: 0.98,
            seed_rng: 0,
        }
    }
}

impl MineConfig {
    /// Read a TOML file (unknown keys are an error).
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&s)
            .map_err(|e| Error::Config { path: path.to_path_buf(), message: e.to_string() })
    }
}

/// What one round did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundReport {
    /// Round number, from 1.
    pub round: usize,
    /// Seed pages available / used as positives.
    pub seed_pages: usize,
    /// Positives and negatives trained on.
    pub trained_pos: usize,
    /// Negatives trained on.
    pub trained_neg: usize,
    /// Pool pages scored.
    pub pool_pages: usize,
    /// Pages kept.
    pub kept_pages: usize,
    /// Whitespace tokens of the kept pages.
    pub kept_tokens: u64,
    /// Fraction of the previous round's kept pages kept again (None in round 1).
    pub overlap_with_previous: Option<f64>,
    /// Domains marked math-related.
    pub math_domains: usize,
    /// Top domains by kept pages: (domain, kept, fraction).
    pub top_domains: Vec<(String, usize, f64)>,
    /// Pages added to the next round's seed from approved paths.
    pub added_to_seed: usize,
    /// Pages skipped while reading (bad records).
    pub skipped_records: u64,
}

/// Progress events for the CLI.
#[derive(Debug, Clone)]
pub enum MineEvent {
    /// Inputs read: seed pages and pool pages.
    Loaded {
        /// Seed pages.
        seed: usize,
        /// Pool pages (the length of every round's scoring pass).
        pool: usize,
    },
    /// A round started.
    Round(usize),
    /// A phase of the round (`sample`, `train`, `score`, `domains`).
    Phase(&'static str),
    /// Scoring progress: pages scored so far.
    Scored(usize),
    /// A round finished (not sent for resumed rounds): its report and the 20-bin score
    /// histogram (bin `b` covers `[b/20, (b+1)/20)`), e.g. for the CLI to plot.
    RoundDone(RoundReport, [usize; 20]),
}

/// Host of a URL (lower case, without `www.`), or `""`.
pub fn domain_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_start_matches("www.").to_ascii_lowercase()))
        .unwrap_or_default()
}

/// `host/first-path-segment/` of a URL (the unit people annotate), or `""`.
pub fn path_prefix(url: &str) -> String {
    let Ok(u) = url::Url::parse(url) else { return String::new() };
    let host =
        u.host_str().map(|h| h.trim_start_matches("www.").to_ascii_lowercase()).unwrap_or_default();
    let first = u.path_segments().and_then(|mut s| s.next()).unwrap_or("");
    if first.is_empty() {
        format!("{host}/")
    } else {
        format!("{host}/{first}/")
    }
}

fn host_and_path(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}{}",
            u.host_str()
                .map(|h| h.trim_start_matches("www.").to_ascii_lowercase())
                .unwrap_or_default(),
            u.path()
        ),
        Err(_) => String::new(),
    }
}

/// One training/scoring line: newlines flattened, CJK characters spaced (fastText splits on
/// whitespace only, so unspaced Chinese would be one giant "word").
pub fn classifier_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else if c == '\n' || c == '\r' || c == '\t' || c == '\u{0b}' || c == '\u{0c}' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x3000..=0x303F | 0xFF00..=0xFFEF)
}

fn tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn sample_key(id: &str, seed: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), seed)
}

fn read_approved(path: &Path) -> Result<Vec<String>> {
    let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_start_matches("www.")
                .to_ascii_lowercase()
        })
        .collect())
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Input files, with directories expanded into the document files they hold (as the dedup and
/// decont stages do); a missing path or an unknown format is an error naming it.
fn check_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let files = crate::dedup::input::expand_inputs(paths)?;
    for p in &files {
        crate::formats::DocFormat::from_path(p)?;
    }
    Ok(files)
}

/// Read whole document files (seed pages); bad records are counted in `skipped`.
fn load_docs(paths: &[PathBuf], skipped: &mut u64) -> Result<Vec<Document>> {
    let paths = check_inputs(paths)?;
    let mut out = Vec::new();
    for p in &paths {
        for d in read_documents(p) {
            match d {
                Ok(d) => out.push(d),
                Err(_) => *skipped += 1,
            }
        }
    }
    Ok(out)
}

/// Stream the pool documents of one shard, in order, to `f`. With at least as many pool files
/// as shards, shard `i` reads files `i, i+N, ...`; otherwise every shard reads every file and
/// takes records `i, i+N, ...` (the convention of `corpus extract`). Returns bad records skipped.
fn for_each_pool_doc(
    pool: &[PathBuf],
    shard: Shard,
    mut f: impl FnMut(Document) -> Result<()>,
) -> Result<u64> {
    let pool = check_inputs(pool)?;
    let by_file = pool.len() >= shard.shards;
    let mut skipped = 0;
    let mut record = 0usize;
    for (fi, p) in pool.iter().enumerate() {
        if by_file && !shard.owns(fi) {
            continue;
        }
        for d in read_documents(p) {
            let mine = by_file || shard.owns(record);
            record += 1;
            match d {
                Ok(d) if mine => f(d)?,
                Ok(_) => {}
                Err(_) if mine => skipped += 1,
                Err(_) => {}
            }
        }
    }
    Ok(skipped)
}

fn id_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

fn round_dir(cfg: &MineConfig, round: usize) -> PathBuf {
    cfg.out.join(format!("round-{round}"))
}

/// `(id hash, score)` of a round's kept pages, sorted by hash (`kept.ids`: 12 bytes a page).
fn read_kept_ids(path: &Path) -> Result<Vec<(u64, f32)>> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    if bytes.len() % 12 != 0 {
        return Err(Error::Msg(format!("{}: truncated ({} bytes)", path.display(), bytes.len())));
    }
    Ok(bytes
        .chunks_exact(12)
        .map(|c| {
            let h = u64::from_le_bytes(c[..8].try_into().unwrap_or([0; 8]));
            let s = f32::from_le_bytes(c[8..].try_into().unwrap_or([0; 4]));
            (h, s)
        })
        .collect())
}

fn kept_score(kept: &[(u64, f32)], h: u64) -> Option<f32> {
    kept.binary_search_by_key(&h, |k| k.0).ok().map(|i| kept[i].1)
}

/// What the train phase of a round recorded (`train.json`, written last).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainRecord {
    seed_pages: usize,
    added_to_seed: usize,
    trained_pos: usize,
    trained_neg: usize,
    skipped_records: u64,
}

/// One scored pool page (a line of `scores/scores-I-of-N.jsonl.gz`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScoreRow {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    tokens: u64,
    score: f32,
}

/// Seed pages of round `round`: the seed files plus the pages that earlier rounds (and this one,
/// once its train phase ran) added from approved paths.
fn seed_for_round(cfg: &MineConfig, round: usize, skipped: &mut u64) -> Result<Vec<Document>> {
    let mut seed = load_docs(&cfg.seed, skipped)?;
    for r in 2..=round {
        let p = round_dir(cfg, r).join("seed-added.jsonl.gz");
        if p.is_file() {
            seed.extend(load_docs(&[p], skipped)?);
        }
    }
    Ok(seed)
}

/// Phase 1 of a round (global): grow the seed from approved paths (rounds >= 2), sample
/// positives and negatives, train the classifier. Writes `train.txt`, `model.bin`,
/// `seed-added.jsonl.gz` and `train.json` (last). Skipped when `train.json` exists.
pub fn train_phase(cfg: &MineConfig, round: usize, on_event: &(dyn Fn(MineEvent) + Sync)) -> Result<()> {
    let dir = round_dir(cfg, round);
    if dir.join("train.json").is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    on_event(MineEvent::Phase("sample"));
    let mut skipped = 0u64;
    let mut seed = seed_for_round(cfg, round - 1, &mut skipped)?;
    let approved = match &cfg.approved_paths {
        Some(p) if p.is_file() => read_approved(p)?,
        Some(p) => {
            return Err(Error::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "approved-paths file not found"),
            ))
        }
        None => Vec::new(),
    };
    let prev_kept = if round >= 2 {
        let p = round_dir(cfg, round - 1).join("kept.ids");
        read_kept_ids(&p)?
    } else {
        Vec::new()
    };
    let mut seed_ids: HashSet<u64> = seed.iter().map(|d| id_hash(&d.id)).collect();
    let seed_pages = seed.len();

    // One pass over the pool: the `negatives` non-seed pages with the smallest seeded key
    // (a deterministic uniform sample, bounded memory) and the uncollected pages under
    // approved paths.
    let neg_seed = cfg.seed_rng.wrapping_add(0x9e37) ^ round as u64;
    let mut neg: Vec<(u64, Document)> = Vec::new();
    let mut added: Vec<Document> = Vec::new();
    let cap = cfg.negatives;
    skipped += for_each_pool_doc(&cfg.pool, Shard::new(0, 1)?, |d| {
        let h = id_hash(&d.id);
        if seed_ids.contains(&h) {
            return Ok(());
        }
        if round >= 2 && !approved.is_empty() && kept_score(&prev_kept, h).is_none() {
            let hp = host_and_path(d.url.as_deref().unwrap_or(""));
            if !hp.is_empty() && approved.iter().any(|a| hp.starts_with(a.as_str())) {
                seed_ids.insert(h);
                added.push(d);
                return Ok(());
            }
        }
        if cap > 0 {
            neg.push((sample_key(&d.id, neg_seed), d));
            if neg.len() >= 2 * cap.max(1024) {
                neg.select_nth_unstable_by_key(cap - 1, |x| x.0);
                neg.truncate(cap);
            }
        }
        Ok(())
    })?;
    neg.sort_by_key(|x| x.0);
    neg.truncate(cap);
    let mut w = DocumentWriter::create(dir.join("seed-added.jsonl.gz"))?;
    for d in &added {
        w.write(d)?;
    }
    w.finish()?;
    let added_n = added.len();
    seed.extend(added);

    let mut pos: Vec<&Document> = seed.iter().collect();
    pos.sort_by_key(|d| sample_key(&d.id, cfg.seed_rng ^ round as u64));
    pos.truncate(cfg.positives);
    let (n_pos, n_neg) = (pos.len(), neg.len());
    let train_path = dir.join("train.txt");
    {
        let mut lines: Vec<(u64, String)> = pos
            .iter()
            .map(|d| (sample_key(&d.id, 7), format!("__label__math {}\n", classifier_text(&d.text))))
            .chain(neg.iter().map(|(_, d)| {
                (sample_key(&d.id, 7), format!("__label__other {}\n", classifier_text(&d.text)))
            }))
            .collect();
        drop(neg);
        // Interleave the classes: fastText trains in file order with a decaying lr.
        lines.sort_by_key(|(k, _)| *k);
        let mut f = mathforge_io::atomic::AtomicFile::create(&train_path)?;
        for (_, l) in &lines {
            f.write_all(l.as_bytes()).map_err(io_err(&train_path))?;
        }
        f.commit()?;
    }

    on_event(MineEvent::Phase("train"));
    let threads = if cfg.threads > 0 { cfg.threads } else { rayon::current_num_threads() as i32 };
    let args = mathforge_fasttext::Args {
        dim: cfg.dim,
        lr: cfg.lr,
        word_ngrams: cfg.word_ngrams,
        min_count: cfg.min_count,
        epoch: cfg.epoch,
        thread: threads,
        seed: cfg.seed_rng as i32,
        verbose: 0,
        ..mathforge_fasttext::Args::supervised()
    };
    let trained = mathforge_fasttext::train(&args, &train_path, &|_| {}, &|_| {}).map_err(|e| {
        Error::Msg(format!("{}: fastText training failed: {e}", train_path.display()))
    })?;
    trained.model.save(dir.join("model.bin")).map_err(|e| Error::Msg(format!("saving model: {e}")))?;
    let rec = TrainRecord {
        seed_pages,
        added_to_seed: added_n,
        trained_pos: n_pos,
        trained_neg: n_neg,
        skipped_records: skipped,
    };
    let json = serde_json::to_vec_pretty(&rec).map_err(|e| Error::Msg(e.to_string()))?;
    mathforge_io::atomic::write_atomic(dir.join("train.json"), &json)?;
    Ok(())
}

/// Phase 2 of a round (one per shard, e.g. a Slurm array task): score this shard's pool pages
/// with the round's classifier, using all cores. Writes `scores/scores-I-of-N.jsonl.gz` and
/// the shard's completion marker (skipped when the marker exists).
pub fn score_phase(
    cfg: &MineConfig,
    round: usize,
    shard: Shard,
    on_event: &(dyn Fn(MineEvent) + Sync),
) -> Result<()> {
    let dir = round_dir(cfg, round);
    let sdir = dir.join("scores");
    if shard.is_done(&sdir) {
        return Ok(());
    }
    let model_path = dir.join("model.bin");
    let model = mathforge_fasttext::Model::load(&model_path)
        .map_err(|e| Error::Msg(format!("{}: {e} (run the train phase first)", model_path.display())))?;
    on_event(MineEvent::Phase("score"));
    let out = sdir.join(format!("scores-{:05}-of-{:05}.jsonl.gz", shard.index, shard.shards));
    let mut w = mathforge_io::jsonl::JsonlWriter::create(&out)?;
    let mut batch: Vec<Document> = Vec::with_capacity(4096);
    let mut done = 0usize;
    let mut flush = |batch: &mut Vec<Document>, w: &mut mathforge_io::jsonl::JsonlWriter| -> Result<()> {
        let rows: Vec<ScoreRow> = batch
            .par_iter()
            .map_init(mathforge_fasttext::PredictBuf::default, |buf, d| ScoreRow {
                id: d.id.clone(),
                url: d.url.clone(),
                tokens: tokens(&d.text),
                score: model
                    .label_prob(classifier_text(&d.text).as_bytes(), "__label__math", buf)
                    .unwrap_or(0.0),
            })
            .collect();
        for r in &rows {
            w.write(r)?;
        }
        done += rows.len();
        on_event(MineEvent::Scored(done));
        batch.clear();
        Ok(())
    };
    let skipped = for_each_pool_doc(&cfg.pool, shard, |d| {
        batch.push(d);
        if batch.len() == 4096 {
            flush(&mut batch, &mut w)?;
        }
        Ok(())
    })?;
    flush(&mut batch, &mut w)?;
    let n = w.count();
    w.finish()?;
    shard.mark_done(&sdir, &serde_json::json!({"scored": n, "skipped_records": skipped}))?;
    Ok(())
}

/// Phase 3 of a round (global, after every score shard): merge the per-shard scores, rank, keep
/// the top pages, compute domain and path statistics, compare with the previous round, write
/// `kept.ids`, `domains.tsv`, `paths.tsv`, `histogram.tsv`, `report.md` and `summary.json`
/// (last). Returns the round's report (read back when `summary.json` exists).
pub fn select_phase(
    cfg: &MineConfig,
    round: usize,
    shards: usize,
    on_event: &(dyn Fn(MineEvent) + Sync),
) -> Result<RoundReport> {
    let dir = round_dir(cfg, round);
    let summary = dir.join("summary.json");
    if summary.is_file() {
        let bytes = std::fs::read(&summary).map_err(io_err(&summary))?;
        return serde_json::from_slice(&bytes)
            .map_err(|e| Error::Msg(format!("{}: not a round summary: {e}", summary.display())));
    }
    let sdir = dir.join("scores");
    let missing: Vec<usize> =
        (0..shards).filter(|&i| !Shard { index: i, shards }.is_done(&sdir)).collect();
    if !missing.is_empty() {
        return Err(Error::Msg(format!(
            "{}: score shards {missing:?} of {shards} are not finished",
            sdir.display()
        )));
    }
    let tpath = dir.join("train.json");
    let trec: TrainRecord = serde_json::from_slice(&std::fs::read(&tpath).map_err(io_err(&tpath))?)
        .map_err(|e| Error::Msg(format!("{}: {e}", tpath.display())))?;
    on_event(MineEvent::Phase("select"));

    // Compact per-page entries; domains and path prefixes interned.
    struct Entry {
        score: f32,
        tokens: u64,
        hash: u64,
        domain: u32,
        path: u32,
    }
    let mut domain_ix: HashMap<String, u32> = HashMap::new();
    let mut path_ix: HashMap<String, u32> = HashMap::new();
    let mut entries: Vec<Entry> = Vec::new();
    let mut skipped = trec.skipped_records;
    for i in 0..shards {
        let p = sdir.join(format!("scores-{i:05}-of-{shards:05}.jsonl.gz"));
        for rec in mathforge_io::jsonl::JsonlReader::open(&p)? {
            let row: ScoreRow = match rec.value.map(serde_json::from_value) {
                Ok(Ok(r)) => r,
                _ => {
                    skipped += 1;
                    continue;
                }
            };
            let url = row.url.as_deref().unwrap_or("");
            let nd = domain_ix.len() as u32;
            let domain = *domain_ix.entry(domain_of(url)).or_insert(nd);
            let np = path_ix.len() as u32;
            let path = *path_ix.entry(path_prefix(url)).or_insert(np);
            entries.push(Entry { score: row.score, tokens: row.tokens, hash: id_hash(&row.id), domain, path });
        }
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.par_sort_unstable_by(|&a, &b| {
        entries[b].score.total_cmp(&entries[a].score).then(entries[a].hash.cmp(&entries[b].hash))
    });
    let mut kept_n = 0usize;
    let mut kept_tokens = 0u64;
    match cfg.keep_tokens {
        Some(budget) => {
            for &i in &order {
                if kept_tokens >= budget {
                    break;
                }
                kept_tokens += entries[i].tokens;
                kept_n += 1;
            }
        }
        None => {
            kept_n = ((entries.len() as f64) * cfg.keep_fraction.clamp(0.0, 1.0)).round() as usize;
            kept_tokens = order[..kept_n].iter().map(|&i| entries[i].tokens).sum();
        }
    }
    let kept = &order[..kept_n];
    let mut kept_ids: Vec<(u64, f32)> = kept.iter().map(|&i| (entries[i].hash, entries[i].score)).collect();
    kept_ids.sort_by_key(|k| k.0);
    let mut bytes = Vec::with_capacity(kept_ids.len() * 12);
    for (h, s) in &kept_ids {
        bytes.extend_from_slice(&h.to_le_bytes());
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    mathforge_io::atomic::write_atomic(dir.join("kept.ids"), &bytes)?;
    let overlap = if round >= 2 {
        let prev = read_kept_ids(&round_dir(cfg, round - 1).join("kept.ids"))?;
        Some(if prev.is_empty() {
            1.0
        } else {
            prev.iter().filter(|(h, _)| kept_score(&kept_ids, *h).is_some()).count() as f64
                / prev.len() as f64
        })
    } else {
        None
    };

    // Domains: pool and kept counts per domain; math domains above the threshold.
    let domains_by_ix: Vec<&str> = {
        let mut v = vec![""; domain_ix.len()];
        for (d, &i) in &domain_ix {
            v[i as usize] = d.as_str();
        }
        v
    };
    let mut dpool = vec![0usize; domain_ix.len()];
    let mut dkept = vec![0usize; domain_ix.len()];
    for e in &entries {
        dpool[e.domain as usize] += 1;
    }
    for &i in kept {
        dkept[entries[i].domain as usize] += 1;
    }
    let mut domains: Vec<(&str, usize, usize, f64)> = (0..domains_by_ix.len())
        .map(|i| (domains_by_ix[i], dpool[i], dkept[i], dkept[i] as f64 / dpool[i].max(1) as f64))
        .collect();
    domains.sort_by(|a, b| b.2.cmp(&a.2).then(b.3.total_cmp(&a.3)).then(a.0.cmp(b.0)));
    let math_domain: Vec<bool> = (0..domains_by_ix.len())
        .map(|i| {
            !domains_by_ix[i].is_empty()
                && dkept[i] as f64 / dpool[i].max(1) as f64 > cfg.domain_threshold
        })
        .collect();
    let mut tsv = String::from("domain\tpool\tkept\tfraction\tmath\n");
    for (d, n, k, f) in &domains {
        tsv += &format!("{d}\t{n}\t{k}\t{f:.4}\t{}\n", domain_ix.get(*d).is_some_and(|&i| math_domain[i as usize]));
    }
    mathforge_io::atomic::write_atomic(dir.join("domains.tsv"), tsv.as_bytes())?;
    let paths_by_ix: Vec<&str> = {
        let mut v = vec![""; path_ix.len()];
        for (p, &i) in &path_ix {
            v[i as usize] = p.as_str();
        }
        v
    };
    let is_kept: HashSet<usize> = kept.iter().copied().collect();
    let mut paths: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if math_domain[e.domain as usize] {
            let c = paths.entry(paths_by_ix[e.path as usize]).or_insert((0, 0));
            c.0 += 1;
            if is_kept.contains(&i) {
                c.1 += 1;
            }
        }
    }
    let mut ptsv = String::from("path\tpool\tkept\n");
    for (p, (n, k)) in &paths {
        ptsv += &format!("{p}\t{n}\t{k}\n");
    }
    mathforge_io::atomic::write_atomic(dir.join("paths.tsv"), ptsv.as_bytes())?;

    let mut bins = [0usize; 20];
    for e in &entries {
        bins[((e.score.clamp(0.0, 1.0) * 20.0) as usize).min(19)] += 1;
    }
    let mut htsv = String::from("bin_low\tbin_high\tpages\n");
    for (b, n) in bins.iter().enumerate() {
        htsv += &format!("{:.2}\t{:.2}\t{n}\n", b as f64 / 20.0, (b + 1) as f64 / 20.0);
    }
    mathforge_io::atomic::write_atomic(dir.join("histogram.tsv"), htsv.as_bytes())?;

    let report = RoundReport {
        round,
        seed_pages: trec.seed_pages,
        trained_pos: trec.trained_pos,
        trained_neg: trec.trained_neg,
        pool_pages: entries.len(),
        kept_pages: kept_n,
        kept_tokens,
        overlap_with_previous: overlap,
        math_domains: math_domain.iter().filter(|m| **m).count(),
        top_domains: domains.iter().take(20).map(|(d, _, k, f)| (d.to_string(), *k, *f)).collect(),
        added_to_seed: trec.added_to_seed,
        skipped_records: skipped,
    };
    on_event(MineEvent::RoundDone(report.clone(), bins));
    write_round_report(&dir, &report, &bins)?;
    Ok(report)
}

/// Phase 4 of a round (one per shard): write this shard's kept pages, with `score` and `round`
/// metadata, in pool order, to `kept/kept-I-of-N.jsonl.gz`, then the shard's marker.
pub fn write_phase(
    cfg: &MineConfig,
    round: usize,
    shard: Shard,
    on_event: &(dyn Fn(MineEvent) + Sync),
) -> Result<u64> {
    let dir = round_dir(cfg, round);
    let kdir = dir.join("kept");
    if shard.is_done(&kdir) {
        return Ok(0);
    }
    on_event(MineEvent::Phase("write"));
    let kept = read_kept_ids(&dir.join("kept.ids"))?;
    let out = kdir.join(format!("kept-{:05}-of-{:05}.jsonl.gz", shard.index, shard.shards));
    let mut w = DocumentWriter::create(&out)?;
    for_each_pool_doc(&cfg.pool, shard, |d| {
        if let Some(s) = kept_score(&kept, id_hash(&d.id)) {
            w.write_owned(d.with_meta("score", s as f64).with_meta("round", round as i64))?;
        }
        Ok(())
    })?;
    let n = w.finish()?;
    shard.mark_done(&kdir, &serde_json::json!({"kept": n}))?;
    Ok(n)
}

/// Run the whole mining loop in this process (every phase, one shard), resuming finished
/// phases. Returns one report per round run.
pub fn run(cfg: &MineConfig, on_event: &(dyn Fn(MineEvent) + Sync)) -> Result<Vec<RoundReport>> {
    if cfg.seed.is_empty() || cfg.pool.is_empty() {
        return Err(Error::Config {
            path: PathBuf::from("<mine config>"),
            message: "`seed` and `pool` must list at least one file each".into(),
        });
    }
    check_inputs(&cfg.seed)?;
    check_inputs(&cfg.pool)?;
    let one = Shard::new(0, 1)?;
    let mut reports = Vec::new();
    for round in 1..=cfg.rounds.max(1) {
        on_event(MineEvent::Round(round));
        let dir = round_dir(cfg, round);
        if dir.join("summary.json").is_file() && Shard::all_done(&dir.join("kept"), 1) {
            on_event(MineEvent::Phase("resumed"));
        } else {
            train_phase(cfg, round, on_event)?;
            score_phase(cfg, round, one, on_event)?;
        }
        let report = select_phase(cfg, round, 1, on_event)?;
        write_phase(cfg, round, one, on_event)?;
        let stop = report.overlap_with_previous.is_some_and(|o| o >= cfg.stop_overlap);
        reports.push(report);
        if stop {
            break;
        }
    }
    Ok(reports)
}

fn write_round_report(dir: &Path, r: &RoundReport, bins: &[usize; 20]) -> Result<()> {
    let json = serde_json::to_vec_pretty(r).map_err(|e| Error::Msg(e.to_string()))?;
    mathforge_io::atomic::write_atomic(dir.join("summary.json"), &json)?;
    let mut md = format!("# Mining round {}\n\n| metric | value |\n|---|---:|\n", r.round);
    md += &format!(
        "| seed pages | {} |\n| trained on (math / other) | {} / {} |\n",
        r.seed_pages, r.trained_pos, r.trained_neg
    );
    md += &format!(
        "| pool pages | {} |\n| kept pages | {} |\n| kept tokens | {} |\n",
        r.pool_pages, r.kept_pages, r.kept_tokens
    );
    md += &format!(
        "| overlap with previous round | {} |\n",
        r.overlap_with_previous.map_or("-".to_string(), |o| format!("{:.1}%", o * 100.0))
    );
    md += &format!("| math domains | {} |\n| pages added to seed | {} |\n\n## Top domains\n\n| domain | kept | fraction |\n|---|---:|---:|\n", r.math_domains, r.added_to_seed);
    for (d, k, f) in &r.top_domains {
        md += &format!("| {d} | {k} | {:.1}% |\n", f * 100.0);
    }
    md += "\n## Score histogram\n\n```\n";
    let max = bins.iter().copied().max().unwrap_or(1).max(1);
    for (b, n) in bins.iter().enumerate() {
        md += &format!(
            "{:.2}-{:.2} {:>8} {}\n",
            b as f64 / 20.0,
            (b + 1) as f64 / 20.0,
            n,
            "#".repeat(n * 50 / max)
        );
    }
    md += "```\n";
    mathforge_io::atomic::write_atomic(dir.join("report.md"), md.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_text() {
        assert_eq!(domain_of("https://www.MathOverflow.net/questions/1"), "mathoverflow.net");
        assert_eq!(
            path_prefix("https://math.stackexchange.com/questions/12/x"),
            "math.stackexchange.com/questions/"
        );
        assert_eq!(classifier_text("解方程\nx=1"), " 解  方  程  x=1");
    }

    fn math_doc(i: usize, host: &str) -> Document {
        Document::new(
            format!("m{i}-{host}"),
            Some(format!("https://{host}/questions/{i}")),
            format!("Let $x^{i}$ be an integer. Prove that the sum of the roots equals {i}. Theorem {i}: the integral of f over [0,1] is finite. lemma proof equation"),
        )
    }

    fn other_doc(i: usize) -> Document {
        Document::new(
            format!("o{i}"),
            Some(format!("https://shop{}.test/item/{i}", i % 7)),
            format!("Buy cheap shoes today number {i}. Free shipping on every order and great customer reviews from our happy buyers."),
        )
    }

    #[test]
    fn two_rounds_find_math_pages_domains_and_grow_the_seed() {
        let dir = tempfile::tempdir().unwrap();
        let seed: Vec<Document> = (0..40).map(|i| math_doc(i, "seed.test")).collect();
        let mut pool: Vec<Document> = (0..60).map(|i| math_doc(100 + i, "mathsite.test")).collect();
        pool.extend((0..240).map(other_doc));
        // Pages under an approved path that look like shopping pages: only the approval adds them.
        pool.extend((0..5).map(|i| {
            Document::new(
                format!("a{i}"),
                Some(format!("https://mathsite.test/wiki/{i}")),
                "shoes free shipping order buyers".to_string(),
            )
        }));
        let write = |name: &str, docs: &[Document]| {
            let p = dir.path().join(name);
            let mut w = DocumentWriter::create(&p).unwrap();
            for d in docs {
                w.write(d).unwrap();
            }
            w.finish().unwrap();
            p
        };
        let approved = dir.path().join("approved.txt");
        std::fs::write(&approved, "# approved\nmathsite.test/wiki/\n").unwrap();
        let cfg = MineConfig {
            seed: vec![write("seed.jsonl", &seed)],
            pool: vec![write("pool.parquet", &pool)],
            out: dir.path().join("mine"),
            rounds: 2,
            dim: 16,
            epoch: 10,
            min_count: 1,
            word_ngrams: 2,
            threads: 1,
            keep_fraction: 0.2,
            approved_paths: Some(approved),
            stop_overlap: 2.0,
            ..MineConfig::default()
        };
        let reports = run(&cfg, &|_| {}).unwrap();
        assert_eq!(reports.len(), 2);
        let r1 = &reports[0];
        assert_eq!(r1.kept_pages, 61);
        assert_eq!(r1.pool_pages, 305);
        let kept: Vec<Document> =
            read_documents(dir.path().join("mine/round-1/kept/kept-00000-of-00001.jsonl.gz"))
                .map(|d| d.unwrap())
                .collect();
        assert_eq!(kept.len(), 61);
        let math_kept = kept.iter().filter(|d| d.id.starts_with('m')).count();
        assert!(math_kept >= 55, "only {math_kept} math pages among the kept");
        // Kept pages carry their score; the pool's math pages were also sampled as negatives
        // (random pool pages, as in the paper), so scores are low, but they rank first.
        assert!(kept.iter().all(|d| d.metadata["score"].as_f64().is_some()));
        assert!(kept.iter().all(|d| d.metadata["round"] == 1));
        assert!(r1.top_domains[0].0 == "mathsite.test", "{:?}", r1.top_domains);
        assert!(r1.math_domains >= 1);
        // The approved-path pages join the seed at the start of round 2.
        assert_eq!(r1.added_to_seed, 0);
        assert!((4..=5).contains(&reports[1].added_to_seed), "{}", reports[1].added_to_seed);
        assert_eq!(reports[1].seed_pages, 40);
        let paths = std::fs::read_to_string(dir.path().join("mine/round-1/paths.tsv")).unwrap();
        assert!(paths.contains("mathsite.test/questions/\t60\t"), "{paths}");
        assert!(reports[1].overlap_with_previous.unwrap() > 0.8);
        assert!(mathforge_fasttext::Model::load(dir.path().join("mine/round-2/model.bin")).is_ok());
        assert!(std::fs::read_to_string(dir.path().join("mine/round-2/report.md"))
            .unwrap()
            .contains("Score histogram"));

        // Rerun with one more round: rounds 1-2 are resumed (not retrained), round 3 runs.
        let model2 = dir.path().join("mine/round-2/model.bin");
        let before = std::fs::metadata(&model2).unwrap().modified().unwrap();
        let events = std::sync::Mutex::new(Vec::new());
        let cfg3 = MineConfig { rounds: 3, ..cfg.clone() };
        let again = run(&cfg3, &|e| {
            if let MineEvent::Phase(p) = e {
                events.lock().unwrap().push(p);
            }
        })
        .unwrap();
        assert_eq!(again.len(), 3);
        assert_eq!(again[0].kept_pages, r1.kept_pages);
        assert_eq!(again[1].overlap_with_previous, reports[1].overlap_with_previous);
        assert_eq!(std::fs::metadata(&model2).unwrap().modified().unwrap(), before);
        let ev = events.into_inner().unwrap();
        assert_eq!(ev.iter().filter(|p| **p == "resumed").count(), 2, "{ev:?}");
        assert_eq!(ev.iter().filter(|p| **p == "train").count(), 1, "{ev:?}");
        assert!(dir.path().join("mine/round-3/summary.json").is_file());
    }

    #[test]
    fn sharded_phases_keep_the_same_pages_as_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let seed: Vec<Document> = (0..30).map(|i| math_doc(i, "seed.test")).collect();
        let mut pool: Vec<Document> = (0..40).map(|i| math_doc(100 + i, "mathsite.test")).collect();
        pool.extend((0..160).map(other_doc));
        let write = |name: &str, docs: &[Document]| {
            let p = dir.path().join(name);
            let mut w = DocumentWriter::create(&p).unwrap();
            for d in docs {
                w.write(d).unwrap();
            }
            w.finish().unwrap();
            p
        };
        let base = MineConfig {
            seed: vec![write("seed.jsonl", &seed)],
            pool: vec![write("pool.jsonl.gz", &pool)],
            rounds: 1,
            dim: 16,
            epoch: 10,
            min_count: 1,
            word_ngrams: 2,
            threads: 1,
            keep_fraction: 0.25,
            ..MineConfig::default()
        };
        let one = MineConfig { out: dir.path().join("one"), ..base.clone() };
        let r = run(&one, &|_| {}).unwrap();
        let ids = |paths: Vec<PathBuf>| {
            let mut v: Vec<String> =
                paths.iter().flat_map(|p| read_documents(p).map(|d| d.unwrap().id)).collect();
            v.sort();
            v
        };
        let single = ids(vec![dir.path().join("one/round-1/kept/kept-00000-of-00001.jsonl.gz")]);
        assert_eq!(single.len(), 50);

        let many = MineConfig { out: dir.path().join("many"), ..base };
        let n = 3;
        train_phase(&many, 1, &|_| {}).unwrap();
        // Selecting before every score shard finished is refused, naming the missing shards.
        score_phase(&many, 1, Shard::new(0, n).unwrap(), &|_| {}).unwrap();
        let err = select_phase(&many, 1, n, &|_| {}).unwrap_err().to_string();
        assert!(err.contains("[1, 2]"), "{err}");
        for i in 1..n {
            score_phase(&many, 1, Shard::new(i, n).unwrap(), &|_| {}).unwrap();
        }
        let rm = select_phase(&many, 1, n, &|_| {}).unwrap();
        assert_eq!((rm.pool_pages, rm.kept_pages), (r[0].pool_pages, r[0].kept_pages));
        for i in 0..n {
            write_phase(&many, 1, Shard::new(i, n).unwrap(), &|_| {}).unwrap();
        }
        let files: Vec<PathBuf> = (0..n)
            .map(|i| dir.path().join(format!("many/round-1/kept/kept-{i:05}-of-{n:05}.jsonl.gz")))
            .collect();
        assert_eq!(ids(files), single);
    }
}
