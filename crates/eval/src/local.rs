//! The local backend: a mathforge checkpoint (HF layout: `config.json`, safetensors,
//! `tokenizer.json`) sampled with `mathforge_model::generate::generate` (batched KV cache, `n`
//! samples from one prefill, per-sequence RNG streams; the same engine GRPO's rollouts use).
//!
//! Requests are grouped by their sampling settings (the harness sends one group per round), the
//! prompt text (plus any tool-round continuation) is tokenized with the checkpoint's tokenizer
//! (BOS added as the tokenizer's template says), and `n` completions come back per prompt, cut at
//! the request's stop strings by the sampler.
use crate::backend::{Backend, GenOutcome, GenRequest};
use crate::{Error, Result};
use mathforge_model::generate::{generate, GenerateOptions};
use mathforge_model::sampling::SamplingParams;
use mathforge_model::tokenizer::Tokenizer;
use mathforge_model::{checkpoint, DeviceSpec, Llama};
use std::path::{Path, PathBuf};

/// A loaded checkpoint.
pub struct LocalBackend {
    dir: PathBuf,
    model: Llama,
    tokenizer: Tokenizer,
    max_batch: usize,
}

impl LocalBackend {
    /// Load `dir` on `device` (`cpu`, `cuda`, `cuda:1`) in the device's default dtype (f32 on
    /// CPU, bf16 on GPU). `max_batch` sequences are decoded together.
    pub fn open(dir: &Path, device: &str, max_batch: usize) -> Result<Self> {
        let m = |e: mathforge_model::Error| Error::Model(format!("{}: {e}", dir.display()));
        let spec: DeviceSpec = device.parse().map_err(m)?;
        let dev = spec.device().map_err(m)?;
        let mut tokenizer = Tokenizer::from_dir(dir).map_err(m)?;
        let model = checkpoint::load(dir, spec.default_dtype(), &dev).map_err(m)?;
        checkpoint::check_tokenizer_vocab(dir.join("tokenizer.json"), model.config()).map_err(m)?;
        if tokenizer.eos_ids().is_empty() {
            tokenizer.set_eos_ids(model.config().eos_token_ids.clone());
        }
        Ok(LocalBackend { dir: dir.to_path_buf(), model, tokenizer, max_batch: max_batch.max(1) })
    }

    fn run_group(&self, reqs: &[&GenRequest]) -> std::result::Result<Vec<Vec<String>>, String> {
        let first = reqs[0];
        let ids = reqs
            .iter()
            .map(|r| self.tokenizer.encode(&format!("{}{}", r.prompt.text, r.continuation), true))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| format!("tokenize: {e}"))?;
        let params = SamplingParams {
            temperature: first.temperature,
            top_k: 0,
            top_p: first.top_p,
            max_new_tokens: first.max_tokens,
            stop: first.prompt.stop.iter().filter(|s| !s.is_empty()).cloned().collect(),
            n: first.n,
            seed: first.seed,
        };
        let opts = GenerateOptions { max_batch: self.max_batch, ..Default::default() };
        let (out, _stats) =
            generate(&self.model, &self.tokenizer, &ids, &params, &opts, |_| {}).map_err(|e| format!("generate: {e}"))?;
        Ok(out.into_iter().map(|cs| cs.into_iter().map(|c| c.text).collect()).collect())
    }
}

impl Backend for LocalBackend {
    fn describe(&self) -> String {
        format!("local:{}", self.dir.display())
    }
    fn batch_size(&self) -> usize {
        self.max_batch
    }
    fn generate(&self, requests: &[GenRequest]) -> Vec<GenOutcome> {
        let mut out: Vec<GenOutcome> = vec![Err("not generated".into()); requests.len()];
        // Group by sampling settings: one `generate` call per group.
        let key = |r: &GenRequest| (r.n, r.max_tokens, r.temperature.to_bits(), r.top_p.to_bits(), r.prompt.stop.clone());
        let mut groups: Vec<(_, Vec<usize>)> = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            let k = key(r);
            match groups.iter_mut().find(|(gk, _)| *gk == k) {
                Some((_, v)) => v.push(i),
                None => groups.push((k, vec![i])),
            }
        }
        for (_, idx) in groups {
            let reqs: Vec<&GenRequest> = idx.iter().map(|&i| &requests[i]).collect();
            match self.run_group(&reqs) {
                Ok(texts) => {
                    for (&i, t) in idx.iter().zip(texts) {
                        out[i] = Ok(t);
                    }
                }
                Err(e) => {
                    for &i in &idx {
                        out[i] = Err(e.clone());
                    }
                }
            }
        }
        out
    }
}
