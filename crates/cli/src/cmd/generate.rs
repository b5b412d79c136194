//! `mathforge generate`: sample completions from a model folder (Hugging Face layout) with the
//! batched KV-cache sampler of `mathforge_model::generate`: greedy (DeepSeekMath's evaluation
//! setting, §5.2) or temperature / top-k / top-p sampling with `n` samples per prompt (GRPO
//! rollouts, maj@k). One prompt from the command line, or a JSONL file of prompts. See
//! docs/generate.md.
use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use mathforge_io::jsonl::{JsonlReader, JsonlWriter};
use mathforge_model::chat::{self, Message};
use mathforge_model::checkpoint;
use mathforge_model::generate::{generate, Completion, GenerateOptions};
use mathforge_model::sampling::SamplingParams;
use mathforge_model::tokenizer::Tokenizer;
use mathforge_model::DeviceSpec;
use std::path::PathBuf;

/// Flags of `mathforge generate`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  mathforge generate --model runs/tiny/sft --prompt 'What is 2+3?' --chat
  mathforge generate --model runs/tiny/sft --prompt 'What is 2+3?' --chat --n 4 --temperature 0.7 --top-p 0.95 --seed 1
  mathforge generate --model runs/tiny/base --input prompts.jsonl --output out.jsonl --max-new-tokens 256 --stop '\\n\\n'

