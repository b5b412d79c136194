//! Batched generation with a KV cache: the rollout engine of GRPO and the sampler of evaluation.
//!
//! DeepSeekMath samples `G` outputs per question from the current policy for GRPO (Shao et al.
//! 2024, §4.1) and evaluates with greedy decoding or several samples (maj@k, pass@k; §5.2). This
//! file turns token prompts into completions for both:
//!
//! - **Mixed prompt lengths share a batch**: prompts are left-padded to the longest one; each row
//!   has its own position ids (`0..len` on its real tokens) and an attention mask over cache + new
//!   tokens, so a padded row produces exactly the logits it would produce alone.
//! - **`n` samples per prompt**: the prompts are prefilled once, then the cache rows are
//!   replicated `n` times ([`KvCache::select_rows`] with repeated indices).
//! - **Finished sequences leave the batch**: after each step the rows that hit EOS, a stop string
//!   or their token budget are dropped from the cache, so no compute is spent on them
//!   ([`GenerateStats::forward_rows`] counts the rows every forward call processed).
//! - **Reproducible**: sequence `i * n + j` (prompt `i`, sample `j`) draws from its own RNG stream
//!   ([`crate::sampling::SeqRng`]), independent of batch composition.
//!
//! Each completion carries its token ids (including the EOS or the token that completed a stop
//! string: that is what the policy emitted and what GRPO trains on), its text (special tokens
//! skipped, cut before a stop string), the finish reason, and the log-prob of every sampled token
//! under the unmodified model distribution.
use crate::decode::{FastDecoder, Job, SeqCache};
use crate::llama::{KvCache, Llama};
use crate::sampling::{sample, FinishReason, Sampled, SamplingParams, SeqRng, StopStrings};
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};
use candle_core::{DType, Tensor};

/// Engine settings that are not part of a sampling request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateOptions {
    /// Most sequences decoded together (prompts are taken in groups of `max_batch / n`).
    pub max_batch: usize,
    /// Ids that end a sequence; `None`: the tokenizer's EOS ids.
    pub eos_ids: Option<Vec<u32>>,
    /// Never stop on EOS (benchmarks: every row generates `max_new_tokens`).
    pub ignore_eos: bool,
    /// Decode f32 models on the CPU with [`crate::decode::FastDecoder`] (false: candle's ops,
    /// e.g. to compare the two).
    pub fast_cpu: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { max_batch: 64, eos_ids: None, ignore_eos: false, fast_cpu: true }
    }
}

/// One generated sequence.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Completion {
    /// Index of the prompt in the request.
    pub prompt_index: usize,
    /// Which of the `n` samples of that prompt.
    pub sample_index: usize,
    /// Generated token ids (EOS or the stop-completing token included).
    pub token_ids: Vec<u32>,
    /// Generated text: special tokens skipped, cut before the first stop string.
    pub text: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// `log p(token)` of each generated token under the unmodified model distribution.
    pub logprobs: Vec<f32>,
}

/// Counters of one [`generate`] call (what the batch did, for tests and benchmarks).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GenerateStats {
    /// Forward calls (prefills + decode steps).
    pub forward_calls: usize,
    /// Sum over forward calls of the rows in the batch: with early-finishing rows this is less
    /// than `steps × batch`, because finished rows leave the batch.
    pub forward_rows: usize,
    /// Prompt tokens prefilled (padding excluded).
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
}

/// Progress report passed to the caller's callback after every decode step.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Sequences finished so far.
    pub finished: usize,
    /// Sequences requested (`prompts × n`).
    pub total: usize,
    /// Tokens generated so far.
    pub generated_tokens: usize,
}

/// Per-sequence state while it is in the batch.
struct Row {
    prompt_index: usize,
    sample_index: usize,
    rng: SeqRng,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    /// Attention mask over the cache columns (1 = real token, 0 = left padding).
    mask: Vec<f32>,
    /// Position id of the next token.
    next_pos: u32,
    /// Token budget: `max_new_tokens`, capped by the context window.
    budget: usize,
    /// This sequence's keys and values on the fast CPU path (candle's path batches them in a
    /// `KvCache` instead).
    cache: Option<SeqCache>,
}

