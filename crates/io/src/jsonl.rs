//! JSON Lines reading and writing, plain or compressed by extension (`.gz`, `.zst`).
//!
//! The reader yields `(line_number, Result<Value>)`-style items through [`Record`] so callers
//! can either stop with `file:line: reason` or skip and count (`--skip-bad`). Blank lines are
//! ignored. The writer is atomic (see [`crate::atomic`]).
use crate::atomic::AtomicFile;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Compression chosen from a file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// zstd (`.zst`, `.zstd`).
    Zstd,
}

impl Compression {
    /// Guess from the extension.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Compression::Gzip,
            Some("zst") | Some("zstd") => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// Open any file for reading, transparently decompressing `.gz` (multi-member) and `.zst`.
pub fn open_read(path: impl AsRef<Path>) -> Result<Box<dyn BufRead + Send>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let raw = BufReader::with_capacity(1 << 20, file);
    Ok(match Compression::from_path(path) {
        Compression::None => Box::new(raw),
        Compression::Gzip => {
            Box::new(BufReader::with_capacity(1 << 20, flate2::bufread::MultiGzDecoder::new(raw)))
        }
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| Error::io(path, e))?;
            Box::new(BufReader::with_capacity(1 << 20, dec))
        }
    })
}

/// One line of a JSONL file.
#[derive(Debug)]
pub struct Record {
    /// 1-based line number.
    pub line: u64,
    /// The parsed value, or the error for this line (IO errors end the iteration after this).
    pub value: Result<serde_json::Value>,
}

/// Streaming JSONL reader.
pub struct JsonlReader {
    path: PathBuf,
    inner: Box<dyn BufRead + Send>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl JsonlReader {
    /// Open a `.jsonl`, `.jsonl.gz` or `.jsonl.zst` file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let inner = open_read(&path)?;
        Ok(JsonlReader { path, inner, line: 0, buf: Vec::new(), done: false })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read every line into `T`, failing on the first bad line with `file:line: reason`.
    pub fn read_all<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<Vec<T>> {
        let reader = Self::open(path)?;
        let p = reader.path.clone();
        let mut out = Vec::new();
        for rec in reader {
            let v = rec.value?;
            let t = serde_json::from_value(v).map_err(|e| Error::BadLine {
                path: p.clone(),
                line: rec.line,
                message: e.to_string(),
            })?;
            out.push(t);
        }
        Ok(out)
    }
}

impl Iterator for JsonlReader {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            match self.inner.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {
                    self.line += 1;
                    let trimmed = trim_ascii(&self.buf);
                    if trimmed.is_empty() {
                        continue;
                    }
                    let value = serde_json::from_slice(trimmed).map_err(|e| Error::BadLine {
                        path: self.path.clone(),
                        line: self.line,
                        message: format!("invalid JSON: {e}"),
                    });
                    return Some(Record { line: self.line, value });
                }
                Err(e) => {
                    // Truncated gzip and similar: report once, then stop.
                    self.done = true;
                    self.line += 1;
                    return Some(Record {
                        line: self.line,
                        value: Err(Error::BadLine {
                            path: self.path.clone(),
                            line: self.line,
                            message: format!("read error (truncated or corrupt file?): {e}"),
                        }),
                    });
                }
            }
        }
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |p| p + 1);
    &b[start..end]
}

/// Atomic JSONL writer; compression from the extension. Call [`JsonlWriter::finish`].
pub struct JsonlWriter {
    inner: Box<dyn FinishWrite>,
    count: u64,
}

trait FinishWrite: Write + Send {
    fn finish(self: Box<Self>) -> Result<()>;
}

impl FinishWrite for AtomicFile {
    fn finish(self: Box<Self>) -> Result<()> {
        (*self).commit()
    }
}

struct GzFinish(flate2::write::GzEncoder<AtomicFile>, PathBuf);
impl Write for GzFinish {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
impl FinishWrite for GzFinish {
    fn finish(self: Box<Self>) -> Result<()> {
        let GzFinish(enc, path) = *self;
        enc.finish().map_err(|e| Error::io(&path, e))?.commit()
    }
}

struct ZstdFinish(zstd::stream::write::Encoder<'static, AtomicFile>, PathBuf);
impl Write for ZstdFinish {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
impl FinishWrite for ZstdFinish {
    fn finish(self: Box<Self>) -> Result<()> {
        let ZstdFinish(enc, path) = *self;
        enc.finish().map_err(|e| Error::io(&path, e))?.commit()
    }
}

impl JsonlWriter {
    /// Create `path` (atomically replaced on [`finish`](Self::finish)).
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = AtomicFile::create(path)?;
        let inner: Box<dyn FinishWrite> = match Compression::from_path(path) {
            Compression::None => Box::new(file),
            Compression::Gzip => Box::new(GzFinish(
                flate2::write::GzEncoder::new(file, flate2::Compression::new(6)),
                path.to_path_buf(),
            )),
            Compression::Zstd => Box::new(ZstdFinish(
                zstd::stream::write::Encoder::new(file, 3).map_err(|e| Error::io(path, e))?,
                path.to_path_buf(),
            )),
        };
        Ok(JsonlWriter { inner, count: 0 })
    }

    /// Append one record.
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let mut line = serde_json::to_vec(value)
            .map_err(|e| Error::Invalid(format!("cannot serialize record: {e}")))?;
        line.push(b'\n');
        self.inner.write_all(&line).map_err(|e| Error::io("<jsonl writer>", e))?;
        self.count += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Finish compression and rename into place.
    pub fn finish(self) -> Result<()> {
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn roundtrip_all_compressions_and_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.jsonl", "a.jsonl.gz", "a.jsonl.zst"] {
            let p = dir.path().join(name);
            let mut w = JsonlWriter::create(&p).unwrap();
            for i in 0..3 {
                w.write(&serde_json::json!({ "i": i })).unwrap();
            }
            w.finish().unwrap();
            let recs: Vec<_> = JsonlReader::open(&p).unwrap().collect();
            assert_eq!(recs.len(), 3, "{name}");
            assert_eq!(recs[2].line, 3);
            assert_eq!(recs[1].value.as_ref().unwrap()["i"], 1);
        }
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.jsonl");
        let mut f = File::create(&p).unwrap();
        writeln!(f, "{{\"a\":1}}\n\n{{oops").unwrap();
        let recs: Vec<_> = JsonlReader::open(&p).unwrap().collect();
        assert_eq!(recs.len(), 2);
        let err = recs[1].value.as_ref().unwrap_err().to_string();
        assert!(err.contains("bad.jsonl:3:"), "{err}");
    }

    #[test]
    fn truncated_gzip_is_reported_not_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl.gz");
        let mut w = JsonlWriter::create(&p).unwrap();
        for i in 0..2000 {
            w.write(&serde_json::json!({ "i": i, "pad": "x".repeat(50) })).unwrap();
        }
        w.finish().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let recs: Vec<_> = JsonlReader::open(&p).unwrap().collect();
        assert!(recs.last().unwrap().value.is_err());
        assert!(recs.iter().filter(|r| r.value.is_ok()).count() > 10);
    }
}
