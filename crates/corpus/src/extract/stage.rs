//! The extraction stage over files: WARC/WET (`.warc[.gz|.zst]`, `.wet[.gz]`), single HTML files
//! (`.html`, `.htm`) and JSONL with an `html` field → one JSONL(.gz/.zst) or Parquet file.
//!
//! Parallelism: one reader thread decompresses and parses records into batches; each batch is
//! extracted on all cores (rayon) and written in input order, so output is deterministic.
//!
//! Sharding (DESIGN "Scale"): with at least as many input files as shards, shard `i` takes files
//! `i, i+N, ...`; with fewer files (one big WARC), every shard reads all files and takes records
//! `i, i+N, ...`. Shard outputs are named `<stem>-IIIII-of-NNNNN.<ext>`; each writes its summary
//! (`summary.json` / `summary-IIIII.json`) and, last, its completion marker
//! (`completions/IIIII` beside the output). A rerun skips a shard whose marker exists.
use super::{extract_page, extract_record, ExtractConfig, Outcome, RecordNotes};
use crate::error::{Error, Result};
use crate::formats::{DocFormat, DocumentWriter};
use crate::stats::StageStats;
use crate::warc::{is_warc_path, WarcOptions, WarcReader};
use mathforge_io::shard::Shard;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Progress of a running stage, reported after each batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Input files finished.
    pub files_done: usize,
    /// Input files of this shard.
    pub files_total: usize,
    /// Records read so far.
    pub records: u64,
    /// Documents written so far.
    pub docs_out: u64,
}

/// One run of the stage.
#[derive(Debug, Clone)]
pub struct ExtractJob {
    /// Input files.
    pub inputs: Vec<PathBuf>,
    /// Output file (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`, `.parquet`); sharded runs derive names from it.
    pub output: PathBuf,
    /// This process's shard.
    pub shard: Shard,
    /// Settings.
    pub config: ExtractConfig,
}

/// What the stage did.
#[derive(Debug, Clone)]
pub struct ExtractReport {
    /// The file written (or found complete).
    pub output: PathBuf,
    /// Counters.
    pub stats: StageStats,
    /// True when the shard was already complete and nothing was done.
    pub skipped_done: bool,
}

/// The output file of `shard` for the requested `output` path.
pub fn shard_output(output: &Path, shard: Shard) -> PathBuf {
    if shard.shards <= 1 {
        return output.to_path_buf();
    }
    let name = output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Split at the first dot so `x.jsonl.gz` becomes `x-00001-of-00004.jsonl.gz`.
    let (stem, ext) = match name.find('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name.as_str(), ""),
    };
    output.with_file_name(format!("{stem}-{:05}-of-{:05}{ext}", shard.index, shard.shards))
}

fn stage_dir(output: &Path) -> PathBuf {
    match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn summary_stem(shard: Shard) -> String {
    if shard.shards <= 1 {
        "summary".to_string()
    } else {
        format!("summary-{:05}", shard.index)
    }
}

/// How an input file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// WARC / WET / WAT.
    Warc,
    /// One HTML page per file.
    Html,
    /// JSONL with an `html` field per line.
    JsonlHtml,
}

/// Tell the input kind from a file name.
pub fn input_kind(path: &Path) -> Result<InputKind> {
    let n = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    if is_warc_path(path) {
        Ok(InputKind::Warc)
    } else if n.ends_with(".html")
        || n.ends_with(".htm")
        || n.ends_with(".xhtml")
        || n.ends_with(".html.gz")
    {
        Ok(InputKind::Html)
    } else if matches!(DocFormat::from_path(path), Ok(DocFormat::Jsonl)) {
        Ok(InputKind::JsonlHtml)
    } else {
        Err(Error::UnknownFormat {
            path: path.to_path_buf(),
            expected:
                ".warc[.gz|.zst], .wet[.gz], .html, .htm or .jsonl[.gz|.zst] with an `html` field",
        })
    }
}

