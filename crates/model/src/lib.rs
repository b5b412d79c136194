//! The model engine: a Llama/Qwen2-family decoder built from differentiable candle ops, Hugging
//! Face checkpoint IO, tokenizer, chunked log-probs and batched KV-cache sampling.
pub mod error;
pub mod fused;
pub use error::{Error, Result};

pub mod chat;
pub mod checkpoint;
pub mod config;
pub mod decode;
pub mod device;
pub mod generate;
pub mod llama;
pub mod logprob;
pub mod nn;
pub mod sampling;
pub mod tokenizer;
pub use config::{Arch, Config};
pub use device::{parse_device, DeviceSpec};
pub use llama::{KvCache, Llama};
// Re-exported so dependents (the CLI, train, eval) use the exact candle/tokenizers versions the
// model was built with, without each declaring them.
pub use candle_core;
pub use candle_nn;
pub use tokenizers;
