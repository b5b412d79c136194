//! The loop every trainer shares: model + AdamW + schedule + gradient accumulation + clipping +
//! NaN guard + checkpoints with exact resume + `metrics.jsonl` + plots, over a run folder
//! `runs/<name>/` (DESIGN.md "Files on disk": `config.toml`, `metrics.jsonl`,
//! `checkpoints/step-N/`, `plots/*.png`).
//!
//! A stage (pretrain, SFT, GRPO) supplies only its micro-batch losses and data position; this
//! module owns the rest, so "killing a run and starting it again with the same command resumes
//! it" holds for every stage: [`Trainer::open`] finds the newest complete checkpoint and restores
//! weights, optimizer, schedule position, RNG and data position.
//!
//! Memory: before anything is allocated, [`estimate_memory`] adds weights, fp32 master copies,
//! fp32 moments, fp32 accumulated gradients and an activation estimate, and the run is refused
//! with that breakdown when it exceeds the available memory (`MemAvailable` on Linux, or
//! `max-memory-mib`).
use crate::checkpoint::{self, Meta, RngState};
use crate::metrics::MetricsLog;
use crate::optim::{finite_loss, AdamW, AdamWConfig, GradAccumulator};
use crate::schedule::{Schedule, ScheduleKind};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use mathforge_model::{checkpoint as mckpt, Config as ModelConfig, Llama};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Settings common to every trainer. Keys equal the long CLI flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct CommonConfig {
    /// Run folder (`runs/<name>`); an existing run is resumed from its newest checkpoint.
    pub out: String,
    /// Initial model: a Hugging Face model folder (`config.json` + safetensors).
    pub init: Option<String>,
    /// Train from scratch with this `config.json` (random init from `seed`) instead of `init`.
    pub model_config: Option<String>,
    /// `tokenizer.json` or a folder holding one (default: the `init` folder).
    pub tokenizer: Option<String>,
    /// Seed of init, data order and sampling.
    pub seed: u64,
    /// Optimizer steps.
    pub steps: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// cosine, linear, constant or multi-step.
    pub schedule: ScheduleKind,
    /// Linear warmup steps.
    pub warmup_steps: u64,
    /// Final rate as a fraction of the peak (cosine / linear).
    pub min_lr_ratio: f64,
    /// Sequences per optimizer step.
    pub batch_size: usize,
    /// Sequences per forward/backward (gradients are accumulated up to `batch-size`).
    pub micro_batch_size: usize,
    /// Clip the global gradient norm to this (0: no clipping).
    pub max_grad_norm: f64,
    /// AdamW beta1.
    pub beta1: f64,
    /// AdamW beta2.
    pub beta2: f64,
    /// AdamW epsilon.
    pub adam_eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Weights dtype: f32 or bf16 (AdamW keeps fp32 masters for bf16).
    pub dtype: String,
    /// cpu, cuda or cuda:N.
    pub device: String,
    /// Save a checkpoint every N steps (and at the end).
    pub save_every: u64,
    /// Keep only the newest N checkpoints (0: all).
    pub keep_checkpoints: usize,
    /// Run the stage's evaluation every N steps (0: only at the end).
    pub eval_every: u64,
    /// Refuse to start when the memory estimate exceeds this many MiB (default: MemAvailable).
    pub max_memory_mib: Option<u64>,
    /// Positions per lm_head chunk in the log-prob computation.
    pub logprob_chunk: usize,
    /// Recompute each decoder layer in the backward pass instead of keeping its activations
    /// (transformers' `gradient_checkpointing`): about one extra forward of compute for a peak
    /// activation memory of one layer plus one `[B,T,H]` tensor per layer.
    pub gradient_checkpointing: bool,
}

