//! Training-step benchmark (issue 2, "Performance"): forward + backward of the next-token loss on
//! a ~20M-parameter Llama, batch 8 x 256 tokens by default. Run through `scripts/bench/train_step`,
//! which runs PyTorch on the same checkpoint in the same run and prints the ratio.
//!
//! ```text
//! cargo run --release -p mathforge-model --example bench_train -- init DIR
//! cargo run --release -p mathforge-model --example bench_train -- run DIR [--batch 8] [--seq 256] [--steps 5] [--warmup 1] [--chunk 256]
//! cargo run --release -p mathforge-model --features cuda --example bench_train -- run DIR --device cuda --dtype bf16
//! ```
//! `run` prints one JSON line: tokens/s, seconds per step, loss and peak RSS (VmHWM).
use mathforge_model::candle_core::{DType, Device, Tensor};
use mathforge_model::candle_nn::VarBuilder;
use mathforge_model::checkpoint::{self, SaveOptions};
use mathforge_model::logprob::next_token_logprobs;
use mathforge_model::{Config, Llama};
use rand::{Rng, SeedableRng};
use std::time::Instant;

const CONFIG: &str = r#"{"model_type":"llama","hidden_size":512,"intermediate_size":1376,
"num_hidden_layers":4,"num_attention_heads":8,"num_key_value_heads":8,"vocab_size":8000,
"max_position_embeddings":512,"rms_norm_eps":1e-5,"tie_word_embeddings":false,
"bos_token_id":1,"eos_token_id":2}"#;

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} expects a number, got {v}")))
        .unwrap_or(default)
}

fn flag_str<'a>(args: &'a [String], name: &str, default: &'a str) -> &'a str {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(|s| s.as_str()).unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() -> mathforge_model::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, dir) = match (args.first(), args.get(1)) {
        (Some(m), Some(d)) => (m.as_str(), std::path::PathBuf::from(d)),
        _ => {
            eprintln!("usage: bench_train init DIR | bench_train run DIR [--batch N --seq N --steps N --warmup N --chunk N]");
            std::process::exit(2);
        }
    };
    let dev = mathforge_model::device::parse_device(flag_str(&args, "--device", "cpu"))?;
    let dtype = match flag_str(&args, "--dtype", "f32") {
        "bf16" => DType::BF16,
        "f16" => DType::F16,
        _ => DType::F32,
    };
    if mode == "init" {
        let cfg = Config::from_json_str(CONFIG)?;
        let (m, _) = checkpoint::init_model(&cfg, 0, DType::F32, &Device::Cpu)?;
        checkpoint::save(&m, &dir, &SaveOptions::default())?;
        eprintln!("wrote {} ({} parameters)", dir.display(), cfg.num_parameters());
        return Ok(());
    }
    let (batch, seq) = (flag(&args, "--batch", 8), flag(&args, "--seq", 256));
    let (steps, warmup, chunk) = (flag(&args, "--steps", 5), flag(&args, "--warmup", 1), flag(&args, "--chunk", 256));
    let (cfg, vm) = checkpoint::load_varmap(&dir, dtype, &dev)?;
    let model = Llama::new(&cfg, VarBuilder::from_varmap(&vm, dtype, &dev))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let ids: Vec<u32> = (0..batch * seq).map(|_| rng.gen_range(3..cfg.vocab_size as u32)).collect();
    let ids = Tensor::from_vec(ids, (batch, seq), &dev)?;
    let mut times = Vec::new();
    let mut loss_v = 0.0;
    for step in 0..warmup + steps {
        let t0 = Instant::now();
        let lp = next_token_logprobs(&model, &ids, None, chunk)?;
        let loss = lp.mean_all()?.neg()?;
        let grads = loss.backward()?;
        // Touch one gradient so nothing is optimized away.
        let g = grads.get(model.lm_head_weight()).map(|g| g.dims().len()).unwrap_or(0);
        assert_eq!(g, 2, "lm_head has a gradient");
        // to_scalar copies to the host, which also waits for the GPU to finish the step.
        loss_v = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        drop(grads);
        if step >= warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    let tokens = (batch * seq) as f64;
    println!(
        "{{\"impl\":\"mathforge\",\"device\":\"{:?}\",\"tokens_per_s\":{:.1},\"step_s\":{:.4},\"loss\":{:.4},\"peak_rss_mb\":{:.1},\"threads\":{}}}",
        dev.location(),
        tokens / mean,
        mean,
        loss_v,
        peak_rss_mb(),
        rayon_threads()
    );
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
