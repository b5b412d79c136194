//! Shared IO for mathforge.
//!
//! Three small things every stage needs, kept out of a "utils" grab bag:
//!
//! * [`jsonl`]: stream JSON Lines from plain, gzip (`.gz`) or zstd (`.zst`) files with
//!   1-based line numbers, so a bad record can be reported as `file:line: reason` or skipped
//!   and counted; and write JSONL (optionally compressed) atomically.
//! * [`atomic`]: write a file to a temporary sibling and rename it into place, so a crash or
//!   Ctrl-C never leaves a half-written file that looks complete.
//! * [`shard`]: `--shard I --shards N` partitioning and completion markers written last, so a
//!   rerun skips finished shards (datatrove's `completions/<rank>` idea).
//!
//! ```
//! use mathforge_io::{atomic::AtomicFile, jsonl};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("out.jsonl.gz");
//! let mut w = jsonl::JsonlWriter::create(&path).unwrap();
//! w.write(&serde_json::json!({"text": "hello"})).unwrap();
//! w.finish().unwrap();
//! let rows: Vec<_> = jsonl::JsonlReader::open(&path).unwrap().collect();
//! assert_eq!(rows.len(), 1);
//! # let _ = AtomicFile::create(dir.path().join("x"));
//! ```
#![deny(missing_docs)]

pub mod atomic;
pub mod error;
pub mod jsonl;
pub mod shard;
pub mod shared;

pub use error::{Error, Result};
