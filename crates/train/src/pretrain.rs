//! Pretraining on packed token streams from a weighted mixture of JSONL corpora (DeepSeekMath §2.3:
//! DeepSeekMath-Base 7B continued training on 56% DeepSeekMath Corpus, 4% AlgebraicStack, 10% arXiv,
//! 20% GitHub code, 10% natural language), with held-out perplexity.
//!
//! Each source is a JSONL file (`.jsonl`, `.gz`, `.zst`) whose `text-field` holds a document, or
//! a Parquet file (`.parquet`, the Hugging Face datasets layout) whose string column
//! `text-column` does; Parquet is streamed one row group at a time, reading only that column.
//! Documents are tokenized (BOS when the tokenizer has one, EOS appended) and concatenated per
//! source; each training sequence is `seq-len + 1` tokens of one source, the source drawn with
//! probability proportional to its weight, so the mixture holds per sequence. Consecutive windows
//! overlap by one token, so every token is a target exactly once. A source that ends starts over
//! (next epoch). The first `heldout-docs` documents of every source are never trained on; held-out
//! perplexity is `exp(mean NLL)` over windows packed from them.
//!
//! Resume: the data position of each source is (epoch, last line read, leftover tokens), stored
//! in the checkpoint's `meta.json` (for Parquet the "line" is the 1-based row); on resume the
//! file is reopened and read up to that line (Parquet skips whole row groups from the footer's
//! row counts). Bad records (invalid JSON, missing, null or non-string text) are skipped and
//! counted by reason.
use crate::config::{to_json, to_toml};
use crate::trainer::{pad_batch, CommonConfig, MicroLoss, StepReport, Trainer};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use mathforge_io::jsonl::JsonlReader;
use mathforge_model::logprob::token_logprobs;
use mathforge_model::tokenizer::Tokenizer;
use mathforge_model::Llama;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `mathforge train pretrain` settings (keys = long flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct PretrainConfig {
    /// Settings shared by all trainers.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Sources as `NAME:WEIGHT:PATH` (weights need not sum to 1).
    pub data: Vec<String>,
    /// JSONL field holding the document text.
    pub text_field: String,
    /// Parquet column holding the document text (`.parquet` sources).
    pub text_column: String,
    /// Tokens per training sequence.
    pub seq_len: usize,
    /// Leading documents of each source kept out of training for perplexity.
    pub heldout_docs: usize,
    /// Held-out windows per source used for perplexity (at most).
    pub heldout_windows: usize,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            common: CommonConfig { lr: 3e-3, warmup_steps: 20, ..CommonConfig::default() },
            data: vec![],
            text_field: "text".into(),
            text_column: "text".into(),
            seq_len: 256,
            heldout_docs: 20,
            heldout_windows: 16,
        }
    }
}

/// One mixture component.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Name used in metrics (`ppl_<name>`).
    pub name: String,
    /// Relative weight.
    pub weight: f64,
    /// JSONL or Parquet file.
    pub path: PathBuf,
}

fn is_parquet(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// One record of a source: its 1-based line (JSONL) or row (Parquet) and its text, or why it has
/// none (the skip reason counted in the data position).
type DocRecord = (u64, std::result::Result<String, String>);

/// Streams the text column of a Parquet file a row group at a time.
struct ParquetText {
    path: PathBuf,
    column: String,
    reader: ParquetRecordBatchReader,
    batch: Option<arrow_array::StringArray>,
    next_in_batch: usize,
    row: u64,
}

impl ParquetText {
    /// Open `path` after its first `skip` rows (whole row groups are skipped unread).
    fn open(path: &Path, column: &str, skip: u64) -> Result<Self> {
        let bad = |m: String| Error::Data { path: path.into(), line: 0, msg: m };
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| bad(format!("not a readable Parquet file: {e}")))?;
        let Some(idx) = builder.schema().fields().iter().position(|f| f.name() == column) else {
            return Err(bad(format!("no column `{column}` (set `text-column`)")));
        };
        let mask = ProjectionMask::roots(builder.parquet_schema(), [idx]);
        let (mut groups, mut row) = (vec![], 0u64);
        for (g, meta) in builder.metadata().row_groups().iter().enumerate() {
            let n = meta.num_rows().max(0) as u64;
            if row + n <= skip && groups.is_empty() {
                row += n;
            } else {
                groups.push(g);
            }
        }
        let reader = builder
            .with_projection(mask)
            .with_row_groups(groups)
            .with_batch_size(1024)
            .build()
            .map_err(|e| bad(format!("cannot read Parquet: {e}")))?;
        let mut me = ParquetText {
            path: path.into(),
            column: column.into(),
            reader,
            batch: None,
            next_in_batch: 0,
            row,
        };
        while me.row < skip {
            if me.next().transpose()?.is_none() {
                break;
            }
        }
        Ok(me)
    }
}

