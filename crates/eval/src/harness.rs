//! The evaluation loop: prompts → backend → (tool rounds / program execution) → grades →
//! metrics. Libraries never print: progress goes to a callback, results are returned.
//!
//! Per example, `n` samples are requested at once. With `--prompt-format tir`, each sample that
//! stops at "```output" with a closed code block and no `\boxed{}` answer yet gets its code run
//! ([`crate::python`]), the output block appended, and generation continued, for at most
//! `tool_rounds` (2) executions. With `pot`, the program in the response is run and its last
//! printed line is the answer that is graded.
use crate::backend::{apply_stop, Backend, GenRequest};
use crate::metrics::{majority, pass_at_k};
use crate::python::{extract_tool_code, has_final_answer, pot_program, run_python, tool_output, ExitKind, PythonConfig};
use crate::report::{GroupRow, Summary};
use crate::Result;
use mathforge_tasks::{Example, PromptFormat, Task};
use mathforge_verify::Config;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// Evaluation settings (the library side of `mathforge eval`'s flags).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Prompt format.
    pub prompt_format: PromptFormat,
    /// Samples per problem (`--n`); 1 = greedy.
    pub n: usize,
    /// Sampling temperature; 0 means greedy.
    pub temperature: f32,
    /// Top-p (1 = off).
    pub top_p: f32,
    /// Completion token limit.
    pub max_tokens: usize,
    /// Evaluate only the first N problems.
    pub limit: Option<usize>,
    /// Sampling seed.
    pub seed: u64,
    /// At most this many code executions per sample in `tir` mode (DeepSeek-Math uses 2).
    pub tool_rounds: usize,
    /// Python sandbox limits.
    pub python: PythonConfig,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            prompt_format: PromptFormat::Instruct,
            n: 1,
            temperature: 0.0,
            top_p: 1.0,
            // DeepSeek-Math's evaluation generates up to 1024 new tokens per round.
            max_tokens: 1024,
            limit: None,
            seed: 0,
            tool_rounds: 2,
            python: PythonConfig::default(),
        }
    }
}

/// One graded sample (a line of `samples.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Example id.
    pub id: String,
    /// Sample index within the example (0-based).
    pub sample: usize,
    /// Subject, when the benchmark has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Level, when the benchmark has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Reference answer.
    pub reference: String,
    /// The full response (tool outputs included).
    pub response: String,
    /// The answer the grader extracted.
    pub extracted: Option<String>,
    /// The verdict.
    pub correct: bool,
    /// Why (grader rule, or the failure).
    pub reason: String,
    /// Set when generation failed (endpoint error, missing response): counted wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// Program-of-thought: what the program printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_output: Option<String>,
    /// Tool-integrated: code executions in this sample.
    #[serde(default)]
    pub tool_calls: usize,
}

/// Progress report for the callback.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Problems finished.
    pub done: usize,
    /// Problems in total.
    pub total: usize,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct EvalRun {
    /// Every sample, grouped by example, in example order.
    pub samples: Vec<Sample>,
    /// Metrics.
    pub summary: Summary,
}

/// A sample while it is being generated.
struct Draft {
    ex: usize,
    sample: usize,
    text: String,
    failed: Option<String>,
    tool_calls: usize,
}

