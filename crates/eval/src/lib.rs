//! The evaluation harness of DeepSeekMath (§2.2, §3.2, §5): generation backends, greedy / maj@k
//! / pass@k metrics, Python tool execution and reports.
//!
//! * [`backend`]: the [`Backend`] trait; implementations: [`responses::ResponsesBackend`]
//!   (grade a file of responses), [`http::HttpBackend`] (any OpenAI-compatible server) and
//!   [`local::LocalBackend`] (a mathforge checkpoint, sampled by `mathforge-model`);
//! * [`harness`]: [`evaluate`] runs a [`mathforge_tasks::Task`] through a backend and grades
//!   with the task's grader (the same one GRPO's reward uses);
//! * [`metrics`]: unbiased pass@k and maj@k over equivalence classes;
//! * [`python`]: sandboxed `python3` for program-of-thought and tool-integrated reasoning;
//! * [`report`]: `samples.jsonl`, `summary.json`, `summary.md`.
#![deny(missing_docs)]
pub mod backend;
pub mod config;
pub mod error;
pub mod harness;
pub mod http;
pub mod local;
pub mod metrics;
pub mod python;
pub mod report;
pub mod responses;

pub use backend::{Backend, GenOutcome, GenRequest};
pub use error::{Error, Result};
pub use harness::{evaluate, EvalConfig, EvalRun, Progress, Sample};
pub use report::{write_run, Summary};
