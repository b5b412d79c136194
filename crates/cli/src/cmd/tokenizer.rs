//! `mathforge tokenizer train|encode`: train the digit-splitting byte-level BPE tokenizer of
//! DeepSeekMath (§2.3 reuses DeepSeek LLM's tokenizer, which splits numbers into digits) on text
//! or JSONL files, and inspect how a tokenizer splits text. Library: `mathforge_model::tokenizer`;
//! usage: docs/generate.md.
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use mathforge_io::jsonl::{open_read, JsonlReader};
use mathforge_model::tokenizer::{train_bpe, BpeTrainConfig, Tokenizer};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Verbs of `mathforge tokenizer`.
#[derive(Subcommand)]
pub enum Command {
    /// Train a byte-level BPE tokenizer (every digit its own token) and save it in the HF layout.
    #[command(after_help = "\
Examples:
  mathforge tokenizer train --input corpus/round-1/*.jsonl.zst --vocab-size 32000 --out runs/tiny/tokenizer
  mathforge tokenizer train --input notes.txt --vocab-size 4096 --out /tmp/tok

Inputs: .jsonl/.jsonl.gz/.jsonl.zst files (the --text-field of each record is one document) or any
other file read as plain text, one document per line. Writes tokenizer.json (loads in Python
`tokenizers.Tokenizer.from_file`) and tokenizer_config.json (special tokens and the DeepSeekMath
chat template, for `transformers.AutoTokenizer`). Special tokens: <｜begin▁of▁sentence｜> (id 0),
<｜end▁of▁sentence｜> (id 1), <｜pad｜> (id 2).")]
    Train(TrainArgs),
    /// Show the ids and tokens a tokenizer produces for a text.
    #[command(after_help = "\
Examples:
  mathforge tokenizer encode --tokenizer runs/tiny/tokenizer --text 'x = 12345'
  mathforge tokenizer encode --tokenizer runs/tiny/base/tokenizer.json --text 'hi' --no-special")]
    Encode(EncodeArgs),
}

/// Flags of `mathforge tokenizer train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Training files (.jsonl[.gz|.zst] or plain text).
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Vocabulary size including the 256 byte symbols and the 3 special tokens.
    #[arg(long)]
    pub vocab_size: usize,
    /// Output folder (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Field of JSONL records that holds the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Minimum pair frequency for a merge.
    #[arg(long, default_value_t = 2)]
    pub min_frequency: u64,
    /// Longest token, in byte-level characters.
    #[arg(long, default_value_t = 32)]
    pub max_token_length: usize,
    /// model_max_length written to tokenizer_config.json.
    #[arg(long)]
    pub model_max_length: Option<usize>,
}

/// Flags of `mathforge tokenizer encode`.
#[derive(Args)]
pub struct EncodeArgs {
    /// A tokenizer.json, or a folder holding one (with tokenizer_config.json).
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Text to encode.
    #[arg(long)]
    pub text: String,
    /// Do not add special tokens (BOS).
    #[arg(long)]
    pub no_special: bool,
}

/// Run `mathforge tokenizer`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Train(a) => train(a),
        Command::Encode(a) => encode(a),
    }
}

/// Load a tokenizer from a folder or a tokenizer.json file.
pub fn load(path: &Path) -> anyhow::Result<Tokenizer> {
    Ok(if path.is_dir() { Tokenizer::from_dir(path)? } else { Tokenizer::from_file(path)? })
}

fn encode(a: EncodeArgs) -> anyhow::Result<()> {
    let tok = load(&a.tokenizer)?;
    let ids = tok.encode(&a.text, !a.no_special)?;
    let toks: Vec<String> = ids.iter().map(|&i| tok.id_to_token(i).unwrap_or_else(|| "?".into())).collect();
    println!("{}", serde_json::json!({ "ids": ids, "tokens": toks, "count": ids.len() }));
    Ok(())
}

/// Documents of one input file, streamed. Reading errors are parked in `err` and end the stream
/// (the trainer's iterator cannot fail), then reported after training returns.
fn documents(
    path: PathBuf,
    field: String,
    err: Arc<Mutex<Option<anyhow::Error>>>,
    docs: Arc<Mutex<(u64, u64)>>,
) -> anyhow::Result<Box<dyn Iterator<Item = String> + Send>> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let is_jsonl = name.ends_with(".jsonl") || name.contains(".jsonl.") || name.ends_with(".json");
    if is_jsonl {
        let reader = JsonlReader::open(&path)?;
        Ok(Box::new(reader.map_while(move |rec| {
            let value = match rec.value {
                Ok(v) => v,
                Err(e) => {
                    *err.lock().ok()? = Some(e.into());
                    return None;
                }
            };
            match value.get(&field).and_then(|v| v.as_str()) {
                Some(s) => {
                    docs.lock().ok()?.0 += 1;
                    Some(s.to_string())
                }
                None => {
                    // A record without the text field is skipped and counted, not fatal.
                    docs.lock().ok()?.1 += 1;
                    Some(String::new())
                }
            }
        })))
    } else {
        let reader = open_read(&path)?;
        let p = path.clone();
        Ok(Box::new(reader.lines().map_while(move |line| match line {
            Ok(l) => {
                docs.lock().ok()?.0 += 1;
                Some(l)
            }
            Err(e) => {
                *err.lock().ok()? = Some(anyhow::Error::new(e).context(format!("reading {}", p.display())));
                None
            }
        })))
    }
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    for p in &a.input {
        if !p.is_file() {
            bail!("{}: no such file", p.display());
        }
    }
    let err = Arc::new(Mutex::new(None));
    let counts = Arc::new(Mutex::new((0u64, 0u64)));
    let mut streams = Vec::new();
    for p in &a.input {
        streams.push(documents(p.clone(), a.text_field.clone(), err.clone(), counts.clone())?);
    }
    let cfg = BpeTrainConfig {
        vocab_size: a.vocab_size,
        min_frequency: a.min_frequency,
        max_token_length: Some(a.max_token_length),
    };
    let pb = crate::util::progress(0, "documents");
    let pb2 = pb.clone();
    let texts = streams.into_iter().flatten().inspect(move |_| pb2.inc(1));
    let tok = train_bpe(texts, &cfg)?;
    pb.finish_and_clear();
    if let Some(e) = err.lock().ok().and_then(|mut g| g.take()) {
        return Err(e.context("reading the training files"));
    }
    let (docs, missing) = counts.lock().map(|g| *g).unwrap_or((0, 0));
    if docs == 0 {
        bail!("no training text found in {} file(s) (JSONL field `{}`)", a.input.len(), a.text_field);
    }
    tok.save_dir(&a.out, a.model_max_length).with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "wrote {} (vocab {}, trained on {docs} documents{})",
        a.out.join("tokenizer.json").display(),
        tok.vocab_size(),
        if missing > 0 { format!(", skipped {missing} records without `{}`", a.text_field) } else { String::new() }
    );
    Ok(())
}
