//! The model engine: a Llama/Qwen2-family decoder built from differentiable candle ops, Hugging
//! Face checkpoint IO, tokenizer, chunked log-probs and batched KV-cache sampling.
pub mod error;
pub use error::{Error, Result};
pub mod chat;
pub mod sampling;
pub mod tokenizer;
