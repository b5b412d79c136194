//! Shared helpers: tiny configs and comparisons.
#![allow(dead_code)]
use candle_core::{DType, Device, Tensor};
use mathforge_model::{checkpoint, Config, Llama};

/// A tiny Llama with GQA (4 query heads, 2 kv heads), untied lm_head.
pub fn tiny_llama() -> Config {
    Config::from_json_str(
        r#"{"model_type":"llama","hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,
        "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":61,"max_position_embeddings":64,
        "rope_theta":10000.0,"rms_norm_eps":1e-5,"initializer_range":0.2}"#,
    )
    .unwrap()
}

/// A tiny Qwen2 (q/k/v bias), tied embeddings, linear RoPE scaling.
pub fn tiny_qwen2() -> Config {
    Config::from_json_str(
        r#"{"model_type":"qwen2","hidden_size":32,"intermediate_size":48,"num_hidden_layers":2,
        "num_attention_heads":4,"num_key_value_heads":1,"vocab_size":53,"max_position_embeddings":64,
        "rope_theta":500.0,"rope_scaling":{"type":"linear","factor":2.0},"tie_word_embeddings":true,
        "initializer_range":0.2}"#,
    )
    .unwrap()
}

pub fn model(cfg: &Config, seed: u64, dtype: DType) -> Llama {
    checkpoint::init_model(cfg, seed, dtype, &Device::Cpu).unwrap().0
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

pub fn ids(rows: &[Vec<u32>]) -> Tensor {
    Tensor::new(rows.to_vec(), &Device::Cpu).unwrap()
}
