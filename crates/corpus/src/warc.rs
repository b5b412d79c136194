//! A streaming WARC reader (ISO 28500, WARC/1.0 and 1.1; also reads 0.18), for Common Crawl
//! `.warc.gz` (one gzip member per record, read as multi-member gzip), `.warc.zst` and plain
//! `.warc`, plus the HTTP response parsing that the extraction stage needs.
//!
//! Why our own reader rather than a crate: the pipeline must survive real crawl data, so every
//! kind of damage becomes a skipped record with a reason instead of an error that ends the file:
//!
//! * a header block that does not start with `WARC/` or has no valid `Content-Length`
//!   → [`SkipReason::MalformedHeader`], then the reader resynchronises on the next `WARC/` line;
//! * a record larger than the configured limit → [`SkipReason::Oversized`] (its bytes are
//!   discarded while streaming, never buffered);
//! * a file that ends inside a record, or a corrupt gzip/zstd stream → [`SkipReason::Truncated`],
//!   which ends the file (a compressed stream cannot be resumed after corruption).
//!
//! Format facts used (WARC 1.1 spec §4–§6): a record is a version line, `Name: value` header
//! lines (continuation lines start with a space or tab), an empty line, `Content-Length` bytes
//! of block, then two CRLFs. Header names are case-insensitive.
use crate::error::{Error, Result};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// Longest header line accepted (longer lines are treated as garbage).
const MAX_HEADER_LINE: u64 = 64 * 1024;
/// Most header lines in one record.
const MAX_HEADER_LINES: usize = 512;

/// Why a record was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Version line, header syntax or `Content-Length` not valid.
    MalformedHeader,
    /// Content-Length above the limit.
    Oversized,
    /// The file ended (or its compression broke) inside a record.
    Truncated,
}

impl SkipReason {
    /// Stable name used in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::MalformedHeader => "malformed_warc_header",
            SkipReason::Oversized => "oversized",
            SkipReason::Truncated => "truncated",
        }
    }
}

/// A record that was not returned, with where and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The reason, for counting.
    pub reason: SkipReason,
    /// Byte offset of the record in the decompressed stream.
    pub offset: u64,
    /// Details for logs.
    pub message: String,
}

/// One WARC record: its headers and its block (for `response` records the block is the HTTP
/// message; for `conversion` records of WET files it is the plain text).
#[derive(Debug, Clone)]
pub struct WarcRecord {
    /// `WARC/1.0` etc.
    pub version: String,
    /// Headers in file order.
    pub headers: Vec<(String, String)>,
    /// The record block.
    pub block: Vec<u8>,
    /// Byte offset of the record in the decompressed stream.
    pub offset: u64,
}

impl WarcRecord {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// `WARC-Type` (`response`, `request`, `resource`, `metadata`, `conversion`, `warcinfo`, ...).
    pub fn warc_type(&self) -> &str {
        self.header("WARC-Type").unwrap_or("")
    }
    /// `WARC-Target-URI`, without the angle brackets some writers add.
    pub fn target_uri(&self) -> Option<&str> {
        self.header("WARC-Target-URI")
            .map(|u| u.trim().trim_start_matches('<').trim_end_matches('>'))
    }
    /// `WARC-Record-ID`, e.g. `<urn:uuid:...>`.
    pub fn record_id(&self) -> Option<&str> {
        self.header("WARC-Record-ID")
    }
    /// `WARC-Date`.
    pub fn date(&self) -> Option<&str> {
        self.header("WARC-Date")
    }
    /// `Content-Type` of the block.
    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }
}

/// Reader limits.
#[derive(Debug, Clone, Copy)]
pub struct WarcOptions {
    /// Records whose block is larger than this are skipped as [`SkipReason::Oversized`].
    pub max_record_bytes: u64,
}

impl Default for WarcOptions {
    fn default() -> Self {
        // Common Crawl truncates payloads at 1 MiB (WARC-Truncated: length), so 4 MiB leaves room
        // for headers while rejecting pathological records.
        WarcOptions { max_record_bytes: 4 << 20 }
    }
}

