//! A scalar head on the decoder backbone: the value model (PPO's critic, DeepSeekMath §4.1 eq. 1)
//! and the outcome/process reward models (§4.1.2-§4.1.3, `mathforge train rm`) are all
//! `backbone -> final RMSNorm -> Linear(hidden, 1)`, one scalar per position.
//!
//! # On disk
//! The Hugging Face layout of `LlamaForSequenceClassification` / `LlamaForTokenClassification`
//! with `num_labels = 1` (`Qwen2For...` for Qwen2): backbone tensors under `model.*` and the head
//! as `score.weight` `[1, hidden]`, no bias, no `lm_head`. `config.json` is the backbone's config
//! with `architectures` set to the sequence-classification class, `num_labels: 1`, and a
//! `mathforge_head` key saying what the scalar means (`value`, `orm`, `prm`). Chosen over TRL's
//! `v_head.summary.*` because a reward model saved this way opens with
//! `AutoModelForSequenceClassification.from_pretrained(dir)` (which, like our ORM, reads the score
//! at the last non-pad token); `LlamaForTokenClassification` reads the same tensors per token (PRM).
//!
//! # Initialisation
//! From a causal LM folder (a policy or SFT checkpoint): the backbone tensors are loaded, the
//! `lm_head` is dropped, and `score.weight` is drawn from normal(0, `initializer_range`) with the
//! run's seed, as `transformers` initialises a fresh `score` layer. From a folder that already has
//! `score.weight` (a reward model, or a saved critic), everything is loaded.
//!
//! The backbone is built with `tie_word_embeddings = true` internally so [`Llama::new`] needs no
//! `lm_head` tensor (the head never calls it); the saved config keeps the original flag.
use crate::{Error, Result};
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use mathforge_model::checkpoint as mckpt;
use mathforge_model::{Arch, Config as ModelConfig, Llama};
use rand::{Rng, SeedableRng};
use std::path::Path;

/// Name of the scalar head's weight (`LlamaForSequenceClassification.score`).
pub const HEAD_WEIGHT: &str = "score.weight";

/// What the scalar of a head model means (stored as `mathforge_head` in `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// A PPO critic: expected return at each position.
    Value,
    /// Outcome reward model: logit of "the final answer is correct" at the last token.
    Orm,
    /// Process reward model: logit of "this step is correct" at each step's last token.
    Prm,
}

impl HeadKind {
    /// The `mathforge_head` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HeadKind::Value => "value",
            HeadKind::Orm => "orm",
            HeadKind::Prm => "prm",
        }
    }
}

/// A decoder backbone with a scalar head; its weights are the variables of `varmap`.
pub struct HeadModel {
    /// The decoder (its `lm_head` is the tied embedding and is never used).
    pub backbone: Llama,
    /// `[1, hidden]`.
    pub head: Tensor,
    /// All trainable variables (backbone `model.*` and `score.weight`).
    pub varmap: VarMap,
    /// The backbone's config as it was given (original `tie_word_embeddings`).
    pub config: ModelConfig,
    /// Weight dtype.
    pub dtype: DType,
}

fn msg<E: std::fmt::Display>(e: E) -> Error {
    Error::Msg(e.to_string())
}

/// The config the backbone is built with: no separate `lm_head` tensor.
fn backbone_config(cfg: &ModelConfig) -> ModelConfig {
    ModelConfig { tie_word_embeddings: true, ..cfg.clone() }
}

fn normal_head(hidden: usize, std: f64, seed: u64, device: &Device) -> Result<Tensor> {
    // Box-Muller from a seeded ChaCha stream: reproducible, unlike candle's CPU RNG.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5c0e_4ead);
    let v: Vec<f32> = (0..hidden)
        .map(|_| {
            let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
            let u2: f64 = rng.gen();
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos() * std) as f32
        })
        .collect();
    Ok(Tensor::from_vec(v, (1, hidden), device)?)
}

impl HeadModel {
    fn build(config: ModelConfig, varmap: VarMap, dtype: DType, device: &Device) -> Result<Self> {
        let backbone =
            Llama::new(&backbone_config(&config), VarBuilder::from_varmap(&varmap, dtype, device))
                .map_err(msg)?;
        let head = {
            let data =
                varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
            data.get(HEAD_WEIGHT)
                .ok_or_else(|| Error::Msg(format!("`{HEAD_WEIGHT}` missing from the variables")))?
                .as_tensor()
                .clone()
        };
        Ok(HeadModel { backbone, head, varmap, config, dtype })
    }