impl Default for CommonConfig {
    fn default() -> Self {
        CommonConfig {
            out: "runs/train".into(),
            init: None,
            model_config: None,
            tokenizer: None,
            seed: 0,
            steps: 100,
            lr: 1e-3,
            schedule: ScheduleKind::Cosine,
            warmup_steps: 10,
            min_lr_ratio: 0.1,
            batch_size: 16,
            micro_batch_size: 16,
            max_grad_norm: 1.0,
            beta1: 0.9,
            beta2: 0.95,
            adam_eps: 1e-8,
            weight_decay: 0.1,
            dtype: "f32".into(),
            device: "cpu".into(),
            save_every: 100,
            keep_checkpoints: 2,
            eval_every: 0,
            max_memory_mib: None,
            logprob_chunk: 256,
            gradient_checkpointing: false,
        }
    }
}

impl CommonConfig {
    /// Validate ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |k: &str, m: &str| {
            Err(Error::Config { file: "<resolved>".into(), msg: format!("`{k}` {m}") })
        };
        if self.init.is_none() && self.model_config.is_none() {
            return bad("init", "or `model-config` is required");
        }
        if self.init.is_some() && self.model_config.is_some() {
            return bad("init", "and `model-config` are exclusive");
        }
        if self.batch_size == 0 || self.micro_batch_size == 0 {
            return bad("batch-size", "and `micro-batch-size` must be > 0");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be > 0");
        }
        if self.save_every == 0 {
            return bad("save-every", "must be > 0");
        }
        self.dtype()?;
        Ok(())
    }

    /// The weights dtype.
    pub fn dtype(&self) -> Result<DType> {
        match self.dtype.as_str() {
            "f32" | "float32" => Ok(DType::F32),
            "bf16" | "bfloat16" => Ok(DType::BF16),
            "f16" | "float16" => Ok(DType::F16),
            other => Err(Error::Config {
                file: "<resolved>".into(),
                msg: format!("`dtype` `{other}` (f32, bf16, f16)"),
            }),
        }
    }

    /// The schedule of this run.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            lr: self.lr,
            kind: self.schedule,
            warmup_steps: self.warmup_steps,
            total_steps: self.steps,
            min_lr_ratio: self.min_lr_ratio,
        }
    }

    /// AdamW settings.
    pub fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.adam_eps,
            weight_decay: self.weight_decay,
            decay_all: false,
        }
    }

    /// The tokenizer location: `tokenizer`, else the `init` folder.
    pub fn tokenizer_path(&self) -> Result<PathBuf> {
        match (&self.tokenizer, &self.init) {
            (Some(t), _) => Ok(PathBuf::from(t)),
            (None, Some(i)) => Ok(PathBuf::from(i)),
            _ => Err(Error::Config {
                file: "<resolved>".into(),
                msg: "`tokenizer` is required with `model-config`".into(),
            }),
        }
    }
}

/// Memory a run needs, by part (bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    /// Model weights in their dtype.
    pub weights: u64,
    /// fp32 master copies (0 for fp32 weights).
    pub master: u64,
    /// fp32 first and second moments.
    pub moments: u64,
    /// fp32 accumulated gradients plus the backward pass's own gradients.
    pub grads: u64,
    /// Activations kept for backward of one micro-batch (rough: per layer ~ 16 x hidden + 3 x
    /// intermediate + heads x seq values per token, plus the logits).
    pub activations: u64,
    /// Extra frozen copies (reference model in GRPO, ...).
    pub extra_models: u64,
}

impl MemoryEstimate {
    /// Sum.
    pub fn total(&self) -> u64 {
        self.weights
            + self.master
            + self.moments
            + self.grads
            + self.activations
            + self.extra_models
    }
    /// Human breakdown.
    pub fn describe(&self) -> String {
        let m = |b: u64| b / (1 << 20);
        format!(
            "weights {} + master {} + moments {} + grads {} + activations {} + frozen models {} MiB",
            m(self.weights),
            m(self.master),
            m(self.moments),
            m(self.grads),
            m(self.activations),
            m(self.extra_models)
        )
    }
}