/// A record as read, before extraction.
enum Raw {
    Record(crate::warc::WarcRecord),
    Page { id: String, url: Option<String>, bytes: Vec<u8> },
    Skip(&'static str),
    FileDone,
}

impl Raw {
    fn bytes(&self) -> u64 {
        match self {
            Raw::Record(r) => r.block.len() as u64,
            Raw::Page { bytes, .. } => bytes.len() as u64,
            _ => 0,
        }
    }
}

/// Run the stage. `progress` is called after every batch (the CLI draws a bar with it).
pub fn run(job: &ExtractJob, progress: &mut dyn FnMut(Progress)) -> Result<ExtractReport> {
    let start = Instant::now();
    let output = shard_output(&job.output, job.shard);
    let dir = stage_dir(&output);
    if job.shard.is_done(&dir) && output.exists() {
        let stats = StageStats::read(&dir.join(format!("{}.json", summary_stem(job.shard))))
            .unwrap_or_else(|_| StageStats::new("extract"));
        return Ok(ExtractReport { output, stats, skipped_done: true });
    }
    for p in &job.inputs {
        input_kind(p)?;
        if !p.is_file() {
            return Err(Error::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "input file not found"),
            ));
        }
    }
    let by_file = job.inputs.len() >= job.shard.shards;
    let files: Vec<PathBuf> =
        if by_file { job.shard.select(&job.inputs) } else { job.inputs.clone() };
    let record_filter = if by_file { None } else { Some(job.shard) };

    let mut writer = DocumentWriter::create(&output)?;
    let mut stats = StageStats::new("extract");
    let mut prog = Progress { files_total: files.len(), ..Default::default() };
    let cfg = job.config.clone();
    let batch_size = cfg.batch_size.max(1);

    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Raw>>(2);
    let reader_files = files.clone();
    let reader_cfg = cfg.clone();
    let reader = std::thread::spawn(move || {
        read_inputs(&reader_files, &reader_cfg, record_filter, batch_size, &tx)
    });

    let mut failure: Option<Error> = None;
    for batch in rx.iter() {
        let results: Vec<Option<(Outcome, RecordNotes, u64)>> = batch
            .par_iter()
            .map(|raw| match raw {
                Raw::Record(r) => {
                    let (o, n) = extract_record(r, &cfg);
                    Some((o, n, raw.bytes()))
                }
                Raw::Page { id, url, bytes } => {
                    let (o, n) = extract_page(bytes, None, id.clone(), url.clone(), &cfg);
                    Some((o, n, raw.bytes()))
                }
                Raw::Skip(reason) => Some((Outcome::Reject(reason), RecordNotes::default(), 0)),
                Raw::FileDone => None,
            })
            .collect();
        for r in results {
            let Some((outcome, notes, bytes)) = r else {
                prog.files_done += 1;
                continue;
            };
            if notes.lossy_charset {
                stats.note("charset_lossy", 1);
            }
            match outcome {
                Outcome::Ignored(what) => stats.note(what, 1),
                Outcome::Reject(reason) => {
                    stats.docs_in += 1;
                    stats.bytes_in += bytes;
                    stats.reject(reason);
                }
                Outcome::Doc(doc) => {
                    stats.docs_in += 1;
                    stats.bytes_in += bytes;
                    stats.docs_out += 1;
                    stats.bytes_out += doc.text.len() as u64;
                    if failure.is_none() {
                        if let Err(e) = writer.write_owned(*doc) {
                            failure = Some(e);
                        }
                    }
                }
            }
            prog.records += 1;
        }
        prog.docs_out = stats.docs_out;
        progress(prog);
        if failure.is_some() {
            break;
        }
    }
    drop(rx);
    let read_result =
        reader.join().map_err(|_| Error::Msg("input reader thread panicked".into()))?;
    if let Some(e) = failure {
        return Err(e);
    }
    read_result?;
    writer.finish()?;
    stats.seconds = start.elapsed().as_secs_f64();
    stats.write(&dir, &summary_stem(job.shard))?;
    let marker = serde_json::to_value(&stats).map_err(|e| Error::Msg(e.to_string()))?;
    job.shard.mark_done(&dir, &marker)?;
    Ok(ExtractReport { output, stats, skipped_done: false })
}