    /// Fresh random weights for `cfg` (backbone as `model init`, head as described above).
    pub fn init(cfg: &ModelConfig, seed: u64, dtype: DType, device: &Device) -> Result<Self> {
        let varmap = mckpt::init_varmap(&backbone_config(cfg), seed, dtype, device).map_err(msg)?;
        {
            let mut data =
                varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
            let h = normal_head(cfg.hidden_size, cfg.initializer_range, seed, device)?;
            data.insert(HEAD_WEIGHT.into(), Var::from_tensor(&h.to_dtype(dtype)?)?);
        }
        Self::build(cfg.clone(), varmap, dtype, device)
    }

    /// Load from a model folder: a head model (has `score.weight`), or a causal LM whose backbone
    /// is taken and whose head is initialised from `seed`. Missing or mis-shaped tensors are
    /// errors naming the tensor and file.
    pub fn load(dir: impl AsRef<Path>, seed: u64, dtype: DType, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = ModelConfig::from_file(dir.join("config.json")).map_err(msg)?;
        let infos = mckpt::read_tensor_infos(dir).map_err(msg)?;
        let files = mckpt::weight_files(dir).map_err(msg)?;
        // SAFETY: read-only map of files nobody rewrites while we read them (as `mckpt::load`).
        let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&files)? };
        let varmap = VarMap::new();
        {
            let mut data =
                varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
            let mut wanted = backbone_config(&config).tensor_shapes();
            let has_head = infos.iter().any(|i| i.name == HEAD_WEIGHT);
            if has_head {
                wanted.push((HEAD_WEIGHT.to_string(), vec![1, config.hidden_size]));
            }
            for (name, shape) in wanted {
                let info =
                    infos.iter().find(|i| i.name == name).ok_or_else(|| Error::Checkpoint {
                        path: dir.to_path_buf(),
                        msg: format!("tensor `{name}` (shape {shape:?}) is missing"),
                    })?;
                if info.shape != shape {
                    return Err(Error::Checkpoint {
                        path: info.file.clone(),
                        msg: format!(
                            "tensor `{name}` has shape {:?}, expected {shape:?}",
                            info.shape
                        ),
                    });
                }
                let t = st.load(&name, device)?.to_dtype(dtype)?;
                data.insert(name, Var::from_tensor(&t)?);
            }
            if !has_head {
                let h = normal_head(config.hidden_size, config.initializer_range, seed, device)?;
                data.insert(HEAD_WEIGHT.into(), Var::from_tensor(&h.to_dtype(dtype)?)?);
            }
        }
        Self::build(config, varmap, dtype, device)
    }

    /// The scalar at every position, `[B, T]` f32 (`attention_mask`: 1 = token, 0 = pad).
    pub fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self.backbone.forward_hidden(input_ids, attention_mask).map_err(msg)?;
        let lin = mathforge_model::nn::Linear { weight: self.head.clone(), bias: None };
        Ok(lin.forward(&h)?.squeeze(2)?.to_dtype(DType::F32)?)
    }

    /// The same model over detached weights (shared storage): forwards record no autograd graph.
    /// For scoring only; it has no variables of its own.
    pub fn detached(&self) -> HeadModel {
        HeadModel {
            backbone: self.backbone.detached(),
            head: self.head.detach(),
            varmap: VarMap::new(),
            config: self.config.clone(),
            dtype: self.dtype,
        }
    }

    /// Gradients of `loss` for every variable, through the backbone's checkpointed layers when
    /// gradient checkpointing is on ([`Llama::backward`]).
    pub fn backward(&self, loss: &Tensor) -> Result<candle_core::backprop::GradStore> {
        self.backbone.backward(loss).map_err(msg)
    }

    /// Weights with their HF names: backbone `model.*` (no `lm_head`) and `score.weight`.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = self.backbone.named_tensors();
        out.push((HEAD_WEIGHT.to_string(), self.head.clone()));
        out
    }

    /// The variables, named, for the optimizer.
    pub fn named_vars(&self) -> Result<Vec<(String, Var)>> {
        crate::trainer::named_vars(&self.varmap)
    }

    /// Parameter count.
    pub fn num_parameters(&self) -> usize {
        self.named_tensors().iter().map(|(_, t)| t.elem_count()).sum()
    }

    /// Write the model to `dir` (see the module docs for the layout); `tokenizer_json` is copied
    /// beside it when given.
    pub fn save(
        &self,
        dir: &Path,
        kind: HeadKind,
        dtype: DType,
        tokenizer_json: Option<&Path>,
    ) -> Result<()> {
        let opts = mckpt::SaveOptions { dtype, max_shard_bytes: None };
        mckpt::save_tensors(&self.config, &self.named_tensors(), dir, &opts).map_err(msg)?;
        write_head_config(dir, &self.config, kind, dtype)?;
        if let Some(t) = tokenizer_json {
            std::fs::copy(t, dir.join("tokenizer.json")).map_err(|e| Error::io(t, e))?;
        }
        Ok(())
    }
}

