//! `mathforge score`: per-token log-probabilities of texts or of completions given prompts, like
//! lm-eval-harness' `loglikelihood` (and `loglikelihood_rolling` for plain texts). Used to check a
//! model against a reference implementation and for multiple-choice style evaluation.
//!
//! Input lines are `{"text": ...}` (every token after the first is scored; a BOS token is prepended
//! when the config has one and the tokenizer did not add it) or `{"prompt": ..., "completion": ...}`
//! (only the completion's tokens are scored). As lm-eval does, trailing whitespace of the prompt is
//! moved to the completion and the pair is tokenized as one string, so the completion's tokens are
//! those the model would see. Output lines repeat the input object and add `token_ids`, `tokens`,
//! `logprobs`, `sum_logprob`, `num_tokens` and `is_greedy` (every scored token is the argmax).
//! Bad lines (no usable field, too long for the context window) are skipped and counted by reason.
use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use mathforge_io::jsonl::{JsonlReader, JsonlWriter};
use mathforge_model::candle_core::Tensor;
use mathforge_model::logprob::token_logprobs_and_greedy;
use mathforge_model::tokenizers::Tokenizer;
use mathforge_model::{checkpoint, DeviceSpec};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Flags of `mathforge score`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  mathforge score --model runs/tiny/sft --input pairs.jsonl --output scores.jsonl
  echo '{\"prompt\":\"2+2=\",\"completion\":\"4\"}' > x.jsonl && mathforge score --model M --input x.jsonl --output -

