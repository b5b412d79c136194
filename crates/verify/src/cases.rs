//! Labelled grading cases (`crates/verify/testdata/*.toml`) and the accuracy report built from
//! them. One file format drives the unit tests, the CLI report (`mathforge verify --cases DIR`)
//! and `docs/verify.md`, in the style of the regex crate's `testdata/*.toml`.
//!
//! Format (`#[serde(deny_unknown_fields)]`):
//! ```toml
//! [[test]]
//! name = "frac-vs-decimal"     # unique within the file
//! kind = "decimal"             # the category the report groups by
//! reference = "\\frac{1}{2}"   # a final answer
//! response = "The answer is $0.5$."  # a full response (extraction included)
//! expected = true              # mathematical truth, not what some grader says
//! strict = false               # optional: grade with Config::strict()
//! xfail = "why"                # optional: a known wrong verdict, kept visible in the report
//! ```
use crate::{grade, Config, Error, Grade, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One labelled case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique name within its file.
    pub name: String,
    /// Category for the report.
    pub kind: String,
    /// Reference final answer.
    pub reference: String,
    /// Full response.
    pub response: String,
    /// Whether the response's answer is mathematically equal to the reference.
    pub expected: bool,
    /// Grade in strict mode.
    #[serde(default)]
    pub strict: bool,
    /// Known wrong verdict, with the reason.
    #[serde(default)]
    pub xfail: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    test: Vec<Case>,
}

/// Read every `*.toml` case file of a directory (sorted by file name), with the file stem as a
/// name prefix (`parse/mixed-number`).
pub fn load_dir(dir: &Path) -> Result<Vec<Case>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Msg(format!("{}: {e}", dir.display())))?;
    let mut paths: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text =
            std::fs::read_to_string(&p).map_err(|e| Error::Msg(format!("{}: {e}", p.display())))?;
        let f: File =
            toml::from_str(&text).map_err(|e| Error::Msg(format!("{}: {e}", p.display())))?;
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        for mut c in f.test {
            c.name = format!("{stem}/{}", c.name);
            out.push(c);
        }
    }
    Ok(out)
}

/// A case with the grader's verdict.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// What [`grade`] said.
    pub grade: Grade,
}

impl Outcome {
    /// Whether the verdict equals the label.
    pub fn correct(&self) -> bool {
        self.grade.equivalent == self.case.expected
    }
}

/// Grade every case.
pub fn run(cases: &[Case]) -> Vec<Outcome> {
    cases
        .iter()
        .map(|c| {
            let cfg = if c.strict { Config::strict() } else { Config::lenient() };
            Outcome { case: c.clone(), grade: grade(&c.reference, &c.response, &cfg) }
        })
        .collect()
}

/// Per-kind counts.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Cases.
    pub n: usize,
    /// Labelled not equivalent.
    pub negatives: usize,
    /// Correct verdicts.
    pub correct: usize,
    /// Graded equivalent but not.
    pub false_pos: usize,
    /// Graded not equivalent but equal.
    pub false_neg: usize,
}

/// Counts per kind, plus the total under `"all"`.
pub fn tally(outcomes: &[Outcome]) -> BTreeMap<String, Tally> {
    let mut m: BTreeMap<String, Tally> = BTreeMap::new();
    for o in outcomes {
        for k in [o.case.kind.as_str(), "all"] {
            let t = m.entry(k.to_string()).or_default();
            t.n += 1;
            t.negatives += usize::from(!o.case.expected);
            t.correct += usize::from(o.correct());
            t.false_pos += usize::from(o.grade.equivalent && !o.case.expected);
            t.false_neg += usize::from(!o.grade.equivalent && o.case.expected);
        }
    }
    m
}

/// The report as a markdown table (kind, cases, not-equivalent share, accuracy, FP, FN), then
/// the list of wrong verdicts.
pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut s = String::from("| kind | cases | not equivalent | accuracy | false pos. | false neg. |\n|---|---:|---:|---:|---:|---:|\n");
    let t = tally(outcomes);
    let mut rows: Vec<_> = t.iter().filter(|(k, _)| k.as_str() != "all").collect();
    rows.extend(t.get_key_value("all"));
    for (k, v) in rows {
        let k = if k == "all" { "**all**".to_string() } else { k.clone() };
        s.push_str(&format!(
            "| {k} | {} | {} | {:.1}% | {} | {} |\n",
            v.n,
            v.negatives,
            100.0 * v.correct as f64 / v.n.max(1) as f64,
            v.false_pos,
            v.false_neg
        ));
    }
    let wrong: Vec<_> = outcomes.iter().filter(|o| !o.correct()).collect();
    if !wrong.is_empty() {
        s.push_str("\nWrong verdicts:\n\n");
        for o in wrong {
            s.push_str(&format!(
                "- `{}`: reference `{}`, extracted `{}`, expected {}, got {} ({}){}\n",
                o.case.name,
                o.case.reference,
                o.grade.extracted.as_deref().unwrap_or("-"),
                o.case.expected,
                o.grade.equivalent,
                o.grade.reason,
                o.case.xfail.as_deref().map(|x| format!("; known: {x}")).unwrap_or_default()
            ));
        }
    }
    s
}
