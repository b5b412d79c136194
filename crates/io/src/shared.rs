//! Locating `../shared/data` for tests and self-checks through `MATHFORGE_SHARED_DATA`.
//!
//! Convention (DEVELOPERS.md): when the variable is set and a file is missing the test fails;
//! when it is unset the test is skipped with a printed reason.
use std::path::PathBuf;

/// The shared-data file `rel` (e.g. `benchmarks/gsm8k_test.jsonl`), or `None` when
/// `MATHFORGE_SHARED_DATA` is unset (a skip reason naming `test` is printed to stderr).
///
/// # Panics
/// When the variable is set but the file does not exist: that is a test failure by design.
pub fn shared_data_file(test: &str, rel: &str) -> Option<PathBuf> {
    let Some(root) = std::env::var_os("MATHFORGE_SHARED_DATA") else {
        eprintln!("skipping {test}: MATHFORGE_SHARED_DATA is not set");
        return None;
    };
    let path = PathBuf::from(root).join(rel);
    assert!(path.exists(), "{test}: MATHFORGE_SHARED_DATA is set but {} is missing", path.display());
    Some(path)
}
