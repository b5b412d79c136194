//! Prompt formats of DeepSeekMath's evaluation (paper §2.2.1 / §3.2.2 and the DeepSeek-Math
//! evaluation README):
//!
//! * `few-shot`: chain of thought for base models, 8-shot GSM8K `Q:/A:` for word problems,
//!   4-shot Minerva `Problem:/Solution:` for competition math (see [`crate::exemplars`]).
//! * `instruct`: zero-shot for instruct/RL models, DeepSeekMath's chat format
//!   `User: {q}\nPlease reason step by step, and put your final answer within \boxed{}.\n\nAssistant:`
//!   and the Chinese instruction `请通过逐步推理来解答问题，并把最终答案放置于\boxed{}中。` for Chinese sets.
//! * `pot`: program of thought: the model writes a Python program whose printed output is the
//!   answer (the harness runs it; PAL, Gao et al. 2023). The instruction sentence is ours.
//! * `tir`: tool-integrated reasoning: `Please integrate natural language reasoning with programs
//!   to solve the problem above, and put your final answer within \boxed{}.` (Chinese:
//!   `请结合自然语言和Python程序语言来解答问题，并把最终答案放置于\boxed{}中。`); generation stops at
//!   "```output" so the harness can run the code and append its output (ToRA-style, 2 rounds).
use crate::example::{Example, Lang};
use crate::exemplars::{Exemplar, CHOICE_2SHOT, GSM8K_8SHOT, MINERVA_4SHOT};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How the question is presented to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PromptFormat {
    /// Few-shot chain of thought (base models).
    FewShot,
    /// Zero-shot instruct format (instruct and RL models).
    #[default]
    Instruct,
    /// Program of thought: a Python program prints the answer.
    Pot,
    /// Tool-integrated reasoning: interleaved reasoning and executed Python.
    Tir,
}

impl PromptFormat {
    /// Every format.
    pub const ALL: [PromptFormat; 4] =
        [PromptFormat::FewShot, PromptFormat::Instruct, PromptFormat::Pot, PromptFormat::Tir];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            PromptFormat::FewShot => "few-shot",
            PromptFormat::Instruct => "instruct",
            PromptFormat::Pot => "pot",
            PromptFormat::Tir => "tir",
        }
    }

    /// Parse a CLI name.
    pub fn from_name(name: &str) -> Result<Self> {
        let norm = name.trim().to_ascii_lowercase().replace('_', "-");
        PromptFormat::ALL.into_iter().find(|f| f.name() == norm || (norm == "fewshot" && *f == PromptFormat::FewShot)).ok_or_else(|| {
            Error::UnknownName {
                what: "prompt format",
                name: name.to_string(),
                known: PromptFormat::ALL.map(|f| f.name()).join(", "),
            }
        })
    }
}

/// Which few-shot exemplar set a task uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FewShotStyle {
    /// 8-shot GSM8K `Q:/A:` (word problems).
    Gsm8k,
    /// 4-shot Minerva `Problem:/Solution:` (competition math).
    Minerva,
    /// Minerva format with multiple-choice exemplars.
    Choice,
}

/// One chat message (for chat-completion endpoints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `user`, `assistant` or `system`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// A rendered prompt: raw text for completion models, messages for chat models, and the stop
/// sequences that end a few-shot continuation or a tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Text for a completion endpoint or a local model (chat format already applied).
    pub text: String,
    /// The same request as chat messages (the chat template is the server's business).
    pub messages: Vec<ChatMessage>,
    /// Generation stops at any of these (not included in the response).
    pub stop: Vec<String>,
}

const INSTRUCT_EN: &str = "Please reason step by step, and put your final answer within \\boxed{}.";
const INSTRUCT_ZH: &str = "请通过逐步推理来解答问题，并把最终答案放置于\\boxed{}中。";
const TIR_EN: &str = "Please integrate natural language reasoning with programs to solve the problem above, and put your final answer within \\boxed{}.";
const TIR_ZH: &str = "请结合自然语言和Python程序语言来解答问题，并把最终答案放置于\\boxed{}中。";
const POT_EN: &str = "Please solve the problem above by writing a Python program in a ```python code block; the program must print the final answer and nothing else.";
const POT_ZH: &str = "请编写一个Python程序（放在```python代码块中）来解答上面的问题，程序只打印最终答案。";

