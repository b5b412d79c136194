//! Checkpoints with exact resume: `<run>/checkpoints/step-N/` holds
//!
//! * `model.safetensors`: the weights under their Hugging Face names (the model's `VarMap` names),
//!   in the model's dtype, plus whatever the model writer adds (`config.json`, tokenizer) through
//!   the `extra` callback, so a checkpoint opens in `transformers` (DESIGN.md "Files on disk");
//! * `optimizer.safetensors`: AdamW's fp32 moments and fp32 master weights;
//! * `meta.json`: step, sampler RNG state, data position, resolved config, git commit, last metrics.
//!
//! The directory is written under a temporary name and renamed into place last, so a run killed
//! mid-save leaves the previous checkpoint as the latest complete one (the same idea as
//! `mathforge_io::atomic` for single files). Resume loads the weights, then the optimizer (which
//! resets non-fp32 variables from its fp32 masters), the RNG and the data position; the
//! `exact_resume` test checks that 2N steps equal N steps + save + load + N steps bit for bit.
use crate::optim::AdamW;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// File names inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Optimizer state file.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Metadata file; written last inside the temporary directory.
pub const META_FILE: &str = "meta.json";

/// The full state of a ChaCha8 generator (seed, stream, position), so sampling continues where it
/// stopped. `word_pos` is a decimal string because JSON numbers cannot hold a u128.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The 32-byte seed, hex.
    pub seed: String,
    /// Stream id.
    pub stream: u64,
    /// Word position in the stream, decimal.
    pub word_pos: String,
}

impl RngState {
    /// Capture a generator.
    pub fn capture(rng: &ChaCha8Rng) -> Self {
        let seed = rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
        RngState { seed, stream: rng.get_stream(), word_pos: rng.get_word_pos().to_string() }
    }

    /// Rebuild the generator.
    pub fn restore(&self) -> Result<ChaCha8Rng> {
        use rand::SeedableRng;
        let bad = || Error::Msg(format!("invalid RNG state in meta.json: {self:?}"));
        if self.seed.len() != 64 {
            return Err(bad());
        }
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(&self.seed[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos.parse::<u128>().map_err(|_| bad())?);
        Ok(rng)
    }
}

/// `meta.json` of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Training stage (`pretrain`, `sft`, `grpo`, ...).
    pub stage: String,
    /// Optimizer steps completed.
    pub step: u64,
    /// The trainer's random generator.
    pub rng: RngState,
    /// Where the data stream stands (trainer-specific: file offsets, epoch, shuffled order seed).
    pub data: serde_json::Value,
    /// The resolved config of the run.
    pub config: serde_json::Value,
    /// `git rev-parse HEAD` of the code that wrote it, when known.
    pub git_commit: Option<String>,
    /// Metrics of the last step (for the report and for sanity checks on resume).
    pub metrics: serde_json::Value,
}

/// Directory of the checkpoint of `step`.
pub fn step_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step}"))
}