/// Generate `params.n` completions for each tokenized prompt.
///
/// Returns the completions grouped by prompt (`out[i][j]` = prompt `i`, sample `j`) and counters.
/// A prompt that is empty or does not leave room for one new token in the model's context window
/// is an error naming the prompt; a completion that reaches the end of the window stops with
/// finish reason `length`.
pub fn generate(
    model: &Llama,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
    opts: &GenerateOptions,
    mut progress: impl FnMut(Progress),
) -> Result<(Vec<Vec<Completion>>, GenerateStats)> {
    params.validate()?;
    // Decoding never needs gradients: over a trainable model's `Var`s every step would build an
    // autograd graph (time and memory) only to drop it.
    let model = &model.detached();
    let fast = if opts.fast_cpu { FastDecoder::new(model)? } else { None };
    let window = model.config().max_position_embeddings;
    let vocab = model.config().vocab_size;
    for (i, p) in prompts.iter().enumerate() {
        if p.is_empty() {
            return Err(Error::BadInput { what: "prompt", msg: format!("prompt {i} is empty (no tokens)") });
        }
        if p.len() >= window {
            return Err(Error::BadInput {
                what: "prompt",
                msg: format!(
                    "prompt {i} has {} tokens but the context window (max_position_embeddings) is {window}: \
                     no room to generate",
                    p.len()
                ),
            });
        }
        if let Some(&bad) = p.iter().find(|&&t| t as usize >= vocab) {
            return Err(Error::BadInput {
                what: "prompt",
                msg: format!("prompt {i} has token id {bad} >= vocab_size {vocab}"),
            });
        }
    }
    let eos: Vec<u32> = if opts.ignore_eos {
        Vec::new()
    } else {
        opts.eos_ids.clone().unwrap_or_else(|| tokenizer.eos_ids().to_vec())
    };
    let n = params.n;
    let per_group = (opts.max_batch.max(1) / n).max(1);
    let total = prompts.len() * n;
    let mut stats = GenerateStats::default();
    let mut out: Vec<Vec<Option<Completion>>> = prompts.iter().map(|_| vec![None; n]).collect();
    let finished = std::cell::Cell::new(0usize);
    let stops = StopStrings::new(&params.stop);

    for (g, group) in prompts.chunks(per_group).enumerate() {
        let first = g * per_group;
        let done = run_group(
            model,
            fast.as_ref(),
            tokenizer,
            group,
            first,
            params,
            &eos,
            &stops,
            &mut stats,
            &mut |c: Completion| {
                finished.set(finished.get() + 1);
                let (pi, si) = (c.prompt_index, c.sample_index);
                out[pi][si] = Some(c);
            },
            &mut |generated| progress(Progress { finished: finished.get(), total, generated_tokens: generated }),
        );
        done?;
    }
    let out = out
        .into_iter()
        .map(|v| v.into_iter().collect::<Option<Vec<_>>>())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::Msg("generate: internal error: a sequence produced no completion".into()))?;
    Ok((out, stats))
}

