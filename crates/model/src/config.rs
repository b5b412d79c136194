//! Model configuration: a raw mirror of Hugging Face `config.json` ([`HfConfig`]) normalized into
//! the plain [`Config`] the decoder uses.
//!
//! Two architectures are supported, as `transformers` defines them (`LlamaConfig`,
//! `Qwen2Config`): `model_type` `llama` (optional `attention_bias` on q/k/v/o) and `qwen2`
//! (always a bias on q/k/v, none on o). DeepSeekMath 7B is a Llama-architecture model (paper §2.3
//! initializes from DeepSeek-Coder-Base-v1.5 7B), so `llama` covers the paper's models; `qwen2`
//! covers the common small open math models used as stand-ins.
//!
//! Defaults follow `transformers` where it has one (e.g. `rope_theta` 10000, `rms_norm_eps` 1e-6);
//! the sizes (`hidden_size`, `intermediate_size`, `num_hidden_layers`, `num_attention_heads`,
//! `vocab_size`) are required so a truncated file fails loudly. Both the older (`torch_dtype`,
//! top-level `rope_theta`/`rope_scaling`) and newer (`dtype`, `rope_parameters`) spellings are read.
//! Unsupported features (non-linear RoPE scaling, sliding windows, MLP bias, non-SiLU activation)
//! are errors naming the field rather than silently wrong logits.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Decoder family, from `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    /// `LlamaForCausalLM` (also DeepSeek/DeepSeekMath 7B).
    Llama,
    /// `Qwen2ForCausalLM`.
    Qwen2,
}

impl Arch {
    /// `model_type` as written in config.json.
    pub fn model_type(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }
    /// The `architectures` entry transformers uses to pick the class.
    pub fn hf_class(self) -> &'static str {
        match self {
            Arch::Llama => "LlamaForCausalLM",
            Arch::Qwen2 => "Qwen2ForCausalLM",
        }
    }
}

/// `bos_token_id`/`eos_token_id` may be one id or a list (Llama 3 style).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// A single id.
    One(u32),
    /// Several ids; any of them ends generation.
    Many(Vec<u32>),
}

impl TokenIds {
    fn into_vec(self) -> Vec<u32> {
        match self {
            TokenIds::One(i) => vec![i],
            TokenIds::Many(v) => v,
        }
    }
}

/// RoPE scaling block (`rope_scaling` or `rope_parameters`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HfRopeScaling {
    /// Older key for the scaling type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Newer key for the scaling type.
    pub rope_type: Option<String>,
    /// Linear factor: positions are divided by it.
    pub factor: Option<f64>,
    /// `rope_parameters` (transformers >= 5) carries theta here.
    pub rope_theta: Option<f64>,
}

/// Raw mirror of HF `config.json` for llama and qwen2; every field optional so that missing ones
/// are reported by name in [`HfConfig::into_config`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HfConfig {
    /// `llama` or `qwen2`.
    pub model_type: Option<String>,
    /// Width of the residual stream.
    pub hidden_size: Option<usize>,
    /// Width of the SwiGLU hidden layer.
    pub intermediate_size: Option<usize>,
    /// Decoder layers.
    pub num_hidden_layers: Option<usize>,
    /// Query heads.
    pub num_attention_heads: Option<usize>,
    /// Key/value heads (GQA); defaults to `num_attention_heads`.
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    /// RMSNorm epsilon.
    pub rms_norm_eps: Option<f64>,
    /// RoPE base.
    pub rope_theta: Option<f64>,
    /// RoPE scaling (linear only).
    pub rope_scaling: Option<HfRopeScaling>,
    /// transformers >= 5 spelling of theta + scaling.
    pub rope_parameters: Option<HfRopeScaling>,
    /// Context window.
    pub max_position_embeddings: Option<usize>,
    /// Rows of the embedding / lm_head.
    pub vocab_size: Option<usize>,
    /// lm_head shares the embedding matrix.
    pub tie_word_embeddings: Option<bool>,
    /// Llama: bias on q/k/v/o projections.
    pub attention_bias: Option<bool>,
    /// Llama: bias in MLP projections (unsupported when true).
    pub mlp_bias: Option<bool>,
    /// Must be `silu`.
    pub hidden_act: Option<String>,
    /// Qwen2 sliding window (unsupported when true).
    pub use_sliding_window: Option<bool>,
    /// Weight dtype as saved (older key).
    pub torch_dtype: Option<String>,
    /// Weight dtype as saved (transformers >= 5).
    pub dtype: Option<String>,
    /// Beginning-of-sequence id.
    pub bos_token_id: Option<TokenIds>,
    /// End-of-sequence id(s).
    pub eos_token_id: Option<TokenIds>,
    /// Padding id.
    pub pad_token_id: Option<u32>,
    /// Std of the normal init (used by `model init`).
    pub initializer_range: Option<f64>,
}

