//! Where problems come from: benchmark readers (GSM8K, MATH, MATH-500, CMATH, MGSM-zh, Gaokao,
//! SAT, OCW, MMLU-STEM), prompt formats, reference answers and a procedural generator. A
//! [`Task`] grades and rewards through `mathforge-verify`, so RL optimises what evaluation
//! measures (DeepSeekMath §4.1; nanochat `tasks/`).
//!
//! * [`bench`]: JSONL readers, one [`Example`] per record, format detected from field names;
//! * [`answer`]: reference answers (MATH's last `\boxed{}`, GSM8K's `####`);
//! * [`prompt`] + [`exemplars`]: few-shot, instruct, program-of-thought, tool-integrated;
//! * [`task`]: the [`Task`] trait and [`BenchTask`];
//! * [`arith`]: seeded multi-step arithmetic word problems with a train/held-out split.
//!
//! ```
//! use mathforge_tasks::{arith, Task, PromptFormat};
//! let task = arith::ArithTask::new(&arith::ArithConfig::default(), arith::Split::Heldout, 3).unwrap();
//! let ex = &task.examples()[0];
//! let prompt = task.prompt(ex, PromptFormat::Instruct);
//! assert!(prompt.text.starts_with("User: "));
//! assert_eq!(task.reward(ex, ex.solution.as_deref().unwrap()), 1.0);
//! ```
#![deny(missing_docs)]
pub mod answer;
pub mod arith;
pub mod bench;
pub mod error;
pub mod example;
pub mod exemplars;
pub mod prompt;
pub mod task;

pub use bench::{read_bench, Bench, Loaded};
pub use error::{Error, Result};
pub use example::{Example, Lang};
pub use prompt::{render, ChatMessage, FewShotStyle, Prompt, PromptFormat};
pub use task::{grade_example, BenchTask, Task};
