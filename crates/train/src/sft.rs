//! Supervised fine-tuning on prompt/response pairs in the DeepSeekMath-Instruct chat format
//! (§3: `User: {q}\n\nAssistant: {a}<eos>`), with the loss on response tokens only.
//!
//! Records are JSONL with a prompt field and a response field (GSM8K's `question`/`answer` by
//! default). Chain-of-thought, program-of-thought and tool-integrated examples are all plain
//! responses here; what differs is the text, not the trainer. The prompt is tokenized with the
//! tokenizer's special tokens (BOS), the response `" " + a` without, then EOS is appended, so the
//! loss mask starts exactly at the first response token. Pairs longer than `max-len` tokens have
//! their response cut (and lose the EOS); pairs whose prompt alone is too long are skipped and
//! counted, as are records missing a field.
//!
//! The loss of a step is the mean NLL over all response tokens of the step's sequences, however
//! they are split into micro-batches (each micro-batch is weighted by its share of tokens). The
//! order is a permutation per epoch drawn from `seed` and the epoch number, so the data position
//! (epoch, index) is enough to resume exactly.
use crate::config::{to_json, to_toml};
use crate::trainer::{pad_batch, CommonConfig, MicroLoss, StepReport, Trainer};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use mathforge_io::jsonl::JsonlReader;
use mathforge_model::logprob::token_logprobs;
use mathforge_model::tokenizer::Tokenizer;
use mathforge_model::Llama;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `mathforge train sft` settings (keys = long flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct SftConfig {
    /// Settings shared by all trainers.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Training pairs (JSONL).
    pub train_file: String,
    /// Held-out pairs for the eval loss (JSONL).
    pub eval_file: Option<String>,
    /// Field with the question.
    pub prompt_field: String,
    /// Field with the answer (the trained part).
    pub response_field: String,
    /// Longest sequence (prompt + response) in tokens.
    pub max_len: usize,
}

impl Default for SftConfig {
    fn default() -> Self {
        SftConfig {
            common: CommonConfig { lr: 1e-3, ..CommonConfig::default() },
            train_file: String::new(),
            eval_file: None,
            prompt_field: "question".into(),
            response_field: "answer".into(),
            max_len: 512,
        }
    }
}

/// A tokenized pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// Prompt + response ids.
    pub ids: Vec<u32>,
    /// Number of prompt ids (the loss starts at the token after them).
    pub prompt_len: usize,
}

/// Tokenize a question/answer pair in the chat format.
pub fn encode_pair(
    tok: &Tokenizer,
    question: &str,
    answer: &str,
    max_len: usize,
) -> Result<Option<Pair>> {
    let prompt = mathforge_model::chat::prompt(question);
    let mut ids = tok.encode(&prompt, true).map_err(|e| Error::Msg(e.to_string()))?;
    let prompt_len = ids.len();
    if prompt_len + 1 >= max_len {
        return Ok(None);
    }
    ids.extend(tok.encode(&format!(" {answer}"), false).map_err(|e| Error::Msg(e.to_string()))?);
    if let Some(&e) = tok.eos_ids().first() {
        ids.push(e);
    }
    ids.truncate(max_len);
    Ok(Some(Pair { ids, prompt_len }))
}

/// Read and tokenize a pairs file; returns the pairs and skip counts by reason.
pub fn load_pairs(
    path: &Path,
    tok: &Tokenizer,
    pf: &str,
    rf: &str,
    max_len: usize,
) -> Result<(Vec<Pair>, BTreeMap<String, u64>)> {
    require_file(path)?;
    let mut out = vec![];
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    for rec in JsonlReader::open(path)? {
        let v = match rec.value {
            Ok(v) => v,
            Err(_) => {
                *skipped.entry("invalid_json".into()).or_default() += 1;
                continue;
            }
        };
        let (Some(Value::String(q)), Some(Value::String(a))) = (v.get(pf), v.get(rf)) else {
            *skipped.entry(format!("missing_{pf}_or_{rf}")).or_default() += 1;
            continue;
        };
        match encode_pair(tok, q, a, max_len)? {
            Some(p) => out.push(p),
            None => *skipped.entry("prompt_too_long".into()).or_default() += 1,
        }
    }
    usable(path, out, skipped)
}

/// An error naming `path` unless it exists (before a reader is opened on it).
pub(crate) fn require_file(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    Err(Error::Data { path: path.into(), line: 0, msg: "file does not exist".into() })
}