/// The normalized configuration the decoder is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Architecture.
    pub arch: Arch,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU hidden layer.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// Linear RoPE scaling factor (1.0 = none).
    pub rope_scaling_factor: f64,
    /// Context window.
    pub max_position_embeddings: usize,
    /// Vocabulary rows.
    pub vocab_size: usize,
    /// lm_head shares the embedding.
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v projections.
    pub qkv_bias: bool,
    /// Bias on the output projection.
    pub o_bias: bool,
    /// Saved dtype name (`float32`, `bfloat16`, `float16`), if given.
    pub torch_dtype: Option<String>,
    /// Beginning-of-sequence id.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence ids.
    pub eos_token_ids: Vec<u32>,
    /// Padding id.
    pub pad_token_id: Option<u32>,
    /// Std of the normal init.
    pub initializer_range: f64,
}

fn req(path: &Path, field: &str, v: Option<usize>) -> Result<usize> {
    match v {
        None => Err(Error::field(path, field, "missing (required)")),
        Some(0) => Err(Error::field(path, field, "must be > 0")),
        Some(x) => Ok(x),
    }
}

impl HfConfig {
    /// Parse config.json text; `path` is only used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        serde_json::from_str(text).map_err(|source| Error::Json { path: path.to_path_buf(), source })
    }

    /// Validate and normalize; errors name `path` and the offending field.
    pub fn into_config(self, path: &Path) -> Result<Config> {
        let arch = match self.model_type.as_deref() {
            Some("llama") => Arch::Llama,
            Some("qwen2") => Arch::Qwen2,
            Some(other) => {
                return Err(Error::field(
                    path,
                    "model_type",
                    format!("unsupported model_type `{other}` (expected `llama` or `qwen2`)"),
                ))
            }
            None => return Err(Error::field(path, "model_type", "missing (expected `llama` or `qwen2`)")),
        };
        let hidden_size = req(path, "hidden_size", self.hidden_size)?;
        let intermediate_size = req(path, "intermediate_size", self.intermediate_size)?;
        let num_layers = req(path, "num_hidden_layers", self.num_hidden_layers)?;
        let num_heads = req(path, "num_attention_heads", self.num_attention_heads)?;
        let vocab_size = req(path, "vocab_size", self.vocab_size)?;
        let num_kv_heads = self.num_key_value_heads.unwrap_or(num_heads);
        if num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(Error::field(
                path,
                "num_key_value_heads",
                format!("{num_kv_heads} must be > 0 and divide num_attention_heads = {num_heads}"),
            ));
        }
        let head_dim = match self.head_dim {
            Some(d) => d,
            None => {
                if hidden_size % num_heads != 0 {
                    return Err(Error::field(
                        path,
                        "num_attention_heads",
                        format!("{num_heads} does not divide hidden_size = {hidden_size}"),
                    ));
                }
                hidden_size / num_heads
            }
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(Error::field(path, "head_dim", format!("{head_dim} must be even and > 0 (RoPE)")));
        }
        if let Some(act) = &self.hidden_act {
            if act != "silu" {
                return Err(Error::field(path, "hidden_act", format!("`{act}` unsupported (expected `silu`)")));
            }
        }
        if self.mlp_bias == Some(true) {
            return Err(Error::field(path, "mlp_bias", "true is unsupported"));
        }
        if self.use_sliding_window == Some(true) {
            return Err(Error::field(path, "use_sliding_window", "true is unsupported"));
        }
        let mut rope_theta = self.rope_theta;
        let mut factor = 1.0;
        for (field, sc) in [("rope_scaling", &self.rope_scaling), ("rope_parameters", &self.rope_parameters)] {
            let Some(sc) = sc else { continue };
            if let Some(t) = sc.rope_theta {
                rope_theta = Some(t);
            }
            let kind = sc.rope_type.as_deref().or(sc.kind.as_deref()).unwrap_or("default");
            match kind {
                "default" => {}
                "linear" => {
                    let f = sc.factor.ok_or_else(|| Error::field(path, field, "linear scaling needs `factor`"))?;
                    if !(f.is_finite() && f > 0.0) {
                        return Err(Error::field(path, field, format!("factor {f} must be > 0")));
                    }
                    factor = f;
                }
                other => {
                    return Err(Error::field(
                        path,
                        field,
                        format!("rope type `{other}` unsupported (expected `default` or `linear`)"),
                    ))
                }
            }
        }
        let rope_theta = rope_theta.unwrap_or(10_000.0);
        if !(rope_theta.is_finite() && rope_theta > 1.0) {
            return Err(Error::field(path, "rope_theta", format!("{rope_theta} must be > 1")));
        }
        let rms_norm_eps = self.rms_norm_eps.unwrap_or(1e-6);
        if !(rms_norm_eps.is_finite() && rms_norm_eps > 0.0) {
            return Err(Error::field(path, "rms_norm_eps", format!("{rms_norm_eps} must be > 0")));
        }
        let (qkv_bias, o_bias) = match arch {
            Arch::Llama => {
                let b = self.attention_bias.unwrap_or(false);
                (b, b)
            }
            Arch::Qwen2 => (true, false),
        };
        let default_ctx = match arch {
            Arch::Llama => 2048,
            Arch::Qwen2 => 32768,
        };
        let bos_token_id = match self.bos_token_id {
            Some(ids) => ids.into_vec().first().copied(),
            None => None,
        };
        Ok(Config {
            arch,
            hidden_size,
            intermediate_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps,
            rope_theta,
            rope_scaling_factor: factor,
            max_position_embeddings: self.max_position_embeddings.unwrap_or(default_ctx),
            vocab_size,
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            qkv_bias,
            o_bias,
            torch_dtype: self.dtype.or(self.torch_dtype),
            bos_token_id,
            eos_token_ids: self.eos_token_id.map(TokenIds::into_vec).unwrap_or_default(),
            pad_token_id: self.pad_token_id,
            initializer_range: self.initializer_range.unwrap_or(0.02),
        })
    }
}

