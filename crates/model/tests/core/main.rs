//! Integration tests of the decoder core: cached decoding, checkpoints, parity with transformers,
//! gradient checks and chunked log-probs. One binary (one link of candle) for all of them.
mod checkpoint;
mod decoder;
mod gradcheck;
mod logprob;
mod parity;
mod util;