/// The instruction sentence appended to the question for a zero-shot format.
pub fn instruction(format: PromptFormat, lang: Lang) -> Option<&'static str> {
    match (format, lang) {
        (PromptFormat::FewShot, _) => None,
        (PromptFormat::Instruct, Lang::En) => Some(INSTRUCT_EN),
        (PromptFormat::Instruct, Lang::Zh) => Some(INSTRUCT_ZH),
        (PromptFormat::Pot, Lang::En) => Some(POT_EN),
        (PromptFormat::Pot, Lang::Zh) => Some(POT_ZH),
        (PromptFormat::Tir, Lang::En) => Some(TIR_EN),
        (PromptFormat::Tir, Lang::Zh) => Some(TIR_ZH),
    }
}

/// The stop sequence at which tool-integrated generation pauses for code execution.
pub const TOOL_STOP: &str = "```output";

/// Render `ex` in `format`; `style` picks the exemplars for `few-shot`.
pub fn render(ex: &Example, format: PromptFormat, style: FewShotStyle) -> Prompt {
    let question = ex.question.trim();
    match instruction(format, ex.lang) {
        None => {
            let (text, stop) = few_shot(question, style);
            Prompt { messages: vec![user(&text)], text, stop }
        }
        Some(instr) => {
            let content = format!("{question}\n{instr}");
            // DeepSeekMath's SFT chat format: `User: {q}\n\nAssistant:` with the instruction as
            // the last line of the user turn.
            let text = format!("User: {content}\n\nAssistant:");
            let mut stop = vec!["\n\nUser:".to_string()];
            if format == PromptFormat::Tir {
                stop.push(TOOL_STOP.to_string());
            }
            Prompt { text, messages: vec![user(&content)], stop }
        }
    }
}

fn user(content: &str) -> ChatMessage {
    ChatMessage { role: "user".into(), content: content.to_string() }
}

fn few_shot(question: &str, style: FewShotStyle) -> (String, Vec<String>) {
    let mut text = String::new();
    match style {
        FewShotStyle::Gsm8k => {
            for Exemplar { question, solution, answer } in &GSM8K_8SHOT {
                text.push_str(&format!("Q: {question}\nA: {solution} The answer is {answer}.\n\n"));
            }
            text.push_str(&format!("Q: {question}\nA:"));
            (text, vec!["\n\nQ:".into(), "\nQ:".into()])
        }
        FewShotStyle::Minerva | FewShotStyle::Choice => {
            let shots: &[Exemplar] = if style == FewShotStyle::Minerva { &MINERVA_4SHOT } else { &CHOICE_2SHOT };
            for Exemplar { question, solution, answer } in shots {
                let final_answer = if style == FewShotStyle::Choice { format!("({answer})") } else { format!("${answer}$") };
                text.push_str(&format!(
                    "Problem:\n{question}\n\nSolution:\n{solution}\nFinal Answer: The final answer is {final_answer}. I hope it is correct.\n\n"
                ));
            }
            text.push_str(&format!("Problem:\n{question}\n\nSolution:"));
            (text, vec!["\n\nProblem:".into(), "\nProblem:".into()])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruct_format_is_the_papers() {
        let ex = Example::new("1", "What is 2+3?", "5");
        let p = render(&ex, PromptFormat::Instruct, FewShotStyle::Gsm8k);
        assert_eq!(
            p.text,
            "User: What is 2+3?\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:"
        );
        assert_eq!(p.messages[0].content, "What is 2+3?\nPlease reason step by step, and put your final answer within \\boxed{}.");
        let mut zh = ex.clone();
        zh.lang = Lang::Zh;
        assert!(render(&zh, PromptFormat::Instruct, FewShotStyle::Gsm8k).text.contains("请通过逐步推理来解答问题"));
        assert!(render(&zh, PromptFormat::Tir, FewShotStyle::Gsm8k).stop.contains(&TOOL_STOP.to_string()));
    }

    #[test]
    fn few_shot_has_all_exemplars_and_ends_with_the_question() {
        let ex = Example::new("1", "What is 2+3?", "5");
        let p = render(&ex, PromptFormat::FewShot, FewShotStyle::Gsm8k);
        assert_eq!(p.text.matches("\nA: ").count(), 8);
        assert!(p.text.ends_with("Q: What is 2+3?\nA:"));
        assert!(p.stop.contains(&"\n\nQ:".to_string()));
        let p = render(&ex, PromptFormat::FewShot, FewShotStyle::Minerva);
        assert_eq!(p.text.matches("I hope it is correct.").count(), 4);
        assert!(p.text.ends_with("Problem:\nWhat is 2+3?\n\nSolution:"));
    }

    #[test]
    fn format_names_round_trip() {
        for f in PromptFormat::ALL {
            assert_eq!(PromptFormat::from_name(f.name()).unwrap(), f);
        }
        assert!(PromptFormat::from_name("cot").unwrap_err().to_string().contains("few-shot"));
    }
}