impl Iterator for ParquetText {
    type Item = Result<DocRecord>;
    fn next(&mut self) -> Option<Self::Item> {
        use arrow_array::Array;
        loop {
            if let Some(b) = &self.batch {
                if self.next_in_batch < b.len() {
                    let i = self.next_in_batch;
                    self.next_in_batch += 1;
                    self.row += 1;
                    let text = if b.is_null(i) {
                        Err(format!("null_{}", self.column))
                    } else {
                        Ok(b.value(i).to_string())
                    };
                    return Some(Ok((self.row, text)));
                }
            }
            let batch = match self.reader.next()? {
                Ok(b) => b,
                Err(e) => {
                    return Some(Err(Error::Data {
                        path: self.path.clone(),
                        line: self.row + 1,
                        msg: format!("Parquet read error at row {}: {e}", self.row + 1),
                    }))
                }
            };
            let col = match arrow_cast::cast(batch.column(0), &arrow_schema::DataType::Utf8) {
                Ok(c) => c,
                Err(e) => {
                    return Some(Err(Error::Data {
                        path: self.path.clone(),
                        line: self.row + 1,
                        msg: format!("column `{}` is not text: {e}", self.column),
                    }))
                }
            };
            let Some(strings) = col.as_any().downcast_ref::<arrow_array::StringArray>() else {
                return Some(Err(Error::Msg(format!(
                    "column `{}`: not a string array",
                    self.column
                ))));
            };
            self.batch = Some(strings.clone());
            self.next_in_batch = 0;
        }
    }
}

/// The records of a source file: JSONL lines (text in `field`) or Parquet rows (text in
/// `column`), after the first `skip`.
fn open_docs(
    path: &Path,
    field: &str,
    column: &str,
    skip: u64,
) -> Result<Box<dyn Iterator<Item = Result<DocRecord>> + Send>> {
    if is_parquet(path) {
        return Ok(Box::new(ParquetText::open(path, column, skip)?));
    }
    let field = field.to_string();
    let it = JsonlReader::open(path)?.skip_while(move |r| r.line <= skip).map(move |rec| {
        let text = match rec.value {
            Ok(v) => match v.get(&field) {
                Some(Value::String(t)) => Ok(t.clone()),
                Some(_) => Err(format!("{field}_not_string")),
                None => Err(format!("missing_{field}")),
            },
            Err(_) => Err("invalid_json".to_string()),
        };
        Ok((rec.line, text))
    });
    Ok(Box::new(it))
}

/// Parse `NAME:WEIGHT:PATH` (the path may itself contain `:`).
pub fn parse_source(spec: &str) -> Result<Source> {
    let bad = |m: &str| Error::Config {
        file: "<resolved>".into(),
        msg: format!("`data` entry `{spec}`: {m}"),
    };
    let mut it = spec.splitn(3, ':');
    let (Some(name), Some(w), Some(path)) = (it.next(), it.next(), it.next()) else {
        return Err(bad("expected NAME:WEIGHT:PATH"));
    };
    let weight: f64 = w.parse().map_err(|_| bad("WEIGHT is not a number"))?;
    if !(weight > 0.0 && weight.is_finite()) {
        return Err(bad("WEIGHT must be > 0"));
    }
    if name.is_empty() || path.is_empty() {
        return Err(bad("empty NAME or PATH"));
    }
    let path = PathBuf::from(path);
    if !path.exists() {
        return Err(bad(&format!("file {} does not exist", path.display())));
    }
    Ok(Source { name: name.into(), weight, path })
}

/// Position of one source's stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourcePos {
    /// Passes completed over the file.
    pub epoch: u64,
    /// Last line read (1-based; 0 = none).
    pub line: u64,
    /// Tokens read but not yet used.
    pub buf: Vec<u32>,
    /// Bad records skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
}