impl Config {
    /// Read and normalize a `config.json` file (or a model directory containing one).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let mut path: PathBuf = path.as_ref().to_path_buf();
        if path.is_dir() {
            path = path.join("config.json");
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        HfConfig::from_json_str(&text, &path)?.into_config(&path)
    }

    /// Parse config.json text (errors say `<memory>` for the path).
    pub fn from_json_str(text: &str) -> Result<Self> {
        let p = Path::new("<memory>");
        HfConfig::from_json_str(text, p)?.into_config(p)
    }

    /// The config.json transformers expects for this model; `dtype` is the saved weight dtype name.
    pub fn to_hf_json(&self, dtype: &str) -> Value {
        let mut v = json!({
            "architectures": [self.arch.hf_class()],
            "model_type": self.arch.model_type(),
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "vocab_size": self.vocab_size,
            "tie_word_embeddings": self.tie_word_embeddings,
            "initializer_range": self.initializer_range,
            "torch_dtype": dtype,
            "use_cache": true,
        });
        let m = v.as_object_mut().expect("object literal");
        if self.rope_scaling_factor != 1.0 {
            m.insert("rope_scaling".into(), json!({"type": "linear", "rope_type": "linear", "factor": self.rope_scaling_factor}));
        }
        match self.arch {
            Arch::Llama => {
                m.insert("attention_bias".into(), json!(self.qkv_bias));
                m.insert("mlp_bias".into(), json!(false));
            }
            Arch::Qwen2 => {
                m.insert("use_sliding_window".into(), json!(false));
            }
        }
        if let Some(b) = self.bos_token_id {
            m.insert("bos_token_id".into(), json!(b));
        }
        match self.eos_token_ids.as_slice() {
            [] => {}
            [one] => {
                m.insert("eos_token_id".into(), json!(one));
            }
            many => {
                m.insert("eos_token_id".into(), json!(many));
            }
        }
        if let Some(p) = self.pad_token_id {
            m.insert("pad_token_id".into(), json!(p));
        }
        v
    }

