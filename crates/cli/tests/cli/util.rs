//! Helpers: run the built `mathforge` binary and capture its output.
#![allow(dead_code)]
use std::process::{Command, Output};

/// Path of the binary under test (built by cargo for integration tests).
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mathforge"))
}

/// Run with args; returns the output (does not assert success).
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("spawn mathforge")
}

/// Run and assert exit 0; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "mathforge {:?} failed: {}\n{}",
        args,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// `MATHFORGE_SHARED_DATA` as a path, or `None` (with a printed skip reason).
pub fn shared_data(test: &str) -> Option<std::path::PathBuf> {
    match std::env::var_os("MATHFORGE_SHARED_DATA") {
        Some(p) => Some(std::path::PathBuf::from(p)),
        None => {
            eprintln!("skipping {test}: MATHFORGE_SHARED_DATA is not set");
            None
        }
    }
}