/// Estimate the memory of training `cfg` with micro-batches of `micro_batch` x `seq_len` tokens
/// in `dtype`, plus `frozen_copies` inference-only copies of the weights. With `checkpointing`
/// only one layer's activations are alive at a time, plus each layer's `[B,T,H]` input. The
/// log-probs hold one `[logprob_chunk, V]` block of logits at a time, forward and backward
/// (`mathforge_model::logprob`), counted three times for its softmax and gradient temporaries.
pub fn estimate_memory(
    cfg: &ModelConfig,
    dtype: DType,
    micro_batch: usize,
    seq_len: usize,
    frozen_copies: usize,
    checkpointing: bool,
    logprob_chunk: usize,
) -> MemoryEstimate {
    let p = cfg.num_parameters() as u64;
    let el = dtype.size_in_bytes() as u64;
    let tokens = (micro_batch * seq_len) as u64;
    let per_layer = 16 * cfg.hidden_size as u64
        + 3 * cfg.intermediate_size as u64
        + (cfg.num_heads * seq_len) as u64;
    let act_el = el.max(4);
    let layers = if checkpointing {
        per_layer + cfg.hidden_size as u64 * cfg.num_layers as u64
    } else {
        per_layer * cfg.num_layers as u64
    };
    let logits = 3 * tokens.min(logprob_chunk.max(1) as u64) * cfg.vocab_size as u64;
    let activations = (tokens * layers + logits) * act_el;
    MemoryEstimate {
        weights: p * el,
        master: if dtype == DType::F32 { 0 } else { 4 * p },
        moments: 8 * p,
        grads: 4 * p + p * el,
        activations,
        extra_models: frozen_copies as u64 * p * el,
    }
}

/// Available memory in bytes (Linux `MemAvailable`), if known.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Refuse when `est` exceeds the limit (`max_memory_mib`, else MemAvailable on CPU).
pub fn check_memory(
    est: &MemoryEstimate,
    max_memory_mib: Option<u64>,
    device: &Device,
) -> Result<()> {
    let have = match (max_memory_mib, device) {
        (Some(m), _) => Some(m << 20),
        (None, Device::Cpu) => available_memory(),
        _ => None,
    };
    if let Some(have) = have {
        if est.total() > have {
            return Err(Error::OutOfMemory {
                need_mib: est.total() >> 20,
                have_mib: have >> 20,
                detail: est.describe(),
            });
        }
    }
    Ok(())
}

/// What the trainer reports to the caller's progress callback after each step.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Steps completed.
    pub step: u64,
    /// Total steps of the run.
    pub total: u64,
    /// The metrics logged for this step.
    pub metrics: Map<String, Value>,
}

/// One micro-batch's contribution: the loss to backpropagate, its weight in the step's average
/// (e.g. its share of the step's tokens), and metrics to average into the step's record.
pub struct MicroLoss {
    /// Scalar loss.
    pub loss: Tensor,
    /// Weight of this micro-batch's gradient in the step.
    pub weight: f64,
    /// Extra metrics (averaged over micro-batches, weighted by `weight`).
    pub metrics: Map<String, Value>,
}

/// A model being trained in a run folder.
pub struct Trainer {
    /// The resolved common settings.
    pub cfg: CommonConfig,
    /// Stage name (`pretrain`, `sft`, `grpo`).
    pub stage: String,
    /// The model (its weights are the `VarMap`'s variables).
    pub model: Llama,
    /// The variables.
    pub varmap: VarMap,
    /// Optimizer.
    pub opt: AdamW,
    /// Schedule.
    pub schedule: Schedule,
    /// The run's random generator (data order, sampling).
    pub rng: ChaCha8Rng,
    /// Device.
    pub device: Device,
    /// The run folder.
    pub run_dir: PathBuf,
    /// Metrics log.
    pub metrics: MetricsLog,
    /// The resolved stage config as JSON (stored in checkpoints).
    pub config_json: Value,
    /// Data position restored from the checkpoint (`Value::Null` on a fresh run).
    pub resumed_data: Value,
    /// `tokenizer.json` copied into every checkpoint, when known.
    pub tokenizer_json: Option<PathBuf>,
    /// Git commit of the code (stored in checkpoints).
    pub git_commit: Option<String>,
}