/// Streaming reader over the records of one WARC file.
pub struct WarcReader {
    path: PathBuf,
    inner: Box<dyn BufRead + Send>,
    opts: WarcOptions,
    offset: u64,
    /// A version line read ahead while resynchronising.
    pending: Option<Vec<u8>>,
    done: bool,
}

/// One item of a [`WarcReader`]: a record, or a skipped record with its reason.
pub type WarcItem = std::result::Result<WarcRecord, Skipped>;

enum Line {
    Eof,
    Line(Vec<u8>),
}

impl WarcReader {
    /// Open a `.warc`, `.warc.gz` or `.warc.zst` (also `.wet.gz`, `.wat.gz`) file.
    pub fn open(path: impl AsRef<Path>, opts: WarcOptions) -> Result<Self> {
        let path = path.as_ref();
        let inner = mathforge_io::jsonl::open_read(path)?;
        Ok(Self::from_reader(path, inner, opts))
    }

    /// Read from any buffered stream (already decompressed); `path` is used in messages.
    pub fn from_reader(
        path: impl AsRef<Path>,
        inner: Box<dyn BufRead + Send>,
        opts: WarcOptions,
    ) -> Self {
        WarcReader {
            path: path.as_ref().to_path_buf(),
            inner,
            opts,
            offset: 0,
            pending: None,
            done: false,
        }
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_line(&mut self) -> std::io::Result<Line> {
        if let Some(l) = self.pending.take() {
            return Ok(Line::Line(l));
        }
        let mut buf = Vec::new();
        let n = (&mut self.inner).take(MAX_HEADER_LINE).read_until(b'\n', &mut buf)?;
        self.offset += n as u64;
        if n == 0 {
            return Ok(Line::Eof);
        }
        Ok(Line::Line(buf))
    }

    fn truncated(&mut self, offset: u64, what: String) -> Option<WarcItem> {
        self.done = true;
        Some(Err(Skipped {
            reason: SkipReason::Truncated,
            offset,
            message: format!("{}: {what}", self.path.display()),
        }))
    }

    fn malformed(&self, offset: u64, what: String) -> Option<WarcItem> {
        Some(Err(Skipped {
            reason: SkipReason::MalformedHeader,
            offset,
            message: format!("{}: offset {offset}: {what}", self.path.display()),
        }))
    }

    /// Skip lines until the next `WARC/` version line (kept in `pending`) or EOF.
    fn resync(&mut self) -> std::io::Result<()> {
        loop {
            match self.read_line()? {
                Line::Eof => return Ok(()),
                Line::Line(l) => {
                    if is_version_line(&l) {
                        self.pending = Some(l);
                        return Ok(());
                    }
                }
            }
        }
    }

    fn next_item(&mut self) -> Option<WarcItem> {
        if self.done {
            return None;
        }
        // Version line (blank lines between records are allowed).
        let start;
        let version = loop {
            let before = self.offset - self.pending.as_ref().map_or(0, |p| p.len() as u64);
            match self.read_line() {
                Err(e) => return self.truncated(before, format!("read error: {e}")),
                Ok(Line::Eof) => {
                    self.done = true;
                    return None;
                }
                Ok(Line::Line(l)) => {
                    if trim_eol(&l).is_empty() {
                        continue;
                    }
                    start = before;
                    if !is_version_line(&l) && is_warc_header_line(&l) {
                        // A block whose Content-Length overshot by a line swallowed our version
                        // line (seen in hand-made WET files): recover from the first header.
                        self.pending = Some(l);
                        break "WARC/?".to_string();
                    }
                    if !is_version_line(&l) {
                        let shown = String::from_utf8_lossy(&l[..l.len().min(40)]).into_owned();
                        if let Err(e) = self.resync() {
                            return self.truncated(start, format!("read error: {e}"));
                        }
                        return self.malformed(
                            start,
                            format!("expected a `WARC/` version line, found {shown:?}"),
                        );
                    }
                    break String::from_utf8_lossy(trim_eol(&l)).into_owned();
                }
            }
        };
        // Header lines.
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut bad_line: Option<String> = None;
        loop {
            let l = match self.read_line() {
                Err(e) => return self.truncated(start, format!("read error in headers: {e}")),
                Ok(Line::Eof) => {
                    return self.truncated(start, "file ends inside WARC headers".into())
                }
                Ok(Line::Line(l)) => l,
            };
            let t = trim_eol(&l);
            if t.is_empty() {
                break;
            }
            if headers.len() >= MAX_HEADER_LINES {
                bad_line.get_or_insert_with(|| "too many header lines".into());
                continue;
            }
            if (t[0] == b' ' || t[0] == b'\t') && !headers.is_empty() {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(String::from_utf8_lossy(t).trim());
                }
                continue;
            }
            match memchr::memchr(b':', t) {
                Some(i) if i > 0 => {
                    let name = String::from_utf8_lossy(&t[..i]).trim().to_string();
                    let value = String::from_utf8_lossy(&t[i + 1..]).trim().to_string();
                    headers.push((name, value));
                }
                _ => {
                    bad_line.get_or_insert_with(|| {
                        format!(
                            "header line without `:`: {:?}",
                            String::from_utf8_lossy(&t[..t.len().min(40)])
                        )
                    });
                }
            }
        }
        let length = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
            .and_then(|(_, v)| v.trim().parse::<u64>().ok());
        let Some(length) = length else {
            if let Err(e) = self.resync() {
                return self.truncated(start, format!("read error: {e}"));
            }
            return self.malformed(start, "missing or invalid Content-Length".into());
        };
        if length > self.opts.max_record_bytes || bad_line.is_some() {
            // Stream the block away without holding it.
            let mut limited = (&mut self.inner).take(length);
            match std::io::copy(&mut limited, &mut std::io::sink()) {
                Ok(n) => {
                    self.offset += n;
                    if n < length {
                        return self.truncated(
                            start,
                            format!("file ends inside a record block ({n} of {length} bytes)"),
                        );
                    }
                }
                Err(e) => return self.truncated(start, format!("read error in block: {e}")),
            }
            if let Some(b) = bad_line {
                return self.malformed(start, b);
            }
            return Some(Err(Skipped {
                reason: SkipReason::Oversized,
                offset: start,
                message: format!(
                    "{}: offset {start}: record of {length} bytes exceeds the {} byte limit",
                    self.path.display(),
                    self.opts.max_record_bytes
                ),
            }));
        }
        let mut block = Vec::with_capacity(length as usize);
        match (&mut self.inner).take(length).read_to_end(&mut block) {
            Ok(n) => {
                self.offset += n as u64;
                if (n as u64) < length {
                    return self.truncated(
                        start,
                        format!("file ends inside a record block ({n} of {length} bytes)"),
                    );
                }
            }
            Err(e) => return self.truncated(start, format!("read error in block: {e}")),
        }
        Some(Ok(WarcRecord { version, headers, block, offset: start }))
    }
}