/// Write a checkpoint atomically and return its directory. `weights` are the model's named
/// tensors; `extra` may write more files (model `config.json`, tokenizer) into the directory.
pub fn save(
    run_dir: &Path,
    weights: &[(String, Tensor)],
    opt: &AdamW,
    meta: &Meta,
    extra: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let root = run_dir.join("checkpoints");
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let final_dir = step_dir(run_dir, meta.step);
    let tmp = root.join(format!(".tmp-step-{}-{}", meta.step, std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let write = || -> Result<()> {
        let w: HashMap<&str, &Tensor> = weights.iter().map(|(n, t)| (n.as_str(), t)).collect();
        save_tensors(&w, &tmp.join(WEIGHTS_FILE))?;
        let state = opt.state_tensors()?;
        let s: HashMap<&str, &Tensor> = state.iter().map(|(n, t)| (n.as_str(), t)).collect();
        save_tensors(&s, &tmp.join(OPTIMIZER_FILE))?;
        extra(&tmp)?;
        let json = serde_json::to_vec_pretty(meta).map_err(|e| Error::Msg(e.to_string()))?;
        mathforge_io::atomic::write_atomic(tmp.join(META_FILE), &json)?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if final_dir.exists() {
        // Re-saving the same step (e.g. after a resume): move the old one aside first, since
        // rename cannot replace a non-empty directory.
        let old = root.join(format!(".old-step-{}-{}", meta.step, std::process::id()));
        std::fs::rename(&final_dir, &old).map_err(|e| Error::io(&final_dir, e))?;
        std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    }
    Ok(final_dir)
}

fn save_tensors(tensors: &HashMap<&str, &Tensor>, path: &Path) -> Result<()> {
    // safetensors needs contiguous CPU data; `serialize_to_file` writes in place, so go through a
    // temp name to keep the file atomic on its own too.
    let data: Vec<(&str, Tensor)> = tensors
        .iter()
        .map(|(n, t)| Ok((*n, t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::tensor::serialize_to_file(data, None, &tmp)
        .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), msg: e.to_string() })?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// The checkpoint with the highest step that is complete (has `meta.json`), if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list(run_dir)?.into_iter().last().map(|(_, p)| p))
}

/// Complete checkpoints of a run, by increasing step.
pub fn list(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let root = run_dir.join("checkpoints");
    let rd = match std::fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(&root, e)),
    };
    let mut out = vec![];
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(&root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix("step-").and_then(|s| s.parse::<u64>().ok()) {
            if entry.path().join(META_FILE).exists() {
                out.push((n, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Delete all but the newest `keep` checkpoints (0 keeps all).
pub fn prune(run_dir: &Path, keep: usize) -> Result<()> {
    if keep == 0 {
        return Ok(());
    }
    let all = list(run_dir)?;
    let n = all.len().saturating_sub(keep);
    for (_, p) in all.into_iter().take(n) {
        std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

/// Read `meta.json`.
pub fn load_meta(dir: &Path) -> Result<Meta> {
    let path = dir.join(META_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Checkpoint { path: path.clone(), msg: format!("bad meta.json: {e}") })
}

/// Read a safetensors file of a checkpoint.
pub fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::Checkpoint { path: path.to_path_buf(), msg: "file is missing".into() });
    }
    candle_core::safetensors::load(path, device)
        .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), msg: e.to_string() })
}

/// Restore model variables and optimizer from `dir`; returns the meta. Every optimizer parameter
/// must be present in the weights file with the same shape.
pub fn restore(dir: &Path, opt: &mut AdamW, device: &Device) -> Result<Meta> {
    let meta = load_meta(dir)?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let weights = load_tensors(&weights_path, device)?;
    for (name, var) in opt.vars() {
        let t = weights.get(&name).ok_or_else(|| Error::Checkpoint {
            path: weights_path.clone(),
            msg: format!("tensor `{name}` is missing"),
        })?;
        if t.shape() != var.shape() {
            return Err(Error::Checkpoint {
                path: weights_path.clone(),
                msg: format!(
                    "tensor `{name}` has shape {:?}, the model has {:?}",
                    t.shape(),
                    var.shape()
                ),
            });
        }
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    let opt_path = dir.join(OPTIMIZER_FILE);
    let state = load_tensors(&opt_path, device)?;
    opt.load_state(&state, meta.step)
        .map_err(|e| Error::Checkpoint { path: opt_path.clone(), msg: e.to_string() })?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{AdamWConfig, GradAccumulator};
    use crate::schedule::{Schedule, ScheduleKind};
    use candle_core::{DType, Var};
    use rand::{Rng, SeedableRng};

    /// A tiny two-layer net with a bf16 layer (to exercise master weights) trained on random
    /// regression batches drawn from the RNG, so data order, optimizer and schedule all matter.
    struct Toy {
        w1: Var,
        w2: Var,
    }

    impl Toy {
        fn new() -> Self {
            let dev = Device::Cpu;
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let a: Vec<f32> = (0..32).map(|_| rng.gen_range(-0.5..0.5)).collect();
            let b: Vec<f32> = (0..8).map(|_| rng.gen_range(-0.5..0.5)).collect();
            let w1 = Var::from_tensor(&Tensor::from_vec(a, (4, 8), &dev).unwrap()).unwrap();
            let w2 = Tensor::from_vec(b, (8, 1), &dev).unwrap().to_dtype(DType::BF16).unwrap();
            Toy { w1, w2: Var::from_tensor(&w2).unwrap() }
        }
        fn named(&self) -> Vec<(String, Var)> {
            vec![("w1".into(), self.w1.clone()), ("w2".into(), self.w2.clone())]
        }
        fn weights(&self) -> Vec<(String, Tensor)> {
            self.named().into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect()
        }
    }

    fn train(toy: &Toy, opt: &mut AdamW, rng: &mut ChaCha8Rng, steps: u64) {
        let sched = Schedule {
            lr: 1e-2,
            kind: ScheduleKind::Cosine,
            warmup_steps: 2,
            total_steps: 8,
            min_lr_ratio: 0.1,
        };
        let dev = Device::Cpu;
        for _ in 0..steps {
            let step = opt.steps_taken();
            let mut acc = GradAccumulator::new(opt);
            for _ in 0..2 {
                let x: Vec<f32> = (0..12).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let x = Tensor::from_vec(x, (3, 4), &dev).unwrap();
                let h = x.matmul(toy.w1.as_tensor()).unwrap().tanh().unwrap();
                let out = h.matmul(&toy.w2.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
                let loss = (out - 1.0).unwrap().sqr().unwrap().mean_all().unwrap();
                acc.add(loss.backward().unwrap(), 0.5).unwrap();
            }
            let mut g = acc.take();
            g.clip(1.0, step).unwrap();
            opt.step(&g, sched.lr_at(step)).unwrap();
        }
    }

    fn snapshot(toy: &Toy) -> Vec<Vec<f32>> {
        toy.named()
            .iter()
            .map(|(_, v)| {
                v.as_tensor()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn exact_resume() {
        let dir = tempfile::tempdir().unwrap();
        // Reference: 8 steps straight.
        let toy = Toy::new();
        let mut opt = AdamW::new(toy.named(), AdamWConfig::default()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        train(&toy, &mut opt, &mut rng, 8);
        let straight = snapshot(&toy);

        // 4 steps, checkpoint, drop everything.
        {
            let toy = Toy::new();
            let mut opt = AdamW::new(toy.named(), AdamWConfig::default()).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            train(&toy, &mut opt, &mut rng, 4);
            let meta = Meta {
                stage: "test".into(),
                step: opt.steps_taken(),
                rng: RngState::capture(&rng),
                data: serde_json::json!({"offset": 4}),
                config: serde_json::json!({}),
                git_commit: None,
                metrics: serde_json::json!({}),
            };
            save(dir.path(), &toy.weights(), &opt, &meta, |d| {
                std::fs::write(d.join("config.json"), b"{}").map_err(|e| Error::io(d, e))
            })
            .unwrap();
        }
        // Fresh process state (different init would be overwritten), resume, 4 more steps.
        let toy = Toy::new();
        let mut opt = AdamW::new(toy.named(), AdamWConfig::default()).unwrap();
        let latest = latest(dir.path()).unwrap().unwrap();
        assert!(latest.ends_with("step-4") && latest.join("config.json").exists());
        let meta = restore(&latest, &mut opt, &Device::Cpu).unwrap();
        assert_eq!(meta.step, 4);
        assert_eq!(meta.data["offset"], 4);
        let mut rng = meta.rng.restore().unwrap();
        train(&toy, &mut opt, &mut rng, 4);
        assert_eq!(snapshot(&toy), straight, "resumed run must match bit for bit");
    }

    #[test]
    fn missing_tensor_is_named_and_prune_keeps_newest() {
        let dir = tempfile::tempdir().unwrap();
        let toy = Toy::new();
        let opt = AdamW::new(toy.named(), AdamWConfig::default()).unwrap();
        let rng = ChaCha8Rng::seed_from_u64(0);
        for step in [1u64, 2, 3] {
            let meta = Meta {
                stage: "t".into(),
                step,
                rng: RngState::capture(&rng),
                data: serde_json::Value::Null,
                config: serde_json::Value::Null,
                git_commit: Some("abc".into()),
                metrics: serde_json::Value::Null,
            };
            // Only w1 written: restoring must name w2.
            save(dir.path(), &toy.weights()[..1], &opt, &meta, |_| Ok(())).unwrap();
        }
        // A leftover temp directory from a killed save is not a checkpoint.
        std::fs::create_dir_all(dir.path().join("checkpoints/.tmp-step-9-1")).unwrap();
        prune(dir.path(), 2).unwrap();
        let steps: Vec<u64> = list(dir.path()).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(steps, vec![2, 3]);
        let mut opt2 = AdamW::new(Toy::new().named(), AdamWConfig::default()).unwrap();
        let err = restore(&step_dir(dir.path(), 3), &mut opt2, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("`w2` is missing"), "{err}");
    }
}
