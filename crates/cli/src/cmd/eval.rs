//! `mathforge eval`: evaluate a model on a math benchmark (issue #3, "Evaluation harness";
//! DeepSeekMath §2.2 / §3.2 / §5). Thin glue: flags (optionally from `--config FILE.toml` whose
//! keys equal the long flags; flags win) → `mathforge_tasks` (data, prompts, grading) →
//! `mathforge_eval` (backend, metrics, reports) → `DIR/samples.jsonl`, `summary.json`,
//! `summary.md`, `config.toml` (resolved), and the markdown summary on stdout.
use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use mathforge_eval::http::{Api, HttpBackend, HttpConfig};
use mathforge_eval::local::LocalBackend;
use mathforge_eval::python::{python_available, PythonConfig};
use mathforge_eval::responses::ResponsesBackend;
use mathforge_eval::{evaluate, write_run, Backend, EvalConfig, Progress};
use mathforge_tasks::arith::{self, ArithTask};
use mathforge_tasks::{Bench, BenchTask, PromptFormat, Task};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Flags of `mathforge eval` (all optional here so a `--config` file can supply them).
#[derive(ClapArgs, Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[command(after_help = "\
Examples:
  # grade responses produced elsewhere (JSONL with `id` and `response`/`responses`)
  mathforge eval --data ../shared/data/benchmarks/gsm8k_test.jsonl --responses out.jsonl --out runs/eval/gsm8k
  # a model served by vLLM / llama.cpp (OpenAI-compatible), 4-shot Minerva prompt, maj@16
  mathforge eval --data math500_test.jsonl --endpoint http://127.0.0.1:8000/v1 --api-model deepseek-math-7b-base \\
      --prompt-format few-shot --n 16 --temperature 0.7 --out runs/eval/math500
  # tool-integrated reasoning through chat completions
  mathforge eval --data gsm8k_test.jsonl --endpoint http://127.0.0.1:8000 --api chat --api-model m --prompt-format tir --out runs/eval/tir
  # a local mathforge checkpoint, greedy, on issue 5's held-out arithmetic problems
  mathforge eval --data 'arith:split=heldout,steps=2,n=200' --model runs/tiny/sft --prompt-format few-shot --out runs/eval/arith
  # procedural held-out arithmetic problems (issue 5), written as GSM8K-format JSONL
  mathforge eval --data 'arith:split=heldout,steps=3,n=200,seed=0' --write-data heldout.jsonl

