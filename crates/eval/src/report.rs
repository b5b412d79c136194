//! Run outputs: `samples.jsonl` (every sample with its extracted answer and verdict),
//! `summary.json` and `summary.md` (a markdown table with the breakdown by subject and level).
//! All files are written atomically (temp file + rename).
use crate::harness::EvalRun;
use crate::Result;
use mathforge_io::atomic::write_atomic;
use mathforge_io::jsonl::JsonlWriter;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Metrics of one group (a subject or a level).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRow {
    /// Subject or level.
    pub name: String,
    /// Problems in the group.
    pub examples: usize,
    /// Accuracy of the first sample (greedy when n=1).
    pub accuracy: f64,
    /// maj@n (n > 1 only).
    pub maj_at_k: Option<f64>,
    /// pass@n (n > 1 only).
    pub pass_at_k: Option<f64>,
}

/// The metrics of a run (`summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Task name.
    pub task: String,
    /// Backend description.
    pub backend: String,
    /// Prompt format.
    pub prompt_format: String,
    /// Samples per problem.
    pub n: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Problems evaluated.
    pub examples: usize,
    /// Samples graded.
    pub samples: usize,
    /// Samples whose generation failed (counted wrong).
    pub failed_samples: usize,
    /// Samples with no extractable answer.
    pub no_answer_samples: usize,
    /// Python executions in tool-integrated mode.
    pub tool_calls: usize,
    /// Accuracy of sample 0 of each problem (greedy accuracy when n=1, temperature 0).
    pub accuracy: f64,
    /// Fraction of all samples that are correct (mean pass@1 over samples).
    pub sample_accuracy: f64,
    /// maj@n over equivalence classes (n > 1).
    pub maj_at_k: Option<f64>,
    /// Unbiased pass@k for k = 1, 2, 4, ..., n.
    pub pass_at_k: BTreeMap<String, f64>,
    /// Breakdown by subject.
    pub by_subject: Vec<GroupRow>,
    /// Breakdown by level.
    pub by_level: Vec<GroupRow>,
    /// Benchmark / response records skipped with `--skip-bad`, with reasons.
    pub skipped_records: Vec<String>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

impl Summary {
    /// The markdown report.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Evaluation: {}\n", self.task);
        let _ = writeln!(
            s,
            "Backend `{}`, prompt format `{}`, n = {}, temperature = {}, {} problems, {} samples ({} failed, {} without an answer), {:.1} s.\n",
            self.backend, self.prompt_format, self.n, self.temperature, self.examples, self.samples, self.failed_samples,
            self.no_answer_samples, self.seconds
        );
        let mut head = vec!["metric".to_string(), "value (%)".to_string()];
        let _ = writeln!(s, "| {} |\n|---|---|", head.join(" | "));
        let greedy = if self.n == 1 && self.temperature == 0.0 { "greedy accuracy" } else { "accuracy (sample 0)" };
        let _ = writeln!(s, "| {greedy} | {} |", pct(self.accuracy));
        if self.n > 1 {
            let _ = writeln!(s, "| sample accuracy | {} |", pct(self.sample_accuracy));
            if let Some(m) = self.maj_at_k {
                let _ = writeln!(s, "| maj@{} | {} |", self.n, pct(m));
            }
            for (k, v) in &self.pass_at_k {
                let _ = writeln!(s, "| {k} | {} |", pct(*v));
            }
        }
        if self.tool_calls > 0 {
            let _ = writeln!(s, "| tool calls | {} |", self.tool_calls);
        }
        for (title, rows) in [("subject", &self.by_subject), ("level", &self.by_level)] {
            if rows.is_empty() {
                continue;
            }
            head = vec![title.to_string(), "problems".into(), "accuracy".into()];
            if self.n > 1 {
                head.push(format!("maj@{}", self.n));
                head.push(format!("pass@{}", self.n));
            }
            let _ = writeln!(s, "\n## By {title}\n\n| {} |\n|{}", head.join(" | "), "---|".repeat(head.len()));
            for r in rows {
                let mut cells = vec![r.name.clone(), r.examples.to_string(), pct(r.accuracy)];
                if self.n > 1 {
                    cells.push(r.maj_at_k.map_or("-".into(), pct));
                    cells.push(r.pass_at_k.map_or("-".into(), pct));
                }
                let _ = writeln!(s, "| {} |", cells.join(" | "));
            }
        }
        if !self.skipped_records.is_empty() {
            let _ = writeln!(s, "\n## Skipped records ({})\n", self.skipped_records.len());
            for r in self.skipped_records.iter().take(20) {
                let _ = writeln!(s, "- {r}");
            }
        }
        s
    }
}

/// Write `samples.jsonl`, `summary.json` and `summary.md` into `dir` (created if missing).
pub fn write_run(dir: &Path, run: &EvalRun) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::Fs { path: dir.to_path_buf(), source: e })?;
    let mut w = JsonlWriter::create(dir.join("samples.jsonl"))?;
    for s in &run.samples {
        w.write(s)?;
    }
    w.finish()?;
    let json = serde_json::to_vec_pretty(&run.summary).map_err(|e| crate::Error::Invalid(format!("summary: {e}")))?;
    write_atomic(dir.join("summary.json"), &json)?;
    write_atomic(dir.join("summary.md"), run.summary.markdown().as_bytes())?;
    Ok(())
}