/// Prefill one group of prompts, replicate `n` times, decode until every row has finished.
#[allow(clippy::too_many_arguments)]
fn run_group(
    model: &Llama,
    fast: Option<&FastDecoder>,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    first_prompt: usize,
    params: &SamplingParams,
    eos: &[u32],
    stops: &StopStrings,
    stats: &mut GenerateStats,
    emit: &mut dyn FnMut(Completion),
    progress: &mut dyn FnMut(usize),
) -> Result<()> {
    let device = model.device();
    let window = model.config().max_position_embeddings;
    let n = params.n;
    let pad = tokenizer.pad_id().min(model.config().vocab_size.saturating_sub(1) as u32);
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);

    // Prefill: left padding, so every row's last column is its last prompt token.
    let b = prompts.len();
    let mut ids = Vec::with_capacity(b * longest);
    let mut pos = Vec::with_capacity(b * longest);
    let mut mask = Vec::with_capacity(b * longest);
    for p in prompts {
        let padn = longest - p.len();
        ids.extend(std::iter::repeat_n(pad, padn).chain(p.iter().copied()));
        pos.extend(std::iter::repeat_n(0u32, padn).chain(0..p.len() as u32));
        mask.extend(std::iter::repeat_n(0f32, padn).chain(std::iter::repeat_n(1f32, p.len())));
    }
    let mut cache = KvCache::new(model.config());
    let mut prefilled: Vec<SeqCache> = vec![];
    let mut logits = match fast {
        Some(f) => {
            prefilled = prompts.iter().map(|_| f.new_cache()).collect();
            let mut jobs: Vec<Job> =
                prefilled.iter_mut().zip(prompts).map(|(cache, p)| Job { cache, tokens: p }).collect();
            f.forward(&mut jobs)?
        }
        None => model
            .forward_step(
                &Tensor::from_vec(ids, (b, longest), device)?,
                &Tensor::from_vec(pos, (b, longest), device)?,
                &Tensor::from_vec(mask.clone(), (b, longest), device)?,
                &mut cache,
            )?
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?,
    };
    stats.forward_calls += 1;
    stats.forward_rows += b;
    stats.prompt_tokens += prompts.iter().map(Vec::len).sum::<usize>();

    // Replicate each prompt's cache row and logits `n` times: rows are prompt-major.
    let mut rows: Vec<Row> = Vec::with_capacity(b * n);
    if n > 1 {
        let rep: Vec<usize> = (0..b).flat_map(|i| std::iter::repeat_n(i, n)).collect();
        if fast.is_none() {
            cache.select_rows(&rep)?;
        }
        logits = rep.iter().map(|&i| logits[i].clone()).collect();
    }
    for (i, p) in prompts.iter().enumerate() {
        for j in 0..n {
            let prompt_index = first_prompt + i;
            rows.push(Row {
                prompt_index,
                sample_index: j,
                rng: SeqRng::new(params.seed, (prompt_index * n + j) as u64),
                tokens: Vec::new(),
                logprobs: Vec::new(),
                mask: mask[i * longest..(i + 1) * longest].to_vec(),
                next_pos: p.len() as u32,
                budget: params.max_new_tokens.min(window - p.len()),
                cache: fast.map(|_| prefilled[i].clone()),
            });
        }
    }

    loop {
        // Sample one token per row and decide who is finished.
        let mut keep = Vec::with_capacity(rows.len());
        let mut finished_now = Vec::new();
        let sampled = sample_rows(&mut rows, &logits, params)?;
        for (r, (row, s)) in rows.iter_mut().zip(sampled).enumerate() {
            let Some(s) = s else {
                finished_now.push((r, FinishReason::Length, None));
                continue;
            };
            row.tokens.push(s.token);
            row.logprobs.push(s.logprob);
            stats.generated_tokens += 1;
            let reason = if eos.contains(&s.token) {
                Some((FinishReason::Eos, None))
            } else if let Some(at) = stop_hit(tokenizer, stops, &row.tokens)? {
                Some((FinishReason::Stop, Some(at)))
            } else if row.tokens.len() >= row.budget {
                Some((FinishReason::Length, None))
            } else {
                None
            };
            match reason {
                Some((why, cut)) => finished_now.push((r, why, cut)),
                None => keep.push(r),
            }
        }
        // Emit finished rows (taking their state out; rows are rebuilt below).
        let mut slots: Vec<Option<Row>> = rows.into_iter().map(Some).collect();
        for (r, why, cut) in finished_now {
            let row = slots[r].take().ok_or_else(|| Error::Msg("generate: row finished twice".into()))?;
            let mut text = tokenizer.decode(&row.tokens, true)?;
            if let Some(at) = cut {
                text.truncate(at);
            }
            emit(Completion {
                prompt_index: row.prompt_index,
                sample_index: row.sample_index,
                token_ids: row.tokens,
                text,
                finish_reason: why,
                logprobs: row.logprobs,
            });
        }
        progress(stats.generated_tokens);
        if keep.is_empty() {
            return Ok(());
        }
        if keep.len() < slots.len() && fast.is_none() {
            cache.select_rows(&keep)?;
        }
        rows = keep.iter().filter_map(|&r| slots[r].take()).collect();

        // One decode step for the rows still running.
        let b = rows.len();
        if let Some(f) = fast {
            let last: Vec<[u32; 1]> = rows.iter().map(|r| [*r.tokens.last().unwrap_or(&pad)]).collect();
            let mut jobs = Vec::with_capacity(b);
            for (row, t) in rows.iter_mut().zip(&last) {
                row.next_pos += 1;
                let cache = row.cache.as_mut().ok_or_else(|| Error::Msg("generate: fast row without a cache".into()))?;
                jobs.push(Job { cache, tokens: t });
            }
            logits = f.forward(&mut jobs)?;
            stats.forward_calls += 1;
            stats.forward_rows += b;
            continue;
        }
        let s = rows[0].mask.len() + 1;
        let mut ids = Vec::with_capacity(b);
        let mut pos = Vec::with_capacity(b);
        let mut mask = Vec::with_capacity(b * s);
        for row in rows.iter_mut() {
            ids.push(*row.tokens.last().unwrap_or(&pad));
            pos.push(row.next_pos);
            row.next_pos += 1;
            row.mask.push(1.0);
            mask.extend_from_slice(&row.mask);
        }
        let l = model.forward_step(
            &Tensor::from_vec(ids, (b, 1), device)?,
            &Tensor::from_vec(pos, (b, 1), device)?,
            &Tensor::from_vec(mask, (b, s), device)?,
            &mut cache,
        )?;
        stats.forward_calls += 1;
        stats.forward_rows += b;
        logits = l.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    }
}

