//! Sharding (`--shard I --shards N`) and completion markers.
//!
//! A stage processes the inputs whose index `i` satisfies `i % shards == shard`; when all its
//! outputs are committed it writes `<dir>/completions/<shard>` last. A rerun checks
//! [`Shard::is_done`] and skips. Markers carry a small JSON summary for merging statistics.
use crate::atomic::write_atomic;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// One shard of an `N`-way split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard's index, `0..shards`.
    pub index: usize,
    /// Total number of shards.
    pub shards: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, shards: 1 }
    }
}

impl Shard {
    /// Validate `index < shards`, `shards >= 1`.
    pub fn new(index: usize, shards: usize) -> Result<Self> {
        if shards == 0 || index >= shards {
            return Err(Error::Invalid(format!(
                "--shard {index} --shards {shards}: need 0 <= shard < shards"
            )));
        }
        Ok(Shard { index, shards })
    }

    /// Whether item `i` (e.g. the i-th input file) belongs to this shard.
    pub fn owns(&self, i: usize) -> bool {
        i % self.shards == self.index
    }

    /// Select this shard's items from a list (stable order).
    pub fn select<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items.iter().enumerate().filter(|(i, _)| self.owns(*i)).map(|(_, t)| t.clone()).collect()
    }

    /// Path of the completion marker for this shard under `stage_dir`.
    pub fn marker(&self, stage_dir: &Path) -> PathBuf {
        stage_dir.join("completions").join(format!("{:05}", self.index))
    }

    /// Whether this shard already finished in `stage_dir`.
    pub fn is_done(&self, stage_dir: &Path) -> bool {
        self.marker(stage_dir).is_file()
    }

    /// Write the marker (call last, after every output is committed).
    pub fn mark_done(&self, stage_dir: &Path, summary: &serde_json::Value) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(summary)
            .map_err(|e| Error::Invalid(format!("summary: {e}")))?;
        write_atomic(self.marker(stage_dir), &bytes)
    }

    /// Whether all `shards` markers exist (a global step may start).
    pub fn all_done(stage_dir: &Path, shards: usize) -> bool {
        (0..shards).all(|i| Shard { index: i, shards }.is_done(stage_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_and_markers() {
        assert!(Shard::new(2, 2).is_err());
        let s0 = Shard::new(0, 3).unwrap();
        let s1 = Shard::new(1, 3).unwrap();
        let items: Vec<usize> = (0..10).collect();
        assert_eq!(s0.select(&items), vec![0, 3, 6, 9]);
        assert_eq!(s1.select(&items), vec![1, 4, 7]);
        let dir = tempfile::tempdir().unwrap();
        assert!(!s0.is_done(dir.path()));
        s0.mark_done(dir.path(), &serde_json::json!({"docs": 4})).unwrap();
        assert!(s0.is_done(dir.path()));
        assert!(!Shard::all_done(dir.path(), 3));
    }
}
