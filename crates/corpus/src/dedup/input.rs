//! Streaming input for the dedup and decontamination stages: a reader thread decompresses and
//! splits the input files into batches of records while rayon workers hash the previous batch.
//!
//! JSONL (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`) lines are passed on as raw bytes: the stage
//! parses only `id`, `url` and `text` ([`LightDoc`]) and a kept line is written back byte for
//! byte, which is both faster and more faithful than a parse/re-serialize round trip. Other
//! formats (Parquet) are read with [`crate::formats::read_documents`].
//!
//! Record identity is `(input position, valid-record ordinal)`: the signature and filter stages
//! read the same files in the same order and skip exactly the same bad records, so the n-th
//! valid record is the same document in both.
use crate::document::Document;
use crate::formats::DocFormat;
use serde::Deserialize;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

/// Records per batch handed to the workers.
pub const BATCH: usize = 2048;

/// What one record holds.
pub enum Payload {
    /// A JSONL line (without its newline).
    Line(Vec<u8>),
    /// A document decoded by [`crate::formats`] (Parquet).
    Doc(Box<Document>),
    /// A record that could not be read; the reason is counted (`read_error`) and reported.
    Bad(String),
}

/// One record with its location.
pub struct Raw {
    /// Index into the stage's file list.
    pub file: usize,
    /// 1-based line (JSONL) or row (Parquet) number.
    pub line: u64,
    /// The content.
    pub payload: Payload,
}

/// The fields the stages need. Dolma-style files keep the URL under `metadata.url`.
#[derive(Deserialize)]
struct LightJson {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

/// The parsed fields of a record.
pub struct LightDoc {
    /// `id`, or `file:line` when absent.
    pub id: String,
    /// `url` or `metadata.url`.
    pub url: Option<String>,
    /// `text`.
    pub text: String,
}

/// Why a record was skipped (the key of the `bad_records` counter).
pub type SkipReason = &'static str;

/// Parse a record into its [`LightDoc`], or the reason to skip it.
pub fn parse(raw: &Raw, path: &Path) -> std::result::Result<LightDoc, SkipReason> {
    match &raw.payload {
        Payload::Bad(_) => Err("read_error"),
        Payload::Doc(d) => Ok(LightDoc { id: d.id.clone(), url: d.url.clone(), text: d.text.clone() }),
        Payload::Line(bytes) => {
            let j: LightJson = serde_json::from_slice(bytes).map_err(|_| "invalid_json")?;
            let text = j.text.ok_or("missing_text")?;
            let id = match j.id {
                Some(serde_json::Value::String(s)) => s,
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => format!("{}:{}", path.file_name().map(|f| f.to_string_lossy()).unwrap_or_default(), raw.line),
            };
            let url = j.url.or_else(|| {
                j.metadata.as_ref().and_then(|m| m.get("url")).and_then(|u| u.as_str()).map(str::to_string)
            });
            Ok(LightDoc { id, url, text })
        }
    }
}

/// The record as a JSON object (for records written with added fields).
pub fn to_json(raw: &Raw) -> Option<serde_json::Map<String, serde_json::Value>> {
    match &raw.payload {
        Payload::Line(b) => serde_json::from_slice(b).ok(),
        Payload::Doc(d) => match serde_json::to_value(d.as_ref()) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => None,
        },
        Payload::Bad(_) => None,
    }
}

/// The record's bytes as one JSONL line (without newline).
pub fn to_line(raw: &Raw) -> Option<Vec<u8>> {
    match &raw.payload {
        Payload::Line(b) => Some(b.clone()),
        Payload::Doc(d) => serde_json::to_vec(d.as_ref()).ok(),
        Payload::Bad(_) => None,
    }
}