/// Evaluate `task` with `backend`.
pub fn evaluate(
    task: &dyn Task,
    backend: &dyn Backend,
    cfg: &EvalConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<EvalRun> {
    if cfg.n == 0 {
        return Err(crate::Error::Invalid("--n must be at least 1".into()));
    }
    let start = Instant::now();
    let all = task.examples();
    let examples: &[Example] = match cfg.limit {
        Some(l) => &all[..l.min(all.len())],
        None => all,
    };
    let total = examples.len();
    progress(Progress { done: 0, total });
    let chunk = backend.batch_size().max(1);
    let mut samples = Vec::with_capacity(total * cfg.n);
    for (ci, exs) in examples.chunks(chunk).enumerate() {
        let base = ci * chunk;
        let prompts: Vec<_> = exs.iter().map(|ex| task.prompt(ex, cfg.prompt_format)).collect();
        let requests: Vec<GenRequest> = exs
            .iter()
            .zip(&prompts)
            .enumerate()
            .map(|(i, (ex, p))| GenRequest {
                id: ex.id.clone(),
                sample: 0,
                prompt: p.clone(),
                continuation: String::new(),
                n: cfg.n,
                temperature: cfg.temperature,
                top_p: cfg.top_p,
                max_tokens: cfg.max_tokens,
                seed: cfg.seed.wrapping_add((base + i) as u64),
            })
            .collect();
        let outcomes = backend.generate(&requests);
        let mut drafts = Vec::with_capacity(exs.len() * cfg.n);
        for (i, out) in outcomes.into_iter().enumerate() {
            let stop = &prompts[i].stop;
            match out {
                Ok(texts) => {
                    for (s, t) in texts.into_iter().enumerate().take(cfg.n) {
                        drafts.push(Draft { ex: i, sample: s, text: apply_stop(&t, stop), failed: None, tool_calls: 0 });
                    }
                }
                Err(e) => {
                    for s in 0..cfg.n {
                        drafts.push(Draft { ex: i, sample: s, text: String::new(), failed: Some(e.clone()), tool_calls: 0 });
                    }
                }
            }
        }
        if cfg.prompt_format == PromptFormat::Tir && backend.supports_continuation() {
            tool_rounds(backend, cfg, &requests, &prompts, &mut drafts);
        }
        let graded: Vec<Sample> =
            drafts.par_iter().map(|d| grade_draft(task, &exs[d.ex], d, cfg)).collect();
        samples.extend(graded);
        progress(Progress { done: (base + exs.len()).min(total), total });
    }
    let summary = summarize(task.name(), &backend.describe(), cfg, examples, &samples, start.elapsed().as_secs_f64());
    Ok(EvalRun { samples, summary })
}

/// Run code and continue generation for unfinished tool-integrated samples.
fn tool_rounds(
    backend: &dyn Backend,
    cfg: &EvalConfig,
    requests: &[GenRequest],
    prompts: &[mathforge_tasks::Prompt],
    drafts: &mut [Draft],
) {
    for _round in 0..cfg.tool_rounds {
        let pending: Vec<usize> = drafts
            .iter()
            .enumerate()
            .filter(|(_, d)| d.failed.is_none() && !has_final_answer(&d.text) && extract_tool_code(&d.text).is_some())
            .map(|(i, _)| i)
            .collect();
        if pending.is_empty() {
            return;
        }
        let outputs: Vec<String> = pending
            .par_iter()
            .map(|&i| {
                let code = extract_tool_code(&drafts[i].text).unwrap_or_default();
                tool_output(&run_python(&code, &cfg.python))
            })
            .collect();
        let mut cont = Vec::with_capacity(pending.len());
        for (&i, out) in pending.iter().zip(&outputs) {
            let d = &mut drafts[i];
            d.text = format!("{}\n```output\n{}\n```\n", d.text.trim_end(), out.trim());
            d.tool_calls += 1;
            let mut r = requests[d.ex].clone();
            r.n = 1;
            r.sample = d.sample;
            r.continuation = d.text.clone();
            r.seed = r.seed.wrapping_add(1000 * (d.sample as u64 + 1) + d.tool_calls as u64);
            cont.push(r);
        }
        let more = backend.generate(&cont);
        for (&i, out) in pending.iter().zip(more) {
            let d = &mut drafts[i];
            match out {
                Ok(t) => {
                    if let Some(t) = t.into_iter().next() {
                        d.text.push_str(&apply_stop(&t, &prompts[d.ex].stop));
                    }
                }
                // The transcript so far is kept and graded; the failure is recorded.
                Err(e) => d.failed = Some(format!("tool round {}: {e}", d.tool_calls)),
            }
        }
    }
}

fn grade_draft(task: &dyn Task, ex: &Example, d: &Draft, cfg: &EvalConfig) -> Sample {
    let mut s = Sample {
        id: ex.id.clone(),
        sample: d.sample,
        subject: ex.subject.clone(),
        level: ex.level.clone(),
        reference: ex.reference.clone(),
        response: d.text.clone(),
        extracted: None,
        correct: false,
        reason: String::new(),
        failed: d.failed.clone(),
        program_output: None,
        tool_calls: d.tool_calls,
    };
    if let Some(f) = &d.failed {
        if d.text.is_empty() {
            s.reason = format!("generation failed: {f}");
            return s;
        }
    }
    let graded_text = if cfg.prompt_format == PromptFormat::Pot {
        let exec = run_python(&pot_program(&d.text), &cfg.python);
        let last = exec.stdout.lines().rev().map(str::trim).find(|l| !l.is_empty()).map(str::to_string);
        match (&exec.exit, last) {
            (_, Some(out)) => {
                s.program_output = Some(out.clone());
                format!("The answer is \\boxed{{{out}}}")
            }
            (ExitKind::Ok, None) => {
                s.reason = "program printed nothing".into();
                return s;
            }
            (_, None) => {
                s.reason = tool_output(&exec);
                return s;
            }
        }
    } else {
        d.text.clone()
    };
    let g = task.grade(ex, &graded_text);
    s.extracted = g.extracted;
    s.correct = g.equivalent;
    s.reason = g.reason;
    s
}

/// Per-example aggregates used by the summary and the breakdowns.
struct PerExample<'a> {
    ex: &'a Example,
    first_correct: bool,
    correct: usize,
    n: usize,
    maj_correct: bool,
}