struct SourceStream {
    src: Source,
    reader: Option<Box<dyn Iterator<Item = Result<DocRecord>> + Send>>,
    pos: SourcePos,
    heldout_cutoff: u64,
}

/// The packed, weighted token stream.
pub struct Mixture {
    sources: Vec<SourceStream>,
    text_field: String,
    text_column: String,
    heldout_docs: usize,
    seq_len: usize,
}

/// Tokenize one document: `[BOS] ids EOS`.
fn doc_tokens(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    if let Some(b) = tok.bos_id() {
        ids.push(b);
    }
    ids.extend(tok.encode(text, false).map_err(|e| Error::Msg(e.to_string()))?);
    if let Some(&e) = tok.eos_ids().first() {
        ids.push(e);
    }
    Ok(ids)
}

impl Mixture {
    /// Open the sources at positions `pos` (empty: start); `text_field` names the JSONL field
    /// and `text_column` the Parquet column holding the text.
    pub fn open(
        sources: Vec<Source>,
        text_field: &str,
        text_column: &str,
        heldout_docs: usize,
        seq_len: usize,
        pos: Vec<SourcePos>,
    ) -> Result<Self> {
        if sources.is_empty() {
            return Err(Error::Config {
                file: "<resolved>".into(),
                msg: "`data` needs at least one NAME:WEIGHT:PATH".into(),
            });
        }
        let mut out = Vec::new();
        for (i, src) in sources.into_iter().enumerate() {
            let pos = pos.get(i).cloned().unwrap_or_default();
            let heldout_cutoff = heldout_cutoff(&src.path, heldout_docs, text_field, text_column)?;
            out.push(SourceStream { src, reader: None, pos, heldout_cutoff });
        }
        Ok(Mixture {
            sources: out,
            text_field: text_field.into(),
            text_column: text_column.into(),
            heldout_docs,
            seq_len,
        })
    }

    /// Current positions (for the checkpoint).
    pub fn positions(&self) -> Vec<SourcePos> {
        self.sources.iter().map(|s| s.pos.clone()).collect()
    }

    /// Source names.
    pub fn names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.src.name.clone()).collect()
    }

    /// Read the next training document of source `i` (skipping held-out and bad ones), restarting
    /// the file at its end.
    fn next_doc(&mut self, i: usize, tok: &Tokenizer) -> Result<Vec<u32>> {
        let heldout = self.heldout_docs;
        let s = &mut self.sources[i];
        let mut restarted_empty = false;
        loop {
            if s.reader.is_none() {
                // Skip what an earlier run (or this epoch) already consumed.
                s.reader =
                    Some(open_docs(&s.src.path, &self.text_field, &self.text_column, s.pos.line)?);
            }
            let reader = s.reader.as_mut().expect("opened above");
            let Some(rec) = reader.next().transpose()? else {
                if s.pos.line == 0 || restarted_empty {
                    return Err(Error::Data {
                        path: s.src.path.clone(),
                        line: 0,
                        msg: format!("no usable training document (after {heldout} held out)"),
                    });
                }
                s.pos.epoch += 1;
                s.pos.line = 0;
                s.reader = None;
                restarted_empty = true;
                continue;
            };
            let (line, text) = rec;
            s.pos.line = line;
            let text = match text {
                Ok(t) => t,
                Err(reason) => {
                    *s.pos.skipped.entry(reason).or_default() += 1;
                    continue;
                }
            };
            if text.is_empty() {
                *s.pos.skipped.entry("empty_text".into()).or_default() += 1;
                continue;
            }
            if line <= s.heldout_cutoff {
                continue;
            }
            return doc_tokens(tok, &text);
        }
    }

    /// The next `seq_len + 1` tokens, from a source drawn by weight.
    pub fn next_window(
        &mut self,
        rng: &mut ChaCha8Rng,
        tok: &Tokenizer,
    ) -> Result<(usize, Vec<u32>)> {
        let total: f64 = self.sources.iter().map(|s| s.src.weight).sum();
        let mut x = rng.gen::<f64>() * total;
        let mut i = self.sources.len() - 1;
        for (k, s) in self.sources.iter().enumerate() {
            if x < s.src.weight {
                i = k;
                break;
            }
            x -= s.src.weight;
        }
        let need = self.seq_len + 1;
        while self.sources[i].pos.buf.len() < need {
            let d = self.next_doc(i, tok)?;
            self.sources[i].pos.buf.extend(d);
        }
        let buf = &mut self.sources[i].pos.buf;
        let window = buf[..need].to_vec();
        // Keep the last token: it is the first input of the next window.
        buf.drain(..need - 1);
        Ok((i, window))
    }

    /// Held-out windows of each source: the first `heldout_docs` usable documents packed into at
    /// most `max_windows` windows of `seq_len + 1` tokens.
    pub fn heldout_windows(
        &self,
        tok: &Tokenizer,
        max_windows: usize,
    ) -> Result<Vec<Vec<Vec<u32>>>> {
        let mut out = vec![];
        for s in &self.sources {
            let mut buf = vec![];
            let mut docs = 0;
            for rec in open_docs(&s.src.path, &self.text_field, &self.text_column, 0)? {
                if docs >= self.heldout_docs {
                    break;
                }
                let Ok(t) = rec?.1 else { continue };
                if t.is_empty() {
                    continue;
                }
                docs += 1;
                buf.extend(doc_tokens(tok, &t)?);
            }
            let need = self.seq_len + 1;
            let mut windows = vec![];
            let mut start = 0;
            while start + need <= buf.len() && windows.len() < max_windows {
                windows.push(buf[start..start + need].to_vec());
                start += need - 1;
            }
            if windows.is_empty() && buf.len() >= 2 {
                windows.push(buf.clone());
            }
            out.push(windows);
        }
        Ok(out)
    }
}