/// The records read from `path` with their skip counts by reason, or an error naming the file
/// (and the counts) when none was usable.
pub(crate) fn usable<T>(
    path: &Path,
    out: Vec<T>,
    skipped: BTreeMap<String, u64>,
) -> Result<(Vec<T>, BTreeMap<String, u64>)> {
    if out.is_empty() {
        return Err(Error::Data {
            path: path.into(),
            line: 0,
            msg: format!("no usable pairs (skipped: {skipped:?})"),
        });
    }
    Ok((out, skipped))
}

/// Inputs, targets and response mask of a batch of pairs: `[B, T-1]` each.
pub fn batch_tensors(
    pairs: &[&Pair],
    pad: u32,
    device: &Device,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let rows: Vec<Vec<u32>> = pairs.iter().map(|p| p.ids.clone()).collect();
    let (ids, mask) = pad_batch(&rows, pad, device)?;
    let t = ids.dim(1)?;
    let mut lm = vec![0f32; pairs.len() * (t - 1)];
    for (b, p) in pairs.iter().enumerate() {
        // Target position j predicts ids[j + 1]: response tokens are ids[prompt_len..].
        for j in p.prompt_len.saturating_sub(1)..p.ids.len() - 1 {
            lm[b * (t - 1) + j] = 1.0;
        }
    }
    let loss_mask = Tensor::from_vec(lm, (pairs.len(), t - 1), device)?;
    Ok((ids.narrow(1, 0, t - 1)?, mask.narrow(1, 0, t - 1)?, ids.narrow(1, 1, t - 1)?, loss_mask))
}

/// Sum of the response-token log-probs of `pairs` under `model` (a scalar, differentiable) and
/// the number of response tokens.
fn response_logprob_sum(
    model: &Llama,
    pairs: &[&Pair],
    pad: u32,
    chunk: usize,
    device: &Device,
) -> Result<(Tensor, f64)> {
    let (inp, am, tgt, lm) = batch_tensors(pairs, pad, device)?;
    let lp = token_logprobs(model, &inp, Some(&am), &tgt, chunk)
        .map_err(|e| Error::Msg(e.to_string()))?;
    let n = lm.sum_all()?.to_scalar::<f32>()? as f64;
    Ok(((lp.to_dtype(DType::F32)? * &lm)?.sum_all()?, n))
}

/// Response-token NLL sum and count of a batch (no gradient).
pub fn eval_nll(
    model: &Llama,
    pairs: &[Pair],
    batch: usize,
    pad: u32,
    chunk: usize,
    device: &Device,
) -> Result<(f64, f64)> {
    let (mut s, mut n) = (0.0, 0.0);
    for b in pairs.chunks(batch.max(1)) {
        let refs: Vec<&Pair> = b.iter().collect();
        let (sum, count) = response_logprob_sum(model, &refs, pad, chunk, device)?;
        s -= sum.detach().to_scalar::<f32>()? as f64;
        n += count;
    }
    Ok((s, n))
}

/// Number of response tokens (the trained ones) of a batch.
pub fn response_tokens(batch: &[&Pair]) -> f64 {
    batch.iter().map(|p| (p.ids.len() - p.prompt_len) as f64).sum()
}

/// The loss of one micro-batch of a step: the mean NLL of its response tokens, weighted by its
/// share of the step's `step_tokens` response tokens, so the step's loss is the mean over all of
/// them however the batch is split.
pub fn response_nll(
    model: &Llama,
    micro: &[&Pair],
    pad: u32,
    chunk: usize,
    device: &Device,
    step_tokens: f64,
) -> Result<MicroLoss> {
    let (sum, n) = response_logprob_sum(model, micro, pad, chunk, device)?;
    let loss = (sum.neg()? / n.max(1.0))?;
    Ok(MicroLoss { loss, weight: n / step_tokens, metrics: Map::new() })
}

/// One optimizer step of SFT on `batch` (micro-batches of the run's `micro-batch-size`, loss
/// [`response_nll`]). Returns the step's metrics with `response_tokens`. A non-finite loss saves
/// the last good state with the data position `before` and returns the error.
pub fn sft_step(
    tr: &mut Trainer,
    batch: &[&Pair],
    pad: u32,
    before: Value,
) -> Result<Map<String, Value>> {
    let step_tokens = response_tokens(batch).max(1.0);
    let (device, chunk) = (tr.device.clone(), tr.cfg.logprob_chunk);
    let micro: Vec<&[&Pair]> = batch.chunks(tr.cfg.micro_batch_size).collect();
    let res = tr.train_step(micro.len(), |model, _rng, i| {
        response_nll(model, micro[i], pad, chunk, &device, step_tokens)
    });
    let mut m = match res {
        Ok(m) => m,
        Err(e @ Error::NonFinite { .. }) => return Err(tr.save_last_good(e, before)),
        Err(e) => return Err(e),
    };
    m.insert("response_tokens".into(), Value::from(step_tokens));
    Ok(m)
}