impl Trainer {
    /// Open (or resume) a run. `seq_len` and `frozen_copies` feed the memory estimate;
    /// `config_toml` is the resolved stage config, written to `<run>/config.toml`.
    pub fn open(
        stage: &str,
        cfg: &CommonConfig,
        config_json: Value,
        config_toml: &str,
        seq_len: usize,
        frozen_copies: usize,
        git_commit: Option<String>,
    ) -> Result<Trainer> {
        cfg.validate()?;
        let dtype = cfg.dtype()?;
        let spec: mathforge_model::DeviceSpec =
            cfg.device.parse().map_err(|e: mathforge_model::Error| Error::Config {
                file: "<resolved>".into(),
                msg: e.to_string(),
            })?;
        let device = spec.device().map_err(|e| Error::Msg(e.to_string()))?;
        let model_cfg = match (&cfg.init, &cfg.model_config) {
            (Some(dir), _) => ModelConfig::from_file(Path::new(dir).join("config.json")),
            (None, Some(file)) => ModelConfig::from_file(file),
            _ => unreachable!("validated"),
        }
        .map_err(|e| Error::Msg(e.to_string()))?;
        let est = estimate_memory(
            &model_cfg,
            dtype,
            cfg.micro_batch_size,
            seq_len,
            frozen_copies,
            cfg.gradient_checkpointing,
            cfg.logprob_chunk,
        );
        check_memory(&est, cfg.max_memory_mib, &device)?;

        let run_dir = PathBuf::from(&cfg.out);
        std::fs::create_dir_all(&run_dir).map_err(|e| Error::io(&run_dir, e))?;
        let latest = checkpoint::latest(&run_dir)?;
        let varmap = match &cfg.init {
            Some(dir) => {
                mckpt::load_varmap(dir, dtype, &device).map_err(|e| Error::Msg(e.to_string()))?.1
            }
            None => mckpt::init_varmap(&model_cfg, cfg.seed, dtype, &device)
                .map_err(|e| Error::Msg(e.to_string()))?,
        };
        let mut model = Llama::new(&model_cfg, VarBuilder::from_varmap(&varmap, dtype, &device))
            .map_err(|e| Error::Msg(e.to_string()))?;
        model.set_gradient_checkpointing(cfg.gradient_checkpointing);
        let mut opt = AdamW::new(named_vars(&varmap)?, cfg.adamw())?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed_da7a);
        let mut resumed_data = Value::Null;
        let resume_step = match &latest {
            Some(dir) => {
                let meta = checkpoint::restore(dir, &mut opt, &device)?;
                if meta.stage != stage {
                    return Err(Error::Checkpoint {
                        path: dir.clone(),
                        msg: format!(
                            "is a `{}` checkpoint, this run is `{stage}`: use another `out`",
                            meta.stage
                        ),
                    });
                }
                rng = meta.rng.restore()?;
                resumed_data = meta.data;
                tracing::info!(step = meta.step, dir = %dir.display(), "resuming");
                Some(meta.step)
            }
            None => None,
        };
        crate::config::write_raw(config_toml, &run_dir.join("config.toml"))?;
        let metrics =
            MetricsLog::open(&run_dir, resume_step.or(Some(0)).filter(|_| resume_step.is_some()))?;
        let tokenizer_json =
            cfg.tokenizer_path()
                .ok()
                .map(|p| if p.is_dir() { p.join("tokenizer.json") } else { p });
        Ok(Trainer {
            cfg: cfg.clone(),
            stage: stage.into(),
            model,
            varmap,
            opt,
            schedule: cfg.schedule(),
            rng,
            device,
            run_dir,
            metrics,
            config_json,
            resumed_data,
            tokenizer_json: tokenizer_json.filter(|p| p.exists()),
            git_commit,
        })
    }

    /// Steps completed so far.
    pub fn step(&self) -> u64 {
        self.opt.steps_taken()
    }

    /// True when the run has reached `steps`.
    pub fn done(&self) -> bool {
        self.step() >= self.cfg.steps
    }

    /// The model config.
    pub fn model_config(&self) -> &ModelConfig {
        self.model.config()
    }

    /// One optimizer step: `micro(i)` computes micro-batch `i` of `n_micro`; gradients are
    /// accumulated with each micro-batch's weight, clipped, and applied with the scheduled rate.
    /// A non-finite loss or gradient norm aborts before the update (the model is still the last
    /// good state; the caller saves it with [`Trainer::save_last_good`]).
    pub fn train_step(
        &mut self,
        n_micro: usize,
        mut micro: impl FnMut(&Llama, &mut ChaCha8Rng, usize) -> Result<MicroLoss>,
    ) -> Result<Map<String, Value>> {
        let step = self.step();
        let t0 = std::time::Instant::now();
        let mut acc = GradAccumulator::new(&self.opt);
        let mut loss_sum = 0.0;
        let mut wsum = 0.0;
        let mut extra: Map<String, Value> = Map::new();
        for i in 0..n_micro {
            let ml = micro(&self.model, &mut self.rng, i)?;
            let l = finite_loss(&ml.loss, step)?;
            loss_sum += l * ml.weight;
            wsum += ml.weight;
            for (k, v) in &ml.metrics {
                if let Some(x) = v.as_f64() {
                    let prev = extra.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                    extra.insert(k.clone(), Value::from(prev + x * ml.weight));
                }
            }
            acc.add(self.model.backward(&ml.loss).map_err(|e| Error::Msg(e.to_string()))?, ml.weight)?;
        }
        let mut grads = acc.take();
        let norm = grads.clip(self.cfg.max_grad_norm, step)?;
        let lr = self.schedule.lr_at(step);
        self.opt.step(&grads, lr)?;
        let mut m = Map::new();
        m.insert("loss".into(), Value::from(loss_sum / wsum.max(f64::MIN_POSITIVE)));
        m.insert("lr".into(), Value::from(lr));
        m.insert("grad_norm".into(), Value::from(norm));
        for (k, v) in extra {
            if let Some(x) = v.as_f64() {
                m.insert(k, Value::from(x / wsum.max(f64::MIN_POSITIVE)));
            }
        }
        m.insert("step_seconds".into(), Value::from(t0.elapsed().as_secs_f64()));
        Ok(m)
    }

    /// Append a metrics record for the current step.
    pub fn log(&mut self, record: &Map<String, Value>) -> Result<()> {
        let s = self.step();
        self.metrics.log(s, record)
    }

    /// Save a checkpoint of the current state with data position `data`; prunes old ones.
    pub fn save(&mut self, data: Value, last_metrics: &Map<String, Value>) -> Result<PathBuf> {
        let meta = Meta {
            stage: self.stage.clone(),
            step: self.step(),
            rng: RngState::capture(&self.rng),
            data,
            config: self.config_json.clone(),
            git_commit: self.git_commit.clone(),
            metrics: Value::Object(last_metrics.clone()),
        };
        let model = &self.model;
        let tok = self.tokenizer_json.clone();
        let dtype = self.cfg.dtype()?;
        let dir = checkpoint::save(&self.run_dir, &[], &self.opt, &meta, |d| {
            let opts = mckpt::SaveOptions { dtype, max_shard_bytes: None };
            mckpt::save(model, d, &opts).map_err(|e| Error::Msg(e.to_string()))?;
            if let Some(t) = tok {
                std::fs::copy(&t, d.join("tokenizer.json")).map_err(|e| Error::io(&t, e))?;
                for extra in ["tokenizer_config.json", "special_tokens_map.json"] {
                    if let Some(src) = t.parent().map(|p| p.join(extra)).filter(|p| p.exists()) {
                        std::fs::copy(&src, d.join(extra)).map_err(|e| Error::io(&src, e))?;
                    }
                }
            }
            Ok(())
        })?;
        checkpoint::prune(&self.run_dir, self.cfg.keep_checkpoints)?;
        Ok(dir)
    }

    /// After a NaN/inf: save the last good state (the update was not applied) with the data
    /// position of the start of the failed step, and turn the error into one that says where.
    pub fn save_last_good(&mut self, err: Error, data_before: Value) -> Error {
        let m = Map::new();
        match self.save(data_before, &m) {
            Ok(dir) => Error::Msg(format!(
                "{err}; stopped. The last good state (step {}) is saved in {}. Lower `lr`, check the data, \
                 or resume from it with the same command",
                self.step(),
                dir.display()
            )),
            Err(e2) => Error::Msg(format!("{err}; saving the last good state failed too: {e2}")),
        }
    }

    /// Plot every metric into `<run>/plots/`.
    pub fn plot(&self) -> Result<Vec<PathBuf>> {
        crate::metrics::plot_metrics(self.metrics.path(), &self.run_dir.join("plots"))
    }
}

