//! Self-check on benchmark files: grade each benchmark's own reference solution against its
//! reference answer (issue #3 "Quality": GSM8K test 100%, MATH test ≥ 99.8%, MATH-500 100%).
//! A grader that cannot recognise the dataset's own solutions as correct would hand false
//! negatives to every model it grades.
//!
//! Reference answers are taken as a careful user would: GSM8K, the text after `####` (commas
//! removed, per the dataset README); MATH, the last `\boxed{}` of the solution (Hendrycks et al.
//! 2021); MATH-500, its `answer` field (PRM800K).
use crate::{grade, Config, Error, Result};
use serde::Serialize;
use std::path::Path;

/// Which benchmark a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Benchmark {
    /// `question`, `answer` ending in `#### N`.
    Gsm8k,
    /// `problem`, `solution` with a final `\boxed{}`.
    Math,
    /// `problem`, `solution`, `answer`.
    Math500,
}

/// A disagreement.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// 1-based line number.
    pub line: u64,
    /// Reference answer.
    pub reference: String,
    /// What was extracted from the solution.
    pub extracted: Option<String>,
    /// The grader's reason.
    pub reason: String,
}

/// Result of a self-check.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The benchmark.
    pub benchmark: Benchmark,
    /// Records graded.
    pub n: usize,
    /// Graded equivalent.
    pub correct: usize,
    /// The others.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Share graded equivalent.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.n.max(1) as f64
    }
}

fn field<'a>(v: &'a serde_json::Value, name: &str, path: &Path, line: u64) -> Result<&'a str> {
    v.get(name).and_then(|x| x.as_str()).ok_or_else(|| {
        Error::Msg(format!("{}:{line}: missing string field `{name}`", path.display()))
    })
}

/// The last `\boxed{}` of a MATH solution.
pub fn last_boxed(solution: &str) -> Option<String> {
    let p = solution.rfind("\\boxed").or_else(|| solution.rfind("\\fbox"))?;
    let open = solution[p..].find('{')? + p;
    crate::extract::brace_group(solution, open).map(|(s, _)| s.trim().to_string())
}

/// Grade every record of `path` (kind detected from the fields of its first line).
pub fn run(path: &Path, cfg: &Config) -> Result<Report> {
    let reader =
        mathforge_io::jsonl::JsonlReader::open(path).map_err(|e| Error::Msg(e.to_string()))?;
    let mut rep = Report { benchmark: Benchmark::Gsm8k, n: 0, correct: 0, failures: vec![] };
    for rec in reader {
        let v = rec.value.map_err(|e| Error::Msg(e.to_string()))?;
        let bench = if v.get("solution").is_none() {
            Benchmark::Gsm8k
        } else if v.get("answer").is_some() {
            Benchmark::Math500
        } else {
            Benchmark::Math
        };
        rep.benchmark = bench;
        let (reference, response) = match bench {
            Benchmark::Gsm8k => {
                let ans = field(&v, "answer", path, rec.line)?;
                let Some(p) = ans.rfind("####") else {
                    return Err(Error::Msg(format!(
                        "{}:{}: `answer` has no ####",
                        path.display(),
                        rec.line
                    )));
                };
                (ans[p + 4..].trim().replace(',', ""), ans.to_string())
            }
            Benchmark::Math => {
                let sol = field(&v, "solution", path, rec.line)?;
                let Some(r) = last_boxed(sol) else {
                    return Err(Error::Msg(format!(
                        "{}:{}: solution has no \\boxed{{}}",
                        path.display(),
                        rec.line
                    )));
                };
                (r, sol.to_string())
            }
            Benchmark::Math500 => (
                field(&v, "answer", path, rec.line)?.to_string(),
                field(&v, "solution", path, rec.line)?.to_string(),
            ),
        };
        let g = grade(&reference, &response, cfg);
        rep.n += 1;
        if g.equivalent {
            rep.correct += 1;
        } else {
            rep.failures.push(Failure {
                line: rec.line,
                reference,
                extracted: g.extracted,
                reason: g.reason,
            });
        }
    }
    Ok(rep)
}