/// Data position: epoch and index into that epoch's permutation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SftPos {
    /// Epoch.
    pub epoch: u64,
    /// Next index in the epoch's order.
    pub index: usize,
}

/// The data position a resumed run continues from (the checkpoint's `data`), or the default
/// (the start) for a fresh run.
pub fn resumed_position<T: DeserializeOwned + Default>(tr: &Trainer) -> Result<T> {
    match &tr.resumed_data {
        Value::Null => Ok(T::default()),
        v => serde_json::from_value(v.clone())
            .map_err(|e| Error::Msg(format!("bad data position in checkpoint: {e}"))),
    }
}

/// The order of epoch `epoch` over `n` items: a permutation drawn from `seed`, the epoch and the
/// trainer's `salt` (SFT 0; RFT and DPO use their own, so their orders differ from SFT's on the
/// same seed). A pure function of its arguments: the data position alone is enough to resume.
pub fn epoch_order(n: usize, seed: u64, epoch: u64, salt: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ epoch ^ salt);
    order.shuffle(&mut rng);
    order
}

/// Batches drawn in [`epoch_order`], rolling over into the next epoch mid-batch. The position
/// (epoch, index into that epoch's order) stays in the caller's checkpointed struct, so each
/// trainer keeps its own serialized form; the cursor only caches the current epoch's order.
#[derive(Debug, Clone)]
pub struct EpochCursor {
    n: usize,
    seed: u64,
    salt: u64,
    /// Epoch of `order`.
    order_epoch: u64,
    /// Order of `order_epoch` (empty until the first draw).
    order: Vec<usize>,
}

impl EpochCursor {
    /// A cursor over `n` items with the run's `seed` and the trainer's `salt`.
    pub fn new(n: usize, seed: u64, salt: u64) -> EpochCursor {
        EpochCursor { n, seed, salt, order_epoch: 0, order: vec![] }
    }

    /// The next `bs` item indices from position (`epoch`, `index`), which is advanced past them.
    /// Empty when there are no items (a trainer refuses empty data before it gets here).
    pub fn next_batch(&mut self, epoch: &mut u64, index: &mut usize, bs: usize) -> Vec<usize> {
        if self.n == 0 {
            return vec![];
        }
        let mut batch = Vec::with_capacity(bs);
        while batch.len() < bs {
            if *index >= self.n {
                *epoch += 1;
                *index = 0;
            }
            if self.order.is_empty() || self.order_epoch != *epoch {
                self.order = epoch_order(self.n, self.seed, *epoch, self.salt);
                self.order_epoch = *epoch;
            }
            batch.push(self.order[*index]);
            *index += 1;
        }
        batch
    }
}

/// Fractional epochs done at position (`epoch`, `index`) over `n` items (the `epoch` metric).
pub fn epoch_progress(epoch: u64, index: usize, n: usize) -> f64 {
    epoch as f64 + index as f64 / n as f64
}

