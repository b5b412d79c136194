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
    /// Working precision (bits, 256..=4096) for values outside ℚ(i) (`\sqrt{2}` vs `2^{1/2}`),
    /// which are computed at this precision and at half of it; two values are equal when they
    /// agree to all but 32 of these bits, or when their difference shrinks like rounding noise
    /// as the precision grows (src/mp.rs).
    pub precision_bits: usize,
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
        Self { strict: false, step_budget: 200_000, precision_bits: 256, points: 5 }
    }
}