    /// Every tensor name the architecture uses, with its shape, in the HF naming
    /// (`model.layers.{i}.self_attn.q_proj.weight`, ...). Checkpoint validation and `model init`
    /// both walk this list, so they cannot disagree with the model code.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let h = self.hidden_size;
        let q = self.num_heads * self.head_dim;
        let kv = self.num_kv_heads * self.head_dim;
        let i = self.intermediate_size;
        let mut out = vec![("model.embed_tokens.weight".to_string(), vec![self.vocab_size, h])];
        for l in 0..self.num_layers {
            let p = format!("model.layers.{l}");
            out.push((format!("{p}.input_layernorm.weight"), vec![h]));
            for (name, rows) in [("q_proj", q), ("k_proj", kv), ("v_proj", kv)] {
                out.push((format!("{p}.self_attn.{name}.weight"), vec![rows, h]));
                if self.qkv_bias {
                    out.push((format!("{p}.self_attn.{name}.bias"), vec![rows]));
                }
            }
            out.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q]));
            if self.o_bias {
                out.push((format!("{p}.self_attn.o_proj.bias"), vec![h]));
            }
            out.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
            out.push((format!("{p}.mlp.gate_proj.weight"), vec![i, h]));
            out.push((format!("{p}.mlp.up_proj.weight"), vec![i, h]));
            out.push((format!("{p}.mlp.down_proj.weight"), vec![h, i]));
        }
        out.push(("model.norm.weight".to_string(), vec![h]));
        if !self.tie_word_embeddings {
            out.push(("lm_head.weight".to_string(), vec![self.vocab_size, h]));
        }
        out
    }

    /// Number of parameters (tied embeddings counted once).
    pub fn num_parameters(&self) -> usize {
        self.tensor_shapes().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LLAMA: &str = r#"{"model_type":"llama","hidden_size":64,"intermediate_size":128,
        "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,
        "rope_scaling":{"type":"linear","factor":2.0},"eos_token_id":[1,2],"bos_token_id":0}"#;

    #[test]
    fn parses_llama_with_defaults() {
        let c = Config::from_json_str(LLAMA).unwrap();
        assert_eq!(c.arch, Arch::Llama);
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.num_kv_heads, 2);
        assert_eq!(c.rope_theta, 10_000.0);
        assert_eq!(c.rope_scaling_factor, 2.0);
        assert_eq!(c.eos_token_ids, vec![1, 2]);
        assert!(!c.qkv_bias && !c.tie_word_embeddings);
        // Round trip through our own config.json.
        let back = Config::from_json_str(&c.to_hf_json("float32").to_string()).unwrap();
        assert_eq!(back, Config { torch_dtype: Some("float32".into()), ..c });
    }

    #[test]
    fn qwen2_has_qkv_bias_and_rope_parameters() {
        let c = Config::from_json_str(
            r#"{"model_type":"qwen2","hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,
            "num_attention_heads":4,"vocab_size":50,"rope_parameters":{"rope_type":"default","rope_theta":1000000.0}}"#,
        )
        .unwrap();
        assert!(c.qkv_bias && !c.o_bias);
        assert_eq!(c.rope_theta, 1e6);
        assert!(c.tensor_shapes().iter().any(|(n, s)| n == "model.layers.0.self_attn.k_proj.bias" && s == &[32]));
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::from_json_str(r#"{"model_type":"gpt2"}"#).unwrap_err().to_string();
        assert!(e.contains("model_type") && e.contains("gpt2"), "{e}");
        let e = Config::from_json_str(r#"{"model_type":"llama","hidden_size":64}"#).unwrap_err().to_string();
        assert!(e.contains("intermediate_size") && e.contains("missing"), "{e}");
        let bad = LLAMA.replace("\"linear\"", "\"yarn\"");
        let e = Config::from_json_str(&bad).unwrap_err().to_string();
        assert!(e.contains("rope_scaling") && e.contains("yarn"), "{e}");
        let e = Config::from_json_str("{not json").unwrap_err().to_string();
        assert!(e.contains("invalid JSON"), "{e}");
    }
}
