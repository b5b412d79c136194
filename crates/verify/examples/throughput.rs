//! In-process grading throughput on one core: grades every `{"reference", "response"}` line of a
//! JSONL file (the `mathforge verify --input` format) with `Config::default()` on this thread and
//! prints checks per CPU second. It measures the verifier alone (no JSON output, no thread pool),
//! for machines where the full CLI is not built; `scripts/bench/verify` is the end-to-end
//! benchmark against math-verify, and writes this example's inputs with `--write-inputs DIR`.
//!
//!     python3 scripts/bench/verify --write-inputs /tmp/vb
//!     cargo run --release -p mathforge-verify --example throughput -- /tmp/vb/math.jsonl
use mathforge_verify::{grade, Config};
use std::io::BufRead;

/// CPU seconds of this process (user + system), so that a loaded machine does not count.
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: throughput FILE.jsonl")?;
    let mut rows = Vec::new();
    for (n, line) in std::io::BufReader::new(std::fs::File::open(&path)?).lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let field = |k: &str| {
            v[k].as_str().map(str::to_string).ok_or(format!("{path}:{}: no string field {k}", n + 1))
        };
        rows.push((field("reference")?, field("response")?));
    }
    let cfg = Config::default();
    let start = cpu_seconds();
    let equivalent = rows.iter().filter(|(r, s)| grade(r, s, &cfg).equivalent).count();
    let dt = cpu_seconds() - start;
    println!(
        "{path}: {} checks in {dt:.3} CPU s = {:.0} checks/s; {equivalent} equivalent",
        rows.len(),
        rows.len() as f64 / dt
    );
    Ok(())
}