/// Run (or resume) an SFT run.
pub fn run(
    cfg: &SftConfig,
    git_commit: Option<String>,
    mut progress: impl FnMut(&StepReport),
) -> Result<PathBuf> {
    let tok_path = cfg.common.tokenizer_path()?;
    let tok = if tok_path.is_dir() {
        Tokenizer::from_dir(&tok_path)
    } else {
        Tokenizer::from_file(&tok_path)
    }
    .map_err(|e| Error::Msg(e.to_string()))?;
    if cfg.train_file.is_empty() {
        return Err(Error::Config {
            file: "<resolved>".into(),
            msg: "`train-file` is required".into(),
        });
    }
    let (pairs, skipped) = load_pairs(
        Path::new(&cfg.train_file),
        &tok,
        &cfg.prompt_field,
        &cfg.response_field,
        cfg.max_len,
    )?;
    let eval_pairs = match &cfg.eval_file {
        Some(f) => Some(
            load_pairs(Path::new(f), &tok, &cfg.prompt_field, &cfg.response_field, cfg.max_len)?.0,
        ),
        None => None,
    };
    let mut tr = Trainer::open(
        "sft",
        &cfg.common,
        to_json(cfg),
        &to_toml(cfg)?,
        cfg.max_len,
        0,
        git_commit,
    )?;
    let mut pos: SftPos = resumed_position(&tr)?;
    let mut cursor = EpochCursor::new(pairs.len(), cfg.common.seed, 0);
    let (bs, mb, chunk, pad) = (
        cfg.common.batch_size,
        cfg.common.micro_batch_size,
        cfg.common.logprob_chunk,
        tok.pad_id(),
    );
    while !tr.done() {
        let before = serde_json::to_value(pos).unwrap_or(Value::Null);
        let idx = cursor.next_batch(&mut pos.epoch, &mut pos.index, bs);
        let batch: Vec<&Pair> = idx.iter().map(|&i| &pairs[i]).collect();
        let mut m = sft_step(&mut tr, &batch, pad, before)?;
        m.insert("epoch".into(), Value::from(epoch_progress(pos.epoch, pos.index, pairs.len())));
        let step = tr.step();
        if step == 1 {
            for (k, v) in &skipped {
                m.insert(format!("skipped_{k}"), Value::from(*v));
            }
        }
        let eval_now =
            tr.done() || (cfg.common.eval_every > 0 && step % cfg.common.eval_every == 0);
        if let (true, Some(ev)) = (eval_now, &eval_pairs) {
            let (s, n) = eval_nll(&tr.model, ev, mb, pad, chunk, &tr.device)?;
            m.insert("eval_loss".into(), Value::from(s / n.max(1.0)));
        }
        tr.log(&m)?;
        progress(&StepReport { step, total: cfg.common.steps, metrics: m.clone() });
        if tr.done() || step % cfg.common.save_every == 0 {
            tr.save(serde_json::to_value(pos).unwrap_or(Value::Null), &m)?;
        }
    }
    tr.plot()?;
    Ok(tr.run_dir.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch loop each trainer had before the cursor, with the order formula written out:
    /// the cursor must give the same indices and positions (runs resume into the same data).
    fn reference_batches(
        n: usize,
        seed: u64,
        salt: u64,
        mut epoch: u64,
        mut index: usize,
        bs: usize,
        steps: usize,
    ) -> Vec<(Vec<usize>, u64, usize)> {
        let order_of = |e: u64| {
            let mut o: Vec<usize> = (0..n).collect();
            o.shuffle(&mut ChaCha8Rng::seed_from_u64(
                seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ e ^ salt,
            ));
            o
        };
        let mut order = order_of(epoch);
        let mut out = vec![];
        for _ in 0..steps {
            let mut batch = vec![];
            while batch.len() < bs {
                if index >= order.len() {
                    epoch += 1;
                    index = 0;
                    order = order_of(epoch);
                }
                batch.push(order[index]);
                index += 1;
            }
            out.push((batch, epoch, index));
        }
        out
    }

    #[test]
    fn cursor_matches_the_trainers_batch_loop_and_resumes() {
        // SFT, RFT and DPO salts; batches that straddle epochs (7 items, 3 a batch).
        for salt in [0, 0x4f7, 0xd90] {
            let want = reference_batches(7, 42, salt, 0, 0, 3, 10);
            let mut c = EpochCursor::new(7, 42, salt);
            let (mut e, mut i) = (0u64, 0usize);
            for (k, (b, we, wi)) in want.iter().enumerate() {
                assert_eq!(&c.next_batch(&mut e, &mut i, 3), b, "salt {salt:#x} step {k}");
                assert_eq!((e, i), (*we, *wi));
            }
            // A fresh cursor from a saved position (as after a resume) continues identically.
            let (_, se, si) = want[4];
            let mut c = EpochCursor::new(7, 42, salt);
            let (mut e, mut i) = (se, si);
            for (b, _, _) in &want[5..] {
                assert_eq!(&c.next_batch(&mut e, &mut i, 3), b);
            }
        }
        // Salts give different orders on the same seed; every epoch is a permutation.
        let o: Vec<Vec<usize>> = [0, 0x4f7, 0xd90].map(|s| epoch_order(50, 1, 3, s)).into();
        assert!(o[0] != o[1] && o[1] != o[2] && o[0] != o[2]);
        let mut sorted = o[1].clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert!(EpochCursor::new(0, 1, 0).next_batch(&mut 0, &mut 0, 4).is_empty());
        assert_eq!(epoch_progress(2, 3, 4), 2.75);
    }

    /// Checkpoints store the position as this JSON: resuming existing runs depends on it.
    #[test]
    fn sft_position_json_is_stable() {
        let p = SftPos { epoch: 2, index: 5 };
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"epoch":2,"index":5}"#);
        assert_eq!(serde_json::from_str::<SftPos>(r#"{"epoch":2,"index":5}"#).unwrap(), p);
    }
}