/// The `VarMap`'s variables with their names.
pub fn named_vars(vm: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = vm.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
    Ok(data.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Right-pad token rows into `[B, T]` ids (u32) and a `[B, T]` f32 mask.
pub fn pad_batch(rows: &[Vec<u32>], pad_id: u32, device: &Device) -> Result<(Tensor, Tensor)> {
    let t = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * t);
    let mut mask = Vec::with_capacity(rows.len() * t);
    for r in rows {
        ids.extend_from_slice(r);
        mask.extend(std::iter::repeat_n(1f32, r.len()));
        ids.extend(std::iter::repeat_n(pad_id, t - r.len()));
        mask.extend(std::iter::repeat_n(0f32, t - r.len()));
    }
    Ok((
        Tensor::from_vec(ids, (rows.len(), t), device)?,
        Tensor::from_vec(mask, (rows.len(), t), device)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vocab: usize) -> ModelConfig {
        ModelConfig::from_json_str(&format!(
            r#"{{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":4,
               "num_attention_heads":4,"num_key_value_heads":4,"vocab_size":{vocab},"max_position_embeddings":256}}"#
        ))
        .unwrap()
    }

    /// Checkpointing shrinks the activation estimate, the logits term is bounded by the log-prob
    /// chunk (not by the tokens of the micro-batch), and the model state does not depend on either.
    #[test]
    fn memory_estimate_follows_checkpointing_and_the_logprob_chunk() {
        let c = cfg(32_000);
        let plain = estimate_memory(&c, DType::F32, 16, 256, 1, false, 256);
        let ckpt = estimate_memory(&c, DType::F32, 16, 256, 1, true, 256);
        // 4096 tokens; per layer 16*64 + 3*128 + 4 heads*256 = 2432 values per token: four layers
        // without checkpointing, one layer plus a 64-wide input per layer with it.
        assert_eq!(plain.activations - ckpt.activations, 4096 * (4 * 2432 - (2432 + 4 * 64)) * 4);
        assert_eq!(ckpt.total() - ckpt.activations, plain.total() - plain.activations);
        // 4096 tokens: a 256-position chunk holds 1/16 of the logits a whole-batch one would.
        let whole = estimate_memory(&c, DType::F32, 16, 256, 1, true, 1 << 20);
        assert_eq!(whole.activations - ckpt.activations, 3 * (4096 - 256) * 32_000 * 4);
        // bf16 weights: fp32 masters appear, activations stay fp32-sized.
        let bf = estimate_memory(&c, DType::BF16, 16, 256, 1, true, 256);
        assert_eq!(bf.master, 4 * c.num_parameters() as u64);
        assert_eq!(bf.activations, ckpt.activations);
    }
}
