//! Training on the model engine (DeepSeekMath §3-§5): AdamW with fp32 master weights, schedules,
//! checkpoints with exact resume, pretraining on a weighted mixture, SFT, GRPO (§4.1) and the
//! unified paradigm of §5.2 (SFT, RFT, Online RFT, DPO, PPO, GRPO).
pub mod error;
pub use error::{Error, Result};