/// Overwrite `dir/config.json` with the head-model config (sequence-classification class).
pub fn write_head_config(
    dir: &Path,
    cfg: &ModelConfig,
    kind: HeadKind,
    dtype: DType,
) -> Result<()> {
    let mut v = cfg.to_hf_json(mckpt::dtype_name(dtype));
    let class = match cfg.arch {
        Arch::Llama => "LlamaForSequenceClassification",
        Arch::Qwen2 => "Qwen2ForSequenceClassification",
    };
    if let Some(m) = v.as_object_mut() {
        m.insert("architectures".into(), serde_json::json!([class]));
        m.insert("num_labels".into(), serde_json::json!(1));
        m.insert("id2label".into(), serde_json::json!({"0": "LABEL_0"}));
        m.insert("label2id".into(), serde_json::json!({"LABEL_0": 0}));
        m.insert("mathforge_head".into(), serde_json::json!(kind.as_str()));
    }
    let mut text = serde_json::to_string_pretty(&v).map_err(msg)?;
    text.push('\n');
    mathforge_io::atomic::write_atomic(dir.join("config.json"), text.as_bytes())?;
    Ok(())
}

/// `mathforge_head` of a model folder's config.json, if it is a head model.
pub fn head_kind_of(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("mathforge_head").and_then(|x| x.as_str()).map(str::to_string)
}

/// A frozen (detached) copy of a causal LM's current weights, e.g. PPO's reference model.
pub fn frozen_llama(model: &Llama, varmap: &VarMap, device: &Device) -> Result<Llama> {
    let mut ts = std::collections::HashMap::new();
    for (n, v) in crate::trainer::named_vars(varmap)? {
        ts.insert(n, v.as_tensor().copy()?.detach());
    }
    let vb = VarBuilder::from_tensors(ts, model.dtype(), device);
    Llama::new(model.config(), vb).map_err(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ModelConfig {
        ModelConfig::from_json_str(
            r#"{"model_type":"llama","hidden_size":16,"intermediate_size":32,"num_hidden_layers":1,
            "num_attention_heads":2,"num_key_value_heads":1,"vocab_size":40,"max_position_embeddings":64,
            "rms_norm_eps":1e-5,"tie_word_embeddings":false,"initializer_range":0.02}"#,
        )
        .unwrap()
    }

    /// A causal LM folder becomes a head model (lm_head dropped, head drawn from the seed); the
    /// saved head model reloads to the same values and says what it is in config.json.
    #[test]
    fn from_causal_lm_save_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = tiny();
        let (lm, _) = mckpt::init_model(&cfg, 3, DType::F32, &Device::Cpu).unwrap();
        let lm_dir = dir.path().join("lm");
        mckpt::save(&lm, &lm_dir, &Default::default()).unwrap();
        let hm = HeadModel::load(&lm_dir, 7, DType::F32, &Device::Cpu).unwrap();
        assert!(hm.named_tensors().iter().all(|(n, _)| n != "lm_head.weight"));
        assert_eq!(hm.num_parameters(), cfg.num_parameters() - 40 * 16 + 16);
        let ids = Tensor::new(&[[1u32, 5, 9, 3], [4, 4, 2, 0]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1f32, 1., 1., 1.], [1., 1., 1., 0.]], &Device::Cpu).unwrap();
        let v = hm.forward(&ids, Some(&mask)).unwrap();
        assert_eq!(v.dims(), &[2, 4]);
        // The value equals hidden . score for a hand-computed position.
        let h = lm.forward_hidden(&ids, Some(&mask)).unwrap().to_vec3::<f32>().unwrap();
        let w = hm.head.to_vec2::<f32>().unwrap();
        let want: f32 = h[1][2].iter().zip(&w[0]).map(|(a, b)| a * b).sum();
        assert!((v.to_vec2::<f32>().unwrap()[1][2] - want).abs() < 1e-5);
        let out = dir.path().join("rm");
        hm.save(&out, HeadKind::Orm, DType::F32, None).unwrap();
        assert_eq!(head_kind_of(&out).as_deref(), Some("orm"));
        let text = std::fs::read_to_string(out.join("config.json")).unwrap();
        assert!(text.contains("LlamaForSequenceClassification"), "{text}");
        let back = HeadModel::load(&out, 99, DType::F32, &Device::Cpu).unwrap();
        let v2 = back.forward(&ids, Some(&mask)).unwrap();
        let d = (v - v2).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(d, 0.0, "reloaded head model differs (the seed must not matter)");
        // A folder missing a tensor is an error naming it.
        std::fs::write(
            out.join("config.json"),
            text.replace("\"num_hidden_layers\": 1", "\"num_hidden_layers\": 2"),
        )
        .unwrap();
        let err = HeadModel::load(&out, 0, DType::F32, &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("model.layers.1"), "{err}");
    }
}