/// Draw the next token of every row (None for rows with no budget left). Rows are independent
/// (own RNG, own logits), so they are split over the cores: with a 32k-100k vocabulary the
/// softmax passes cost about as much as a small model's decode step.
fn sample_rows(rows: &mut [Row], logits: &[Vec<f32>], params: &SamplingParams) -> Result<Vec<Option<Sampled>>> {
    let one = |row: &mut Row, l: &Vec<f32>| -> Result<Option<Sampled>> {
        if row.budget == 0 {
            return Ok(None);
        }
        sample(l, params, &mut row.rng).map(Some)
    };
    let work = rows.len() * logits.first().map_or(0, Vec::len);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(rows.len());
    if threads <= 1 || work < 1 << 16 {
        return rows.iter_mut().zip(logits).map(|(r, l)| one(r, l)).collect();
    }
    let chunk = rows.len().div_ceil(threads);
    let n_rows = rows.len();
    std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks_mut(chunk)
            .zip(logits.chunks(chunk))
            .map(|(rs, ls)| scope.spawn(move || rs.iter_mut().zip(ls).map(|(r, l)| one(r, l)).collect::<Result<Vec<_>>>()))
            .collect();
        let mut out = Vec::with_capacity(n_rows);
        for h in handles {
            out.extend(h.join().map_err(|_| Error::Msg("generate: a sampling thread panicked".into()))??);
        }
        Ok(out)
    })
}

/// Byte offset in the full decoded text where a stop string starts, if the latest token
/// completed one. Only the tail is decoded each step (cheap); the full text only on a hit.
fn stop_hit(tokenizer: &Tokenizer, stops: &StopStrings, tokens: &[u32]) -> Result<Option<usize>> {
    if stops.is_empty() {
        return Ok(None);
    }
    let tail = &tokens[tokens.len().saturating_sub(stops.tail_tokens())..];
    if stops.find(&tokenizer.decode(tail, true)?).is_none() {
        return Ok(None);
    }
    Ok(stops.find(&tokenizer.decode(tokens, true)?))
}