--input lines are {\"prompt\": \"...\"} (with --chat wrapped as `User: {prompt}\\n\\nAssistant:`) or
{\"messages\": [{\"role\": \"user\", \"content\": \"...\"}, ...]} (always rendered with the
DeepSeekMath chat format). Each output line: prompt_index, sample_index, prompt, text, finish_reason
(stop|eos|length), token_ids, logprobs; other input fields (e.g. id) are copied.
Temperature 0 (the default) is greedy decoding.")]
pub struct Args {
    /// Model folder: config.json, *.safetensors, tokenizer.json (+ tokenizer_config.json,
    /// generation_config.json).
    #[arg(long)]
    pub model: PathBuf,
    /// One prompt (repeat for several); printed results go to stdout.
    #[arg(long, conflicts_with = "input")]
    pub prompt: Vec<String>,
    /// JSONL file of prompts (`prompt` or `messages` per line).
    #[arg(long, requires = "output")]
    pub input: Option<PathBuf>,
    /// JSONL file for the completions of --input (written atomically).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Wrap each prompt in the DeepSeekMath-Instruct chat format.
    #[arg(long)]
    pub chat: bool,
    /// Samples per prompt.
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// Softmax temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling mass (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Most tokens to generate per sample.
    #[arg(long, default_value_t = 512)]
    pub max_new_tokens: usize,
    /// Seed of the per-sequence RNG streams.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop string (repeatable); the text is cut before it. `\n` and `\t` are unescaped.
    #[arg(long)]
    pub stop: Vec<String>,
    /// Keep generating past EOS (until --max-new-tokens or a stop string).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Most sequences decoded together.
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    /// Decode f32 models on the CPU with the fast decoder (`false`: candle's ops).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub fast_cpu: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Compute dtype: f32, bf16 or f16 (default: f32 on CPU, bf16 on CUDA).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Print one JSON object per completion instead of plain text (with --prompt).
    #[arg(long)]
    pub json: bool,
}

/// `\n`, `\t` and `\\` as typed in a shell, so `--stop '\n\n'` means two newlines.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// One prompt with the input record it came from (for --input).
struct PromptRec {
    text: String,
    extra: serde_json::Map<String, serde_json::Value>,
}

fn read_prompts(path: &PathBuf, chat_wrap: bool, eos_text: &str) -> anyhow::Result<Vec<PromptRec>> {
    let mut out = Vec::new();
    for rec in JsonlReader::open(path)? {
        let line = rec.line;
        let v = rec.value?;
        let serde_json::Value::Object(mut m) = v else {
            bail!("{}:{line}: expected a JSON object", path.display());
        };
        let text = if let Some(p) = m.remove("prompt") {
            let p = p.as_str().with_context(|| format!("{}:{line}: field `prompt` must be a string", path.display()))?;
            if chat_wrap {
                chat::prompt(p)
            } else {
                p.to_string()
            }
        } else if let Some(msgs) = m.remove("messages") {
            let msgs: Vec<Message> = serde_json::from_value(msgs).with_context(|| {
                format!("{}:{line}: field `messages` must be a list of {{role, content}}", path.display())
            })?;
            chat::render(&msgs, eos_text, true)
        } else {
            bail!("{}:{line}: expected a `prompt` or `messages` field", path.display());
        };
        out.push(PromptRec { text, extra: m });
    }
    Ok(out)
}

/// Run `mathforge generate`.
pub fn run(a: Args) -> anyhow::Result<()> {
    if a.prompt.is_empty() && a.input.is_none() {
        bail!("give --prompt TEXT or --input prompts.jsonl --output out.jsonl");
    }
    let spec: DeviceSpec = a.device.parse()?;
    let device = spec.device()?;
    let dtype = match &a.dtype {
        Some(d) => checkpoint::parse_dtype(d)?,
        None => spec.default_dtype(),
    };
    let tok_path = a.model.join("tokenizer.json");
    let mut tokenizer = Tokenizer::from_dir(&a.model)?;
    let model = checkpoint::load(&a.model, dtype, &device).with_context(|| format!("loading {}", a.model.display()))?;
    checkpoint::check_tokenizer_vocab(&tok_path, model.config())?;
    if tokenizer.eos_ids().is_empty() {
        tokenizer.set_eos_ids(model.config().eos_token_ids.clone());
    }
    let eos_text = tokenizer.eos_ids().first().and_then(|&i| tokenizer.id_to_token(i)).unwrap_or_default();

    let prompts: Vec<PromptRec> = match &a.input {
        Some(p) => read_prompts(p, a.chat, &eos_text)?,
        None => a
            .prompt
            .iter()
            .map(|p| PromptRec {
                text: if a.chat { chat::prompt(p) } else { p.clone() },
                extra: Default::default(),
            })
            .collect(),
    };
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| tokenizer.encode(&p.text, true)).collect::<Result<_, _>>()?;
    let params = SamplingParams {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        max_new_tokens: a.max_new_tokens,
        stop: a.stop.iter().map(|s| unescape(s)).collect(),
        n: a.n,
        seed: a.seed,
    };
    let opts = GenerateOptions { max_batch: a.max_batch, eos_ids: None, ignore_eos: a.ignore_eos, fast_cpu: a.fast_cpu };

    let total = (prompts.len() * a.n) as u64;
    let pb = crate::util::progress(total, "sequences");
    if a.input.is_none() {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let start = std::time::Instant::now();
    let (out, stats) = generate(&model, &tokenizer, &ids, &params, &opts, |p| pb.set_position(p.finished as u64))?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(
        "generated {} tokens in {secs:.2}s ({:.1} tok/s), {} forward calls, {} forward rows",
        stats.generated_tokens,
        stats.generated_tokens as f64 / secs.max(1e-9),
        stats.forward_calls,
        stats.forward_rows
    );

    let record = |p: &PromptRec, c: &Completion| {
        let mut m = p.extra.clone();
        m.insert("prompt_index".into(), c.prompt_index.into());
        m.insert("sample_index".into(), c.sample_index.into());
        m.insert("prompt".into(), p.text.clone().into());
        m.insert("text".into(), c.text.clone().into());
        m.insert("finish_reason".into(), c.finish_reason.to_string().into());
        m.insert("num_tokens".into(), c.token_ids.len().into());
        m.insert("token_ids".into(), c.token_ids.clone().into());
        m.insert("logprobs".into(), c.logprobs.clone().into());
        serde_json::Value::Object(m)
    };
    match &a.output {
        Some(path) => {
            let mut w = JsonlWriter::create(path)?;
            for (p, cs) in prompts.iter().zip(&out) {
                for c in cs {
                    w.write(&record(p, c))?;
                }
            }
            let n = w.count();
            w.finish()?;
            eprintln!(
                "wrote {n} completions to {} ({} tokens, {:.1} tok/s)",
                path.display(),
                stats.generated_tokens,
                stats.generated_tokens as f64 / secs.max(1e-9)
            );
        }
        None => {
            for (p, cs) in prompts.iter().zip(&out) {
                for c in cs {
                    if a.json {
                        println!("{}", record(p, c));
                    } else {
                        if cs.len() > 1 || prompts.len() > 1 {
                            println!(
                                "--- prompt {} sample {} ({}, {} tokens)",
                                c.prompt_index,
                                c.sample_index,
                                c.finish_reason,
                                c.token_ids.len()
                            );
                        }
                        println!("{}", c.text);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn unescapes_shell_sequences() {
        assert_eq!(unescape(r"\n\nUser:"), "\n\nUser:");
        assert_eq!(unescape(r"a\tb\\n\q"), "a\tb\\n\\q");
        assert_eq!(unescape("trailing\\"), "trailing\\");
    }
}