fn per_example<'a>(examples: &'a [Example], samples: &[Sample], n: usize) -> Vec<PerExample<'a>> {
    let cfg = Config::lenient();
    let mut by_id: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by_id.entry(s.id.as_str()).or_default().push(s);
    }
    examples
        .iter()
        .map(|ex| {
            let ss = by_id.get(ex.id.as_str()).cloned().unwrap_or_default();
            let extracted: Vec<Option<&str>> = ss.iter().map(|s| s.extracted.as_deref()).collect();
            let maj_correct = majority(&extracted, &cfg).is_some_and(|v| ss[v.representative].correct);
            PerExample {
                ex,
                first_correct: ss.first().is_some_and(|s| s.correct),
                correct: ss.iter().filter(|s| s.correct).count(),
                n: ss.len().max(n),
                maj_correct,
            }
        })
        .collect()
}

/// The k values reported for pass@k: 1, 2, 4, ... up to n, and n itself.
pub fn ks(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = std::iter::successors(Some(1usize), |k| k.checked_mul(2)).take_while(|&k| k <= n).collect();
    if v.last() != Some(&n) {
        v.push(n);
    }
    v
}

fn row(name: String, rows: &[&PerExample<'_>], n: usize) -> GroupRow {
    let m = rows.len().max(1) as f64;
    GroupRow {
        name,
        examples: rows.len(),
        accuracy: rows.iter().filter(|r| r.first_correct).count() as f64 / m,
        maj_at_k: (n > 1).then(|| rows.iter().filter(|r| r.maj_correct).count() as f64 / m),
        pass_at_k: (n > 1).then(|| rows.iter().map(|r| pass_at_k(r.n, r.correct, n)).sum::<f64>() / m),
    }
}

fn summarize(task: &str, backend: &str, cfg: &EvalConfig, examples: &[Example], samples: &[Sample], seconds: f64) -> Summary {
    let n = cfg.n;
    let per = per_example(examples, samples, n);
    let all: Vec<&PerExample<'_>> = per.iter().collect();
    let m = all.len().max(1) as f64;
    let mut pass = BTreeMap::new();
    for k in ks(n) {
        pass.insert(format!("pass@{k}"), all.iter().map(|r| pass_at_k(r.n, r.correct, k)).sum::<f64>() / m);
    }
    let group = |key: fn(&Example) -> Option<&String>| -> Vec<GroupRow> {
        let mut groups: BTreeMap<String, Vec<&PerExample<'_>>> = BTreeMap::new();
        for r in &all {
            if let Some(k) = key(r.ex) {
                groups.entry(k.clone()).or_default().push(r);
            }
        }
        groups.into_iter().map(|(k, rows)| row(k, &rows, n)).collect()
    };
    Summary {
        task: task.to_string(),
        backend: backend.to_string(),
        prompt_format: cfg.prompt_format.name().to_string(),
        n,
        temperature: cfg.temperature,
        examples: all.len(),
        samples: samples.len(),
        failed_samples: samples.iter().filter(|s| s.failed.is_some()).count(),
        no_answer_samples: samples.iter().filter(|s| s.extracted.is_none()).count(),
        tool_calls: samples.iter().map(|s| s.tool_calls).sum(),
        accuracy: all.iter().filter(|r| r.first_correct).count() as f64 / m,
        sample_accuracy: samples.iter().filter(|s| s.correct).count() as f64 / samples.len().max(1) as f64,
        maj_at_k: (n > 1).then(|| all.iter().filter(|r| r.maj_correct).count() as f64 / m),
        pass_at_k: pass,
        by_subject: group(|e| e.subject.as_ref()),
        by_level: group(|e| e.level.as_ref()),
        skipped_records: Vec::new(),
        seconds,
    }
}