/// Reader thread: parse inputs into batches of raw records. Returns an error only for problems
/// that make the run meaningless (an input that cannot be opened); bad records become `Skip`.
fn read_inputs(
    files: &[PathBuf],
    cfg: &ExtractConfig,
    filter: Option<Shard>,
    batch_size: usize,
    tx: &std::sync::mpsc::SyncSender<Vec<Raw>>,
) -> Result<()> {
    let mut batch = Vec::with_capacity(batch_size);
    let mut counter = 0usize;
    let send = |batch: &mut Vec<Raw>, force: bool| -> bool {
        if batch.len() >= batch_size || (force && !batch.is_empty()) {
            let b = std::mem::replace(batch, Vec::with_capacity(batch_size));
            return tx.send(b).is_ok();
        }
        true
    };
    let keep = |counter: &mut usize| {
        let i = *counter;
        *counter += 1;
        filter.is_none_or(|s| s.owns(i))
    };
    for path in files {
        match input_kind(path)? {
            InputKind::Warc => {
                // WARC-level limit a bit above the payload limit: HTTP headers ride in the block.
                let opts =
                    WarcOptions { max_record_bytes: cfg.max_bytes.saturating_add(64 * 1024) };
                for item in WarcReader::open(path, opts)? {
                    if !keep(&mut counter) {
                        continue;
                    }
                    batch.push(match item {
                        Ok(r) => Raw::Record(r),
                        Err(s) => Raw::Skip(s.reason.as_str()),
                    });
                    if !send(&mut batch, false) {
                        return Ok(());
                    }
                }
            }
            InputKind::Html => {
                if keep(&mut counter) {
                    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
                    if meta.len() > cfg.max_bytes && !path.to_string_lossy().ends_with(".gz") {
                        batch.push(Raw::Skip("oversized"));
                    } else {
                        let mut bytes = Vec::new();
                        let read = mathforge_io::jsonl::open_read(path).and_then(|mut r| {
                            std::io::Read::read_to_end(&mut r, &mut bytes)
                                .map_err(|e| mathforge_io::Error::io(path, e))
                        });
                        batch.push(match read {
                            Ok(_) => Raw::Page {
                                id: path
                                    .file_name()
                                    .map(|n| n.to_string_lossy().into_owned())
                                    .unwrap_or_default(),
                                url: None,
                                bytes,
                            },
                            Err(_) => Raw::Skip("truncated"),
                        });
                    }
                }
            }
            InputKind::JsonlHtml => {
                let fname =
                    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                for rec in mathforge_io::jsonl::JsonlReader::open(path)? {
                    if !keep(&mut counter) {
                        continue;
                    }
                    let raw = match rec.value {
                        Err(_) => Raw::Skip("bad_json_line"),
                        Ok(v) => {
                            let html = ["html", "raw_html", "content"]
                                .iter()
                                .find_map(|k| v.get(*k).and_then(|x| x.as_str()));
                            match html {
                                None => Raw::Skip("missing_html_field"),
                                Some(h) => Raw::Page {
                                    id: v
                                        .get("id")
                                        .and_then(|x| {
                                            x.as_str()
                                                .map(str::to_string)
                                                .or_else(|| x.as_i64().map(|n| n.to_string()))
                                        })
                                        .unwrap_or_else(|| format!("{fname}:{}", rec.line)),
                                    url: v.get("url").and_then(|x| x.as_str()).map(str::to_string),
                                    bytes: h.as_bytes().to_vec(),
                                },
                            }
                        }
                    };
                    batch.push(raw);
                    if !send(&mut batch, false) {
                        return Ok(());
                    }
                }
            }
        }
        batch.push(Raw::FileDone);
        if !send(&mut batch, true) {
            return Ok(());
        }
    }
    send(&mut batch, true);
    Ok(())
}
