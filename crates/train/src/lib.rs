//! Training on the model engine (DeepSeekMath §3-§5): AdamW with fp32 master weights, schedules,
//! checkpoints with exact resume, pretraining on a weighted mixture, SFT, GRPO (§4.1) and the
//! unified paradigm of §5.2 (SFT, RFT, Online RFT, DPO, PPO, GRPO).
//!
//! How the pieces connect: a trainer builds an [`optim::AdamW`] over the model's named `Var`s,
//! sums micro-batch gradients in an [`optim::GradAccumulator`], clips them, takes the rate from a
//! [`schedule::Schedule`], and writes a checkpoint (weights, optimizer, meta) that resumes exactly.
#![deny(missing_docs)]
pub mod checkpoint;
pub mod config;
pub mod dpo;
pub mod error;
pub mod grpo;
pub mod heads;
pub mod iterative;
pub mod metrics;
pub mod optim;
pub mod paradigm;
pub mod ppo;
pub mod pretrain;
pub mod rft;
pub mod rm;
pub mod schedule;
pub mod sft;
pub mod trainer;

pub use error::{Error, Result};