/// Start the reader thread over `files`; batches arrive in file order. An error opening a file
/// (or an unknown format) ends the stream with `Err`.
pub fn spawn_reader(files: Vec<PathBuf>) -> (Receiver<crate::Result<Vec<Raw>>>, JoinHandle<()>) {
    let (tx, rx) = sync_channel::<crate::Result<Vec<Raw>>>(4);
    let handle = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(BATCH);
        for (fi, path) in files.iter().enumerate() {
            let format = match DocFormat::from_path(path) {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            match format {
                DocFormat::Jsonl => {
                    let mut r = match mathforge_io::jsonl::open_read(path) {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = tx.send(Err(e.into()));
                            return;
                        }
                    };
                    let mut line_no = 0u64;
                    loop {
                        let mut buf = Vec::new();
                        match r.read_until(b'\n', &mut buf) {
                            Ok(0) => break,
                            Ok(_) => {
                                line_no += 1;
                                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                                    buf.pop();
                                }
                                if buf.iter().all(|b| b.is_ascii_whitespace()) {
                                    continue;
                                }
                                batch.push(Raw { file: fi, line: line_no, payload: Payload::Line(buf) });
                            }
                            Err(e) => {
                                line_no += 1;
                                batch.push(Raw {
                                    file: fi,
                                    line: line_no,
                                    payload: Payload::Bad(format!(
                                        "{}:{line_no}: read error (truncated or corrupt file?): {e}",
                                        path.display()
                                    )),
                                });
                                break;
                            }
                        }
                        if batch.len() >= BATCH && tx.send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))).is_err() {
                            return;
                        }
                    }
                }
                DocFormat::Parquet => {
                    for (row, item) in crate::formats::read_documents(path).enumerate() {
                        let payload = match item {
                            Ok(d) => Payload::Doc(Box::new(d)),
                            Err(e) => Payload::Bad(e.to_string()),
                        };
                        batch.push(Raw { file: fi, line: row as u64 + 1, payload });
                        if batch.len() >= BATCH && tx.send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(Ok(batch));
        }
    });
    (rx, handle)
}

/// Expand directories into the document files they contain (sorted, non-recursive) and keep
/// files as given, so `--input dir/` and `--input dir/*.jsonl.gz` agree.
pub fn expand_inputs(inputs: &[PathBuf]) -> crate::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| crate::Error::Io { path: p.clone(), source: e })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && DocFormat::from_path(f).is_ok())
                .collect();
            files.sort();
            out.extend(files);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(crate::Error::Io {
                path: p.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "input not found"),
            });
        }
    }
    Ok(out)
}

/// Atomic line writer, compression by extension (`.gz` level 3 for throughput, `.zst` level 3).
pub struct LineWriter {
    inner: Box<dyn FinishLines>,
    path: PathBuf,
    count: u64,
}

trait FinishLines: std::io::Write + Send {
    fn finish(self: Box<Self>) -> crate::Result<()>;
}

impl FinishLines for mathforge_io::atomic::AtomicFile {
    fn finish(self: Box<Self>) -> crate::Result<()> {
        Ok((*self).commit()?)
    }
}

impl FinishLines for flate2::write::GzEncoder<mathforge_io::atomic::AtomicFile> {
    fn finish(self: Box<Self>) -> crate::Result<()> {
        let path = self.get_ref().target().to_path_buf();
        let f = (*self).finish().map_err(|e| crate::Error::Io { path, source: e })?;
        Ok(f.commit()?)
    }
}

impl FinishLines for zstd::stream::write::Encoder<'static, mathforge_io::atomic::AtomicFile> {
    fn finish(self: Box<Self>) -> crate::Result<()> {
        let path = self.get_ref().target().to_path_buf();
        let f = (*self).finish().map_err(|e| crate::Error::Io { path, source: e })?;
        Ok(f.commit()?)
    }
}

impl LineWriter {
    /// Create `path` (appears only on [`finish`](Self::finish)).
    pub fn create(path: &Path) -> crate::Result<Self> {
        let file = mathforge_io::atomic::AtomicFile::create(path)?;
        let inner: Box<dyn FinishLines> = match mathforge_io::jsonl::Compression::from_path(path) {
            mathforge_io::jsonl::Compression::None => Box::new(file),
            mathforge_io::jsonl::Compression::Gzip => {
                Box::new(flate2::write::GzEncoder::new(file, flate2::Compression::new(3)))
            }
            mathforge_io::jsonl::Compression::Zstd => Box::new(
                zstd::stream::write::Encoder::new(file, 3)
                    .map_err(|e| crate::Error::Io { path: path.to_path_buf(), source: e })?,
            ),
        };
        Ok(LineWriter { inner, path: path.to_path_buf(), count: 0 })
    }

    /// Append one line (a newline is added).
    pub fn write_line(&mut self, line: &[u8]) -> crate::Result<()> {
        let io = |e| crate::Error::Io { path: self.path.clone(), source: e };
        self.inner.write_all(line).map_err(io)?;
        self.inner.write_all(b"\n").map_err(|e| crate::Error::Io { path: self.path.clone(), source: e })?;
        self.count += 1;
        Ok(())
    }

    /// Append a JSON value as one line.
    pub fn write_json<T: serde::Serialize>(&mut self, v: &T) -> crate::Result<()> {
        let bytes = serde_json::to_vec(v).map_err(|e| crate::Error::Msg(format!("{}: {e}", self.path.display())))?;
        self.write_line(&bytes)
    }

    /// Lines written.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Finish compression and rename into place.
    pub fn finish(self) -> crate::Result<u64> {
        let n = self.count;
        self.inner.finish()?;
        Ok(n)
    }
}
