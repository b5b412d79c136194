//! Sorted key files: the disk hand-off between the per-shard signature stage and the global
//! cluster stage (datatrove writes each bucket's signatures sorted per task and merges them with a
//! heap; we do the same with fixed-size records).
//!
//! A key file is a flat sequence of little-endian records `(key: u64, doc: u32)`, sorted by
//! `(key, doc)`, where `doc` is the document's index inside its shard. [`merge_runs`] k-way merges
//! the files of all shards for one key kind in O(shards) memory and reports each run of equal keys,
//! so clustering scales with disk, not RAM.
use crate::error::{Error, Result};
use mathforge_io::atomic::AtomicFile;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes per record.
pub const RECORD: usize = 12;

/// Sort `records` and write them atomically to `path`.
pub fn write_sorted(path: &Path, records: &mut [(u64, u32)]) -> Result<()> {
    records.sort_unstable();
    let mut f = AtomicFile::create(path)?;
    let mut buf = Vec::with_capacity(RECORD * 4096);
    for chunk in records.chunks(4096) {
        buf.clear();
        for &(k, d) in chunk {
            buf.extend_from_slice(&k.to_le_bytes());
            buf.extend_from_slice(&d.to_le_bytes());
        }
        f.write_all(&buf).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    }
    f.commit()?;
    Ok(())
}

/// Streaming reader of one key file.
pub struct KeyReader {
    path: PathBuf,
    inner: BufReader<File>,
    last: Option<(u64, u32)>,
}

impl KeyReader {
    /// Open `path`; its size must be a multiple of [`RECORD`].
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
        let len = file.metadata().map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?.len();
        if len % RECORD as u64 != 0 {
            return Err(Error::BadRecord {
                path: path.to_path_buf(),
                at: format!("offset {}", len - len % RECORD as u64),
                message: format!("key file size {len} is not a multiple of {RECORD} (truncated?)"),
            });
        }
        Ok(KeyReader { path: path.to_path_buf(), inner: BufReader::with_capacity(1 << 18, file), last: None })
    }

    /// Next record, checking the sort order.
    pub fn next_record(&mut self) -> Result<Option<(u64, u32)>> {
        let mut buf = [0u8; RECORD];
        match self.inner.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(Error::Io { path: self.path.clone(), source: e }),
        }
        let mut k = [0u8; 8];
        k.copy_from_slice(&buf[..8]);
        let mut d = [0u8; 4];
        d.copy_from_slice(&buf[8..]);
        let rec = (u64::from_le_bytes(k), u32::from_le_bytes(d));
        if let Some(last) = self.last {
            if rec < last {
                return Err(Error::BadRecord {
                    path: self.path.clone(),
                    at: "key order".into(),
                    message: "key file is not sorted (written by another tool or corrupted)".into(),
                });
            }
        }
        self.last = Some(rec);
        Ok(Some(rec))
    }
}

/// K-way merge of the key files `paths[s]` (one per shard `s`); calls `on_run` with every run of
/// two or more equal keys as `(shard, doc)` pairs. Returns the number of records read.
pub fn merge_runs(paths: &[(usize, PathBuf)], mut on_run: impl FnMut(&[(usize, u32)])) -> Result<u64> {
    let mut readers = Vec::with_capacity(paths.len());
    let mut heap = BinaryHeap::new();
    for (i, (shard, p)) in paths.iter().enumerate() {
        let mut r = KeyReader::open(p)?;
        if let Some((k, d)) = r.next_record()? {
            heap.push(Reverse((k, *shard, d, i)));
        }
        readers.push(r);
    }
    let mut run: Vec<(usize, u32)> = Vec::new();
    let mut run_key = None;
    let mut n = 0u64;
    while let Some(Reverse((k, shard, d, i))) = heap.pop() {
        n += 1;
        if run_key != Some(k) {
            if run.len() > 1 {
                on_run(&run);
            }
            run.clear();
            run_key = Some(k);
        }
        run.push((shard, d));
        if let Some((k2, d2)) = readers[i].next_record()? {
            heap.push(Reverse((k2, paths[i].0, d2, i)));
        }
    }
    if run.len() > 1 {
        on_run(&run);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_finds_cross_shard_runs_and_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.keys");
        let b = dir.path().join("b.keys");
        write_sorted(&a, &mut vec![(5, 0), (1, 1), (9, 2)]).unwrap();
        write_sorted(&b, &mut vec![(5, 3), (2, 0), (9, 1), (9, 7)]).unwrap();
        let mut runs = Vec::new();
        let n = merge_runs(&[(0, a.clone()), (1, b.clone())], |r| runs.push(r.to_vec())).unwrap();
        assert_eq!(n, 7);
        assert_eq!(runs, vec![vec![(0, 0), (1, 3)], vec![(0, 2), (1, 1), (1, 7)]]);
        let mut bytes = std::fs::read(&a).unwrap();
        bytes.pop();
        std::fs::write(&a, &bytes).unwrap();
        let err = KeyReader::open(&a).err().unwrap().to_string();
        assert!(err.contains("a.keys") && err.contains("multiple"), "{err}");
    }
}
