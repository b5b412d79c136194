//! One problem of a task: question, reference answer and the metadata evaluation breaks down by.
use serde::{Deserialize, Serialize};

/// Language of a problem: decides the instruction sentence (DeepSeekMath evaluation README:
/// Chinese sets get a Chinese instruction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Chinese.
    Zh,
}

/// A problem with its reference answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Stable id (from the record, or `<bench>-<line>`).
    pub id: String,
    /// The problem statement as shown to the model (options included for multiple choice).
    pub question: String,
    /// The reference final answer (a letter for multiple choice).
    pub reference: String,
    /// A worked reference solution, when the benchmark has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
    /// Subject / topic for the breakdown (MATH `type`, MMLU `topic`, CMATH `grade`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Difficulty level for the breakdown (MATH `Level 3` is stored as `3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Language of the problem.
    #[serde(default)]
    pub lang: Lang,
    /// True when the reference is a choice letter (A-D).
    #[serde(default)]
    pub multiple_choice: bool,
}

impl Example {
    /// A plain English example (used by generators and tests).
    pub fn new(id: impl Into<String>, question: impl Into<String>, reference: impl Into<String>) -> Self {
        Example {
            id: id.into(),
            question: question.into(),
            reference: reference.into(),
            solution: None,
            subject: None,
            level: None,
            lang: Lang::En,
            multiple_choice: false,
        }
    }
}
