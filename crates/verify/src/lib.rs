//! Answer verification: extraction of a final answer from a response, parsing of LaTeX and plain
//! text into expressions, and mathematical equivalence. It is both the GRPO reward and the
//! benchmark grader (DeepSeekMath §4: the reward of GRPO comes from the same check that grades, so
//! RL optimises what evaluation measures).
//!
//! The flow is `response --extract--> answer string --parse--> Expr --compare--> bool`:
//! - [`extract_answer`] finds the final answer (`\boxed{}`, Minerva's "The final answer is",
//!   GSM8K's `####`, "The answer is", `答案是`, a choice letter, or the last number unless strict);
//! - [`equivalent`] decides whether two answer strings denote the same mathematical object
//!   (exact rational arithmetic first, then exact identity tests at random rational points, then
//!   arbitrary-precision floating point, respecting the precision an answer states);
//! - [`grade`] does both and says why.
//!
//! Everything is deterministic and bounded by [`Config::step_budget`]: no timeouts, no global
//! state, no panics on any input (property tests and a fuzz target check this).
//!
//! ```
//! use mathforge_verify::{grade, Config};
//! let g = grade("\\frac{1}{2}", "So the answer is $\\boxed{0.5}$.", &Config::default());
//! assert!(g.equivalent);
//! assert_eq!(g.extracted.as_deref(), Some("0.5"));
//! ```
#![deny(missing_docs)]

mod budget;
pub mod cases;
mod compare;
mod config;
pub mod error;
mod eval;
mod mp;
mod expr;
mod extract;
mod normalize;
mod parse;
pub mod selfcheck;

pub use config::Config;
pub use error::{Error, Result};
pub use expr::{Const, Expr, RelOp};
pub use parse::{parse_answer, parse_canonical};

use serde::Serialize;

/// The verdict on one response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grade {
    /// Whether the extracted answer is mathematically equal to the reference.
    pub equivalent: bool,
    /// The final answer found in the response, if any.
    pub extracted: Option<String>,
    /// Why: which rule decided (for audits of rewards and grades).
    pub reason: String,
}

/// Grade `response` (a full model response) against `reference` (a final answer).
pub fn grade(reference: &str, response: &str, cfg: &Config) -> Grade {
    let found = extract::extract(response, cfg);
    let Some(found) = found else {
        let why = if cfg.strict { "no final-answer marker (strict)" } else { "no answer found" };
        return Grade { equivalent: false, extracted: None, reason: why.into() };
    };
    if let Some(h) = extract::hedge(&found.answer) {
        return Grade {
            equivalent: false,
            extracted: Some(found.answer),
            reason: format!("hedged answer ({h})"),
        };
    }
    if found.alternatives.iter().any(|alt| !compare::compare(alt, &found.answer, cfg).equal) {
        return Grade {
            equivalent: false,
            extracted: Some(found.answer),
            reason: "hedged answer (several different final answers)".into(),
        };
    }
    let verdict = compare::compare(reference, &found.answer, cfg);
    Grade {
        equivalent: verdict.equal,
        reason: format!("{} [{}]", verdict.reason, found.rule),
        extracted: Some(found.answer),
    }
}

/// The final answer string of a response, or `None` when there is none (in strict mode: when no
/// explicit final-answer marker is present).
pub fn extract_answer(response: &str, cfg: &Config) -> Option<String> {
    extract::extract(response, cfg).map(|f| f.answer)
}

/// Whether two already-extracted answers denote the same mathematical object. `a` is taken as
/// the reference (its variables are protected from unit stripping; its percent sign admits the
/// bare number).
pub fn equivalent(a: &str, b: &str, cfg: &Config) -> bool {
    compare::compare(a, b, cfg).equal
}

/// Like [`equivalent`] but also says which rule decided.
pub fn explain(a: &str, b: &str, cfg: &Config) -> (bool, String) {
    let v = compare::compare(a, b, cfg);
    (v.equal, v.reason)
}

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn public_types_are_send_sync() {
        assert_send_sync::<super::Config>();
        assert_send_sync::<super::Grade>();
        assert_send_sync::<super::Expr>();
    }
}
