//! `mathforge model init|info`: create a randomly initialized model of any size in the Hugging Face
//! layout (for training from scratch, DeepSeekMath §2.3 / the tiny CPU recipe), and inspect a model
//! directory (parameters, dtype, memory for inference and for AdamW training). See docs/model.md.
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use mathforge_model::candle_core::{DType, Device};
use mathforge_model::checkpoint::{self, SaveOptions};
use mathforge_model::Config;
use std::path::PathBuf;

/// Verbs of `mathforge model`.
#[derive(Subcommand)]
pub enum Command {
    /// Randomly initialize a model from a config.json and write it in the HF layout.
    #[command(after_help = "\
Example:
  mathforge model init --config configs/tiny-llama.json --out runs/tiny/init --seed 0
  # then: mathforge model info runs/tiny/init

The config is a Hugging Face config.json (model_type llama or qwen2). Weights follow transformers'
init: normal(0, initializer_range) for linear/embedding weights, ones for norms, zeros for biases.")]
    Init(InitArgs),
    /// Show size, dtype and memory estimates of a model directory.
    #[command(after_help = "\
Example:
  mathforge model info runs/tiny/init
  mathforge model info --json deepseek-math-7b-base")]
    Info(InfoArgs),
}

/// Flags of `mathforge model init`.
#[derive(Args)]
pub struct InitArgs {
    /// HF config.json describing the architecture and sizes.
    #[arg(long)]
    pub config: PathBuf,
    /// Output model directory (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the weight initialization.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// dtype of the stored weights: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Copy this tokenizer.json into the model directory (its vocabulary must fit vocab_size).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Shard the weights into files of at most this size (e.g. 2GB, 500MB); default one file.
    #[arg(long)]
    pub max_shard_size: Option<String>,
    /// Overwrite an existing model in --out.
    #[arg(long)]
    pub force: bool,
}

/// Flags of `mathforge model info`.
#[derive(Args)]
pub struct InfoArgs {
    /// Model directory (config.json + safetensors).
    pub dir: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run `mathforge model`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Init(a) => init(a),
        Command::Info(a) => info(a),
    }
}

/// Parse `2GB`, `500MB`, `10KB` or a plain byte count (decimal units, as transformers does).
fn parse_size(s: &str) -> anyhow::Result<usize> {
    let t = s.trim().to_ascii_uppercase();
    let (num, mult) = if let Some(n) = t.strip_suffix("GB") {
        (n, 1_000_000_000)
    } else if let Some(n) = t.strip_suffix("MB") {
        (n, 1_000_000)
    } else if let Some(n) = t.strip_suffix("KB") {
        (n, 1_000)
    } else {
        (t.as_str(), 1)
    };
    let v: f64 = num.trim().parse().with_context(|| format!("--max-shard-size `{s}`: expected e.g. 2GB, 500MB"))?;
    if v <= 0.0 {
        bail!("--max-shard-size `{s}` must be positive");
    }
    Ok((v * mult as f64) as usize)
}

fn init(a: InitArgs) -> anyhow::Result<()> {
    let cfg = Config::from_file(&a.config)?;
    let dtype = checkpoint::parse_dtype(&a.dtype)?;
    if dtype == DType::F64 {
        bail!("--dtype f64 is not a checkpoint dtype transformers loads by default; use f32, bf16 or f16");
    }
    if a.out.join("config.json").exists() && !a.force {
        bail!("{}: a model already exists there (pass --force to overwrite)", a.out.display());
    }
    if let Some(tok) = &a.tokenizer {
        checkpoint::check_tokenizer_vocab(tok, &cfg)?;
    }
    let max_shard_bytes = a.max_shard_size.as_deref().map(parse_size).transpose()?;
    // Init in f32 (the RNG stream does not depend on the stored dtype), convert on save.
    let (model, _vars) = checkpoint::init_model(&cfg, a.seed, DType::F32, &Device::Cpu)?;
    checkpoint::save(&model, &a.out, &SaveOptions { dtype, max_shard_bytes })
        .with_context(|| format!("writing {}", a.out.display()))?;
    if let Some(tok) = &a.tokenizer {
        let bytes = std::fs::read(tok).with_context(|| format!("reading {}", tok.display()))?;
        mathforge_io::atomic::write_atomic(a.out.join("tokenizer.json"), &bytes)?;
    }
    println!(
        "wrote {} ({} {}, {} parameters, {}, seed {})",
        a.out.display(),
        cfg.arch.model_type(),
        describe(&cfg),
        human_count(cfg.num_parameters()),
        checkpoint::dtype_name(dtype),
        a.seed
    );
    Ok(())
}

