//! Grader configuration. The default is the lenient grader used for evaluation; [`Config::strict`]
//! is meant for RL rewards, where a response must commit to an explicit final answer
//! (DeepSeekMath §4.1 rewards only the final answer; a "last number" fallback would reward
//! rambling).
use serde::{Deserialize, Serialize};

/// How the verifier extracts and compares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Require an explicit final-answer marker (`\boxed{}`, "The answer is", `####`, ...); no
    /// last-number fallback.
    pub strict: bool,
    /// Deterministic work limit for one comparison (parser tokens, arithmetic steps, big-number
    /// bits). Exceeding it makes the answer "not equivalent" with a reason: never a hang.
    pub step_budget: u64,
    /// Relative tolerance for comparisons that must fall back to floating point (irrational
    /// values such as `\sqrt{2}` vs `2^{1/2}`).
    pub rel_tol: f64,
    /// Number of random points for identity tests of expressions with variables.
    pub points: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self::lenient()
    }
}

impl Config {
    /// The RL-reward grader: explicit final-answer marker required.
    pub fn strict() -> Self {
        Self { strict: true, ..Self::lenient() }
    }

    /// The evaluation grader: falls back to the last number of a response.
    pub fn lenient() -> Self {
        Self { strict: false, step_budget: 200_000, rel_tol: 1e-9, points: 5 }
    }
}