/// Line of the `heldout`-th usable document (non-empty string `field`) of `path`; 0 when
/// nothing is held out. Lines up to it are never trained on.
fn heldout_cutoff(path: &Path, heldout: usize, field: &str, column: &str) -> Result<u64> {
    let mut docs = 0;
    let mut last = 0;
    if heldout == 0 {
        return Ok(0);
    }
    for rec in open_docs(path, field, column, 0)? {
        let (line, text) = rec?;
        if matches!(text, Ok(t) if !t.is_empty()) {
            docs += 1;
            last = line;
            if docs >= heldout {
                break;
            }
        }
    }
    Ok(last)
}

/// Mean NLL over next tokens of `windows` (no gradient), and the number of tokens.
pub fn mean_nll(
    model: &Llama,
    windows: &[Vec<u32>],
    batch: usize,
    pad_id: u32,
    chunk: usize,
    device: &Device,
) -> Result<(f64, f64)> {
    let mut nll = 0.0;
    let mut n = 0.0;
    for b in windows.chunks(batch.max(1)) {
        let (ids, mask) = pad_batch(b, pad_id, device)?;
        let t = ids.dim(1)?;
        if t < 2 {
            continue;
        }
        let inp = ids.narrow(1, 0, t - 1)?;
        let tgt = ids.narrow(1, 1, t - 1)?;
        let m = mask.narrow(1, 1, t - 1)?;
        let lp = token_logprobs(model, &inp, Some(&mask.narrow(1, 0, t - 1)?), &tgt, chunk)
            .map_err(|e| Error::Msg(e.to_string()))?
            .detach();
        nll -= (lp.to_dtype(DType::F32)? * &m)?.sum_all()?.to_scalar::<f32>()? as f64;
        n += m.sum_all()?.to_scalar::<f32>()? as f64;
    }
    Ok((nll / n.max(1.0), n))
}

/// Loss of one packed micro-batch: mean next-token NLL over all its tokens.
fn lm_loss(
    model: &Llama,
    windows: &[Vec<u32>],
    chunk: usize,
    device: &Device,
) -> Result<(Tensor, f64)> {
    let (ids, _) = pad_batch(windows, 0, device)?;
    let t = ids.dim(1)?;
    let inp = ids.narrow(1, 0, t - 1)?;
    let tgt = ids.narrow(1, 1, t - 1)?;
    let lp =
        token_logprobs(model, &inp, None, &tgt, chunk).map_err(|e| Error::Msg(e.to_string()))?;
    let n = lp.elem_count() as f64;
    Ok((lp.to_dtype(DType::F32)?.mean_all()?.neg()?, n))
}