Input lines: {\"text\": ...} or {\"prompt\": ..., \"completion\": ...}. Output lines add token_ids,
tokens, logprobs, sum_logprob, num_tokens and is_greedy.")]
pub struct Args {
    /// Model directory (HF layout with tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// JSONL input (.jsonl, .jsonl.gz, .jsonl.zst).
    #[arg(long)]
    pub input: PathBuf,
    /// JSONL output; `-` prints to stdout.
    #[arg(long, default_value = "-")]
    pub output: String,
    /// tokenizer.json to use instead of the model directory's.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Positions per lm_head/log-softmax chunk (bounds memory to batch x chunk x vocab).
    #[arg(long, default_value_t = 128)]
    pub chunk: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Compute dtype (f32, bf16, f16); default f32 on CPU, bf16 on CUDA.
    #[arg(long)]
    pub dtype: Option<String>,
}

struct Item {
    line: u64,
    value: Value,
    ids: Vec<u32>,
    /// Index of the first scored token in `ids` (>= 1).
    start: usize,
}

fn encode(tok: &Tokenizer, text: &str, bos: Option<u32>) -> anyhow::Result<Vec<u32>> {
    let enc = tok.encode(text, true).map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
    let mut ids = enc.get_ids().to_vec();
    if let Some(b) = bos {
        if ids.first() != Some(&b) {
            ids.insert(0, b);
        }
    }
    Ok(ids)
}

/// Tokenize one input record; `Err(reason)` means skip it.
fn prepare(tok: &Tokenizer, v: &Value, bos: Option<u32>) -> Result<(Vec<u32>, usize), String> {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    match (s("text"), s("prompt"), s("completion")) {
        (_, Some(prompt), Some(completion)) => {
            let trimmed = prompt.trim_end();
            let moved = &prompt[trimmed.len()..];
            let completion = format!("{moved}{completion}");
            let ctx = encode(tok, trimmed, bos).map_err(|e| e.to_string())?;
            let whole = encode(tok, &format!("{trimmed}{completion}"), bos).map_err(|e| e.to_string())?;
            if whole.len() <= ctx.len() {
                return Err("completion adds no tokens".into());
            }
            if ctx.is_empty() {
                return Err("prompt is empty and the model has no bos_token_id".into());
            }
            Ok((whole, ctx.len()))
        }
        (Some(text), _, _) => {
            let ids = encode(tok, text, bos).map_err(|e| e.to_string())?;
            if ids.len() < 2 {
                return Err("text has fewer than 2 tokens (nothing to score)".into());
            }
            Ok((ids, 1))
        }
        _ => Err("no string field `text` or `prompt`+`completion`".into()),
    }
}

/// Run `mathforge score`.
pub fn run(a: Args) -> anyhow::Result<()> {
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let spec: DeviceSpec = a.device.parse()?;
    let device = spec.device()?;
    let dtype = match &a.dtype {
        Some(d) => checkpoint::parse_dtype(d)?,
        None => spec.default_dtype(),
    };
    let model = checkpoint::load(&a.model, dtype, &device).with_context(|| format!("loading {}", a.model.display()))?;
    let cfg = model.config().clone();
    let tok_path = a.tokenizer.clone().unwrap_or_else(|| a.model.join("tokenizer.json"));
    checkpoint::check_tokenizer_vocab(&tok_path, &cfg)?;
    let tok = Tokenizer::from_file(&tok_path).map_err(|e| anyhow::anyhow!("{}: {e}", tok_path.display()))?;

    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut items = Vec::new();
    for rec in JsonlReader::open(&a.input)? {
        let line = rec.line;
        let value = match rec.value {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("{e}");
                *skipped.entry("invalid JSON".into()).or_default() += 1;
                continue;
            }
        };
        match prepare(&tok, &value, cfg.bos_token_id) {
            Ok((ids, _)) if ids.len() > cfg.max_position_embeddings => {
                tracing::warn!("{}:{line}: {} tokens exceed max_position_embeddings {}", a.input.display(), ids.len(), cfg.max_position_embeddings);
                *skipped.entry("longer than the context window".into()).or_default() += 1;
            }
            Ok((ids, start)) => items.push(Item { line, value, ids, start }),
            Err(reason) => {
                tracing::warn!("{}:{line}: {reason}", a.input.display());
                *skipped.entry(reason).or_default() += 1;
            }
        }
    }

    let pb = crate::util::progress(items.len() as u64, "score");
    let mut writer = if a.output == "-" { None } else { Some(JsonlWriter::create(&a.output)?) };
    let stdout = std::io::stdout();
    let mut so = stdout.lock();
    let mut scored = 0u64;
    for batch in items.chunks(a.batch_size) {
        let t = batch.iter().map(|i| i.ids.len()).max().unwrap_or(0);
        let ids: Vec<Vec<u32>> = batch.iter().map(|i| { let mut r = i.ids.clone(); r.resize(t, 0); r }).collect();
        let mask: Vec<Vec<u32>> = batch.iter().map(|i| (0..t).map(|j| u32::from(j < i.ids.len())).collect()).collect();
        let ids_t = Tensor::new(ids, &device)?;
        let mask_t = Tensor::new(mask, &device)?;
        let hidden = model.forward_hidden(&ids_t, Some(&mask_t))?;
        // Position j predicts token j + 1.
        let hidden = hidden.narrow(1, 0, t - 1)?;
        let targets = ids_t.narrow(1, 1, t - 1)?;
        let (lps, greedy) = token_logprobs_and_greedy(&model, &hidden, &targets, a.chunk)?;
        for (bi, item) in batch.iter().enumerate() {
            let range = (item.start - 1)..(item.ids.len() - 1);
            let lp: Vec<f32> = lps[bi][range.clone()].to_vec();
            let is_greedy = greedy[bi][range].iter().all(|&g| g);
            let token_ids = &item.ids[item.start..];
            let tokens: Vec<String> = token_ids.iter().map(|&i| tok.id_to_token(i).unwrap_or_default()).collect();
            let sum: f64 = lp.iter().map(|&x| x as f64).sum();
            let mut v = match &item.value {
                Value::Object(m) => Value::Object(m.clone()),
                other => json!({"input": other}),
            };
            let m = v.as_object_mut().expect("object");
            m.insert("token_ids".into(), json!(token_ids));
            m.insert("tokens".into(), json!(tokens));
            m.insert("logprobs".into(), json!(lp));
            m.insert("sum_logprob".into(), json!(sum));
            m.insert("num_tokens".into(), json!(token_ids.len()));
            m.insert("is_greedy".into(), json!(is_greedy));
            match writer.as_mut() {
                Some(w) => w.write(&v).with_context(|| format!("writing {} (input line {})", a.output, item.line))?,
                None => writeln!(so, "{}", serde_json::to_string(&v)?)?,
            }
            scored += 1;
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    if let Some(w) = writer {
        w.finish()?;
    }
    let dropped: u64 = skipped.values().sum();
    eprintln!("scored {scored} line(s), skipped {dropped}");
    for (reason, n) in &skipped {
        eprintln!("  skipped {n}: {reason}");
    }
    Ok(())
}