impl Iterator for WarcReader {
    type Item = WarcItem;
    fn next(&mut self) -> Option<WarcItem> {
        self.next_item()
    }
}

fn is_version_line(l: &[u8]) -> bool {
    l.starts_with(b"WARC/")
}

fn is_warc_header_line(l: &[u8]) -> bool {
    l.starts_with(b"WARC-") && memchr::memchr(b':', l).is_some()
}

fn trim_eol(l: &[u8]) -> &[u8] {
    let mut end = l.len();
    while end > 0 && (l[end - 1] == b'\n' || l[end - 1] == b'\r') {
        end -= 1;
    }
    &l[..end]
}

/// A parsed HTTP response carried in a WARC `response` record.
#[derive(Debug, Clone)]
pub struct HttpResponse<'a> {
    /// Status code (200, 404, ...).
    pub status: u16,
    /// Response headers in order.
    pub headers: Vec<(String, String)>,
    /// The body (after the empty line).
    pub body: &'a [u8],
}

impl HttpResponse<'_> {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parse the HTTP status line and headers of a WARC `response` block (RFC 9112 §2–§5; bare LF
/// line ends are accepted as real servers send them). Returns a message on malformed input.
pub fn parse_http_response(block: &[u8]) -> std::result::Result<HttpResponse<'_>, String> {
    let mut pos = 0usize;
    let mut status = None;
    let mut headers = Vec::new();
    loop {
        let Some(nl) = memchr::memchr(b'\n', &block[pos..]) else {
            return Err("HTTP header block does not end".into());
        };
        let line = trim_eol(&block[pos..pos + nl + 1]);
        pos += nl + 1;
        if status.is_none() {
            let s = String::from_utf8_lossy(line);
            let mut parts = s.split_whitespace();
            let proto = parts.next().unwrap_or("");
            if !proto.starts_with("HTTP/") {
                return Err(format!("not an HTTP status line: {:?}", &s[..s.len().min(40)]));
            }
            let code = parts
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("bad HTTP status line: {:?}", &s[..s.len().min(40)]))?;
            status = Some(code);
            continue;
        }
        if line.is_empty() {
            break;
        }
        if let Some(i) = memchr::memchr(b':', line) {
            headers.push((
                String::from_utf8_lossy(&line[..i]).trim().to_string(),
                String::from_utf8_lossy(&line[i + 1..]).trim().to_string(),
            ));
        }
    }
    Ok(HttpResponse { status: status.unwrap_or(0), headers, body: &block[pos..] })
}