--data takes a benchmark JSONL (.gz/.zst ok; format detected from its fields unless --bench) or an
`arith:` spec (keys split, steps, n, seed, max_value, heldout_percent). Benchmarks: gsm8k, math,
math500, cmath, mgsm-zh, gaokao-mathcloze, gaokao-mathqa, sat, ocw, mmlu-stem.
Prompt formats: few-shot (8-shot GSM8K Q:/A: or 4-shot Minerva), instruct (zero-shot, \\boxed{}),
pot (program of thought, run with python3), tir (tool-integrated, at most 2 code executions).")]
pub struct Args {
    /// TOML file whose keys equal the long flags (e.g. `n = 8`, `prompt-format = \"tir\"`).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Benchmark JSONL file, or an `arith:` generator spec.
    #[arg(long, value_name = "FILE|SPEC")]
    pub data: Option<String>,
    /// Benchmark format (detected from the record fields when omitted).
    #[arg(long, value_name = "NAME")]
    pub bench: Option<String>,
    /// Grade responses from this JSONL file (`id` + `response` or `responses`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["endpoint", "model"])]
    pub responses: Option<PathBuf>,
    /// OpenAI-compatible server: root, `/v1` base or full `.../completions` URL.
    #[arg(long, value_name = "URL", requires = "api_model", conflicts_with = "model")]
    pub endpoint: Option<String>,
    /// The `model` name sent to the endpoint.
    #[arg(long, value_name = "NAME")]
    pub api_model: Option<String>,
    /// `completions` (raw prompt; default) or `chat` (messages).
    #[arg(long, value_name = "API")]
    pub api: Option<String>,
    /// Environment variable holding an API key (sent as a Bearer token).
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Requests in flight at once (HTTP; default 8).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Per-request timeout in seconds (HTTP; default 600).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Retries of a failed request (HTTP 5xx/429/timeout; default 4, exponential backoff).
    #[arg(long)]
    pub retries: Option<u32>,
    /// A local mathforge checkpoint directory (HF layout).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Device for --model: cpu, cuda, cuda:N (default cpu).
    #[arg(long)]
    pub device: Option<String>,
    /// Sequences decoded together with --model (default 64).
    #[arg(long)]
    pub max_batch: Option<usize>,
    /// few-shot | instruct | pot | tir (default instruct).
    #[arg(long, value_name = "FORMAT")]
    pub prompt_format: Option<String>,
    /// Samples per problem; >1 reports maj@k and pass@k (default 1).
    #[arg(long)]
    pub n: Option<usize>,
    /// Sampling temperature (default 0 = greedy).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass (default 1 = off).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Completion token limit per generation round (default 1024).
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Evaluate only the first N problems.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Sampling seed (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Python interpreter for pot/tir (default python3).
    #[arg(long, value_name = "EXE")]
    pub python: Option<String>,
    /// Wall-clock limit of one program in seconds (default 10).
    #[arg(long)]
    pub python_timeout: Option<f64>,
    /// Code executions per sample in tir mode (default 2, as DeepSeek-Math).
    #[arg(long)]
    pub tool_rounds: Option<usize>,
    /// Skip malformed data/response lines (counted and listed in the summary).
    #[arg(long)]
    #[serde(default)]
    pub skip_bad: bool,
    /// Write the (generated or read) problems as GSM8K-format JSONL to FILE.
    #[arg(long, value_name = "FILE")]
    pub write_data: Option<PathBuf>,
    /// Output directory: samples.jsonl, summary.json, summary.md, config.toml.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Fill every unset flag from the config file (flags win).
fn merge(mut a: Args) -> Result<Args> {
    let Some(path) = a.config.clone() else { return Ok(a) };
    let value = mathforge_eval::config::read_toml(&path)?;
    let f: Args = serde_json::from_value(value).with_context(|| format!("{}: invalid eval config", path.display()))?;
    macro_rules! fill {
        ($($field:ident),*) => { $( if a.$field.is_none() { a.$field = f.$field; } )* };
    }
    fill!(data, bench, responses, endpoint, api_model, api, api_key_env, concurrency, timeout, retries, model, device, max_batch,
        prompt_format, n, temperature, top_p, max_tokens, limit, seed, python, python_timeout, tool_rounds,
        write_data, out);
    a.skip_bad |= f.skip_bad;
    Ok(a)
}

/// Run `mathforge eval`.
pub fn run(args: Args) -> Result<()> {
    let args = merge(args)?;
    let Some(data) = args.data.clone() else { bail!("--data FILE (or an arith: spec) is required; see --help") };

    // The problems.
    let (task, skipped): (Box<dyn Task>, Vec<String>) = match arith::parse_spec(&data)? {
        Some((cfg, split, n)) => (Box::new(ArithTask::new(&cfg, split, n)?), Vec::new()),
        None => {
            let bench = args.bench.as_deref().map(Bench::from_name).transpose()?;
            let t = BenchTask::open(std::path::Path::new(&data), bench, args.skip_bad)
                .with_context(|| format!("reading benchmark {data}"))?;
            let skipped = t.skipped.clone();
            (Box::new(t), skipped)
        }
    };
    if !skipped.is_empty() {
        eprintln!("skipped {} bad data records (first: {})", skipped.len(), skipped[0]);
    }
    if let Some(path) = &args.write_data {
        let mut w = mathforge_io::jsonl::JsonlWriter::create(path)?;
        for rec in arith::to_gsm8k_records(task.examples()) {
            w.write(&rec)?;
        }
        w.finish()?;
        eprintln!("wrote {} problems to {}", task.examples().len(), path.display());
    }

    // The backend.
    let mut backend_skipped = Vec::new();
    let backend: Box<dyn Backend> = if let Some(path) = &args.responses {
        let b = ResponsesBackend::open(path, args.skip_bad).with_context(|| format!("reading responses {}", path.display()))?;
        backend_skipped = b.skipped.clone();
        Box::new(b)
    } else if let Some(url) = &args.endpoint {
        let model = args.api_model.clone().context("--endpoint needs --api-model NAME")?;
        let mut c = HttpConfig::new(url.clone(), model);
        c.api = match args.api.as_deref().unwrap_or("completions") {
            "completions" => Api::Completions,
            "chat" => Api::Chat,
            other => bail!("--api must be completions or chat, got {other:?}"),
        };
        if let Some(v) = args.concurrency {
            c.concurrency = v.max(1);
        }
        if let Some(v) = args.timeout {
            c.timeout_s = v;
        }
        if let Some(v) = args.retries {
            c.max_retries = v;
        }
        if let Some(var) = &args.api_key_env {
            c.api_key = Some(std::env::var(var).with_context(|| format!("--api-key-env: ${var} is not set"))?);
        }
        Box::new(HttpBackend::new(c))
    } else if let Some(dir) = &args.model {
        let device = args.device.clone().unwrap_or_else(|| "cpu".into());
        let b = LocalBackend::open(dir, &device, args.max_batch.unwrap_or(64))
            .with_context(|| format!("loading the checkpoint {}", dir.display()))?;
        Box::new(b)
    } else if args.write_data.is_some() {
        return Ok(());
    } else {
        bail!("choose a backend: --responses FILE, --endpoint URL --api-model NAME, or --model DIR");
    };
    let Some(out) = args.out.clone() else { bail!("--out DIR is required") };

    let mut cfg = EvalConfig::default();
    if let Some(f) = &args.prompt_format {
        cfg.prompt_format = PromptFormat::from_name(f)?;
    }
    macro_rules! set {
        ($($flag:ident => $field:ident),*) => { $( if let Some(v) = args.$flag { cfg.$field = v; } )* };
    }
    set!(n => n, temperature => temperature, top_p => top_p, max_tokens => max_tokens, seed => seed, tool_rounds => tool_rounds);
    cfg.limit = args.limit;
    cfg.python = PythonConfig {
        python: args.python.clone().unwrap_or_else(|| "python3".into()),
        timeout_s: args.python_timeout.unwrap_or(PythonConfig::default().timeout_s),
        ..PythonConfig::default()
    };
    if matches!(cfg.prompt_format, PromptFormat::Pot | PromptFormat::Tir) && !python_available(&cfg.python.python) {
        bail!("--prompt-format {} runs code, but `{}` does not start (set --python)", cfg.prompt_format.name(), cfg.python.python);
    }

    let total = cfg.limit.map_or(task.examples().len(), |l| l.min(task.examples().len()));
    let bar = crate::util::progress(total as u64, "eval");
    let on_progress = |p: Progress| bar.set_position(p.done as u64);
    let mut run = evaluate(task.as_ref(), backend.as_ref(), &cfg, &on_progress)?;
    bar.finish_and_clear();
    run.summary.skipped_records = skipped.into_iter().chain(backend_skipped).collect();

    write_run(&out, &run).with_context(|| format!("writing results to {}", out.display()))?;
    let mut resolved = args.clone();
    resolved.config = None;
    resolved.api_key_env = None;
    let toml_text = mathforge_eval::config::to_toml(&serde_json::to_value(&resolved)?)?;
    mathforge_io::atomic::write_atomic(out.join("config.toml"), toml_text.as_bytes())?;
    print!("{}", run.summary.markdown());
    Ok(())
}