/// Run (or resume) a pretraining run; `progress` is called after every step.
pub fn run(
    cfg: &PretrainConfig,
    git_commit: Option<String>,
    mut progress: impl FnMut(&StepReport),
) -> Result<PathBuf> {
    let sources = cfg.data.iter().map(|s| parse_source(s)).collect::<Result<Vec<_>>>()?;
    if cfg.seq_len < 2 {
        return Err(Error::Config {
            file: "<resolved>".into(),
            msg: "`seq-len` must be >= 2".into(),
        });
    }
    let tok_path = cfg.common.tokenizer_path()?;
    let tok = if tok_path.is_dir() {
        Tokenizer::from_dir(&tok_path)
    } else {
        Tokenizer::from_file(&tok_path)
    }
    .map_err(|e| Error::Msg(e.to_string()))?;
    let mut tr = Trainer::open(
        "pretrain",
        &cfg.common,
        to_json(cfg),
        &to_toml(cfg)?,
        cfg.seq_len,
        0,
        git_commit,
    )?;
    if tok.vocab_size() > tr.model_config().vocab_size {
        return Err(Error::Msg(format!(
            "tokenizer {} has {} tokens but the model's vocab_size is {}",
            tok_path.display(),
            tok.vocab_size(),
            tr.model_config().vocab_size
        )));
    }
    let pos: Vec<SourcePos> = match &tr.resumed_data {
        Value::Null => vec![],
        v => serde_json::from_value(v.get("sources").cloned().unwrap_or(Value::Null))
            .map_err(|e| Error::Msg(format!("bad data position in checkpoint: {e}")))?,
    };
    let mut mix = Mixture::open(
        sources,
        &cfg.text_field,
        &cfg.text_column,
        cfg.heldout_docs,
        cfg.seq_len,
        pos,
    )?;
    let heldout = mix.heldout_windows(&tok, cfg.heldout_windows)?;
    let names = mix.names();
    let chunk = cfg.common.logprob_chunk;
    let mb = cfg.common.micro_batch_size;
    let n_micro = cfg.common.batch_size.div_ceil(mb);
    let pad = tok.pad_id();
    let eval = |model: &Llama, device: &Device| -> Result<Map<String, Value>> {
        let mut m = Map::new();
        let (mut tot, mut cnt) = (0.0, 0.0);
        for (name, w) in names.iter().zip(&heldout) {
            if w.is_empty() {
                continue;
            }
            let (nll, n) = mean_nll(model, w, mb, pad, chunk, device)?;
            m.insert(format!("heldout_ppl_{name}"), Value::from(nll.exp()));
            tot += nll * n;
            cnt += n;
        }
        if cnt > 0.0 {
            m.insert("heldout_ppl".into(), Value::from((tot / cnt).exp()));
        }
        Ok(m)
    };
    let mut last = Map::new();
    while !tr.done() {
        let before = serde_json::json!({ "sources": mix.positions() });
        let bs = cfg.common.batch_size;
        let device = tr.device.clone();
        let mut counts = vec![0u64; names.len()];
        let res = tr.train_step(n_micro, |model, rng, i| {
            let this = mb.min(bs - i * mb);
            let mut windows = Vec::with_capacity(this);
            for _ in 0..this {
                let (src, w) = mix.next_window(rng, &tok)?;
                counts[src] += 1;
                windows.push(w);
            }
            let (loss, _n) = lm_loss(model, &windows, chunk, &device)?;
            Ok(MicroLoss { loss, weight: this as f64 / bs as f64, metrics: Map::new() })
        });
        let mut m = match res {
            Ok(m) => m,
            Err(e @ Error::NonFinite { .. }) => return Err(tr.save_last_good(e, before)),
            Err(e) => return Err(e),
        };
        m.insert("tokens".into(), Value::from((bs * cfg.seq_len) as u64));
        for (name, c) in names.iter().zip(&counts) {
            m.insert(format!("seqs_{name}"), Value::from(*c));
        }
        let step = tr.step();
        let eval_now =
            tr.done() || (cfg.common.eval_every > 0 && step % cfg.common.eval_every == 0);
        if eval_now {
            m.extend(eval(&tr.model, &tr.device)?);
        }
        tr.log(&m)?;
        progress(&StepReport { step, total: cfg.common.steps, metrics: m.clone() });
        if tr.done() || step % cfg.common.save_every == 0 {
            tr.save(serde_json::json!({ "sources": mix.positions() }), &m)?;
        }
        last = m;
    }
    let _ = last;
    tr.plot()?;
    Ok(tr.run_dir.clone())
}