/// Whether a file name looks like a WARC/WET/WAT file.
pub fn is_warc_path(path: &Path) -> bool {
    let n = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let base = n
        .strip_suffix(".gz")
        .or_else(|| n.strip_suffix(".zst"))
        .or_else(|| n.strip_suffix(".zstd"))
        .unwrap_or(&n);
    base.ends_with(".warc")
        || base.ends_with(".wet")
        || base.ends_with(".wat")
        || base.ends_with(".arc")
}

/// Read every record of a file into memory (tests and small files); skips are returned too.
pub fn read_all(path: impl AsRef<Path>, opts: WarcOptions) -> Result<Vec<WarcItem>> {
    Ok(WarcReader::open(path, opts)?.collect())
}

impl From<Skipped> for Error {
    fn from(s: Skipped) -> Self {
        Error::Msg(format!("{} ({})", s.message, s.reason.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &str, body: &str) -> String {
        format!("WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Target-URI: http://x.test/\r\nContent-Length: {}\r\n\r\n{body}\r\n\r\n", body.len())
    }

    fn reader(s: &str, max: u64) -> WarcReader {
        let bytes = s.as_bytes().to_vec();
        WarcReader::from_reader(
            "mem.warc",
            Box::new(std::io::Cursor::new(bytes)),
            WarcOptions { max_record_bytes: max },
        )
    }

    #[test]
    fn reads_records_and_skips_bad_ones() {
        let s = format!(
            "{}GARBAGE LINE\r\nmore\r\n{}WARC/1.0\r\nWARC-Type: response\r\n\r\n{}",
            record("response", "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>hi</p>"),
            record("resource", &"y".repeat(100)),
            record("response", "ok"),
        );
        let items: Vec<_> = reader(&s, 60).collect();
        let kinds: Vec<String> = items
            .iter()
            .map(|i| match i {
                Ok(r) => r.warc_type().to_string(),
                Err(s) => s.reason.as_str().to_string(),
            })
            .collect();
        assert_eq!(
            kinds,
            ["response", "malformed_warc_header", "oversized", "malformed_warc_header", "response"]
        );
        let first = items[0].as_ref().unwrap();
        let http = parse_http_response(&first.block).unwrap();
        assert_eq!(http.status, 200);
        assert_eq!(http.header("content-type"), Some("text/html"));
        assert_eq!(http.body, b"<p>hi</p>");
    }

    #[test]
    fn truncated_block_is_reported() {
        let s = record("response", "abcdef");
        let cut = &s[..s.len() - 8];
        let items: Vec<_> = reader(cut, 1000).collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap_err().reason, SkipReason::Truncated);
    }
}