fn describe(cfg: &Config) -> String {
    format!(
        "{} layers x {} hidden, {} heads / {} kv heads",
        cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads
    )
}

fn human_count(n: usize) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn human_bytes(b: f64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    if b >= GIB {
        format!("{:.2} GiB", b / GIB)
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}

fn info(a: InfoArgs) -> anyhow::Result<()> {
    let cfg = Config::from_file(&a.dir)?;
    let infos = checkpoint::read_tensor_infos(&a.dir)?;
    checkpoint::validate(&a.dir, &cfg, &infos)?;
    let params = cfg.num_parameters();
    let mut stored: Vec<String> = infos.iter().map(|i| i.dtype.clone()).collect();
    stored.sort();
    stored.dedup();
    let stored_bytes: usize = infos
        .iter()
        .filter(|i| !i.name.ends_with("rotary_emb.inv_freq"))
        .map(|i| {
            let e = match i.dtype.as_str() {
                "F64" => 8,
                "F32" => 4,
                _ => 2,
            };
            i.shape.iter().product::<usize>() * e
        })
        .sum();
    let embed = cfg.vocab_size * cfg.hidden_size;
    // KV cache: k and v per layer per kv head per position.
    let kv_per_token = 2 * cfg.num_layers * cfg.num_kv_heads * cfg.head_dim;
    let p = params as f64;
    let inf_f32 = p * 4.0;
    let inf_bf16 = p * 2.0;
    // AdamW in f32: weights + gradients + two moments = 16 bytes/parameter (activations extra).
    let train = p * 16.0;
    let tokenizer = a.dir.join("tokenizer.json");
    let tok_vocab = if tokenizer.is_file() { Some(checkpoint::check_tokenizer_vocab(&tokenizer, &cfg)?) } else { None };
    if a.json {
        let j = serde_json::json!({
            "dir": a.dir,
            "model_type": cfg.arch.model_type(),
            "parameters": params,
            "embedding_parameters": embed,
            "num_layers": cfg.num_layers,
            "hidden_size": cfg.hidden_size,
            "intermediate_size": cfg.intermediate_size,
            "num_heads": cfg.num_heads,
            "num_kv_heads": cfg.num_kv_heads,
            "head_dim": cfg.head_dim,
            "vocab_size": cfg.vocab_size,
            "tokenizer_vocab_size": tok_vocab,
            "max_position_embeddings": cfg.max_position_embeddings,
            "tie_word_embeddings": cfg.tie_word_embeddings,
            "stored_dtypes": stored,
            "stored_bytes": stored_bytes,
            "files": checkpoint::weight_files(&a.dir)?.len(),
            "memory_bytes": {
                "inference_f32": inf_f32,
                "inference_bf16": inf_bf16,
                "kv_cache_per_token_f32": kv_per_token * 4,
                "kv_cache_per_token_bf16": kv_per_token * 2,
                "adamw_training_f32_without_activations": train,
            }
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }
    println!("model            {}", a.dir.display());
    println!("architecture     {} ({})", cfg.arch.model_type(), cfg.arch.hf_class());
    println!("shape            {}, intermediate {}, head_dim {}", describe(&cfg), cfg.intermediate_size, cfg.head_dim);
    println!(
        "vocab            {}{}{}",
        cfg.vocab_size,
        if cfg.tie_word_embeddings { " (tied embeddings)" } else { "" },
        tok_vocab.map(|n| format!(", tokenizer {n}")).unwrap_or_default()
    );
    println!("context          {} positions (rope theta {}, linear scale {})", cfg.max_position_embeddings, cfg.rope_theta, cfg.rope_scaling_factor);
    println!("parameters       {} ({} total, {} in the embedding)", human_count(params), params, human_count(embed));
    println!("stored           {} in {} file(s), {}", stored.join("+"), checkpoint::weight_files(&a.dir)?.len(), human_bytes(stored_bytes as f64));
    println!("memory inference {} in f32, {} in bf16, + KV cache {} per 1k tokens per sequence (bf16)", human_bytes(inf_f32), human_bytes(inf_bf16), human_bytes((kv_per_token * 2 * 1000) as f64));
    println!("memory training  {} for AdamW in f32 (weights + grads + 2 moments), plus activations", human_bytes(train));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("500mb").unwrap(), 500_000_000);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("lots").is_err());
    }
}
