//! HF-layout checkpoints: round trips (single file, sharded, bf16), trainable loading, and errors
//! that name the tensor, field or file.
use super::util::*;
use candle_core::{DType, Device, Tensor};
use mathforge_model::checkpoint::{self, SaveOptions};
use mathforge_model::{Config, Error};
use std::path::Path;

fn batch() -> (Tensor, Tensor) {
    (ids(&[vec![1, 2, 3, 4, 5], vec![0, 0, 6, 7, 8]]), Tensor::new(vec![vec![1u32; 5], vec![0, 0, 1, 1, 1]], &Device::Cpu).unwrap())
}

#[test]
fn save_load_round_trips_single_sharded_and_bf16() {
    for cfg in [tiny_llama(), tiny_qwen2()] {
        let m = model(&cfg, 21, DType::F32);
        let (x, mask) = batch();
        let want = m.forward(&x, Some(&mask)).unwrap();
        let dir = tempfile::tempdir().unwrap();

        let single = dir.path().join("single");
        checkpoint::save(&m, &single, &SaveOptions::default()).unwrap();
        for f in ["config.json", "model.safetensors", "generation_config.json"] {
            assert!(single.join(f).is_file(), "{f}");
        }
        let back = checkpoint::load(&single, DType::F32, &Device::Cpu).unwrap();
        assert_eq!(max_abs_diff(&back.forward(&x, Some(&mask)).unwrap(), &want), 0.0);
        assert_eq!(back.config().tie_word_embeddings, cfg.tie_word_embeddings);

        let sharded = dir.path().join("sharded");
        checkpoint::save(&m, &sharded, &SaveOptions { dtype: DType::F32, max_shard_bytes: Some(20_000) }).unwrap();
        assert!(!sharded.join("model.safetensors").exists());
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(sharded.join("model.safetensors.index.json")).unwrap()).unwrap();
        let files = checkpoint::weight_files(&sharded).unwrap();
        assert!(files.len() > 1, "expected several shards, got {files:?}");
        let total: u64 = index["metadata"]["total_size"].as_u64().unwrap();
        assert_eq!(total as usize, cfg.num_parameters() * 4);
        let back = checkpoint::load(&sharded, DType::F32, &Device::Cpu).unwrap();
        assert_eq!(max_abs_diff(&back.forward(&x, Some(&mask)).unwrap(), &want), 0.0);

        // bf16 on disk, f32 in memory: close, and config.json records the stored dtype.
        let half = dir.path().join("bf16");
        checkpoint::save(&m, &half, &SaveOptions { dtype: DType::BF16, max_shard_bytes: None }).unwrap();
        let infos = checkpoint::read_tensor_infos(&half).unwrap();
        assert!(infos.iter().all(|i| i.dtype == "BF16"));
        assert_eq!(Config::from_file(&half).unwrap().torch_dtype.as_deref(), Some("bfloat16"));
        let back = checkpoint::load(&half, DType::F32, &Device::Cpu).unwrap();
        let d = max_abs_diff(&back.forward(&x, Some(&mask)).unwrap(), &want);
        assert!(d > 0.0 && d < 0.05, "bf16 round trip diff {d}");

        // Trainable load gives the same function.
        let (c2, vm) = checkpoint::load_varmap(&single, DType::F32, &Device::Cpu).unwrap();
        let tm = mathforge_model::Llama::new(&c2, candle_nn::VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
        assert_eq!(max_abs_diff(&tm.forward(&x, Some(&mask)).unwrap(), &want), 0.0);
        assert_eq!(vm.all_vars().len(), cfg.tensor_shapes().len());
    }
}

#[test]
fn init_is_reproducible_from_seed() {
    let cfg = tiny_llama();
    let (x, _) = batch();
    let a = model(&cfg, 5, DType::F32).forward(&x, None).unwrap();
    let b = model(&cfg, 5, DType::F32).forward(&x, None).unwrap();
    let c = model(&cfg, 6, DType::F32).forward(&x, None).unwrap();
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    assert!(max_abs_diff(&a, &c) > 1e-3);
}

fn save_tensors_with(cfg: &Config, dir: &Path, edit: impl Fn(&mut Vec<(String, Tensor)>)) {
    let m = model(cfg, 1, DType::F32);
    let mut t = m.named_tensors();
    edit(&mut t);
    checkpoint::save_tensors(cfg, &t, dir, &SaveOptions::default()).unwrap();
}

#[test]
fn missing_extra_and_misshaped_tensors_are_named() {
    let cfg = tiny_llama();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("missing");
    save_tensors_with(&cfg, &d, |t| t.retain(|(n, _)| n != "model.layers.1.mlp.up_proj.weight"));
    let e = checkpoint::load(&d, DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(e, Error::MissingTensor { ref name, .. } if name == "model.layers.1.mlp.up_proj.weight"), "{e}");
    assert!(e.to_string().contains("[64, 32]"), "{e}");

    let d = dir.path().join("extra");
    save_tensors_with(&cfg, &d, |t| t.push(("model.layers.9.foo".into(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap())));
    let e = checkpoint::load(&d, DType::F32, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("model.layers.9.foo") && e.contains("unexpected"), "{e}");

    let d = dir.path().join("shape");
    save_tensors_with(&cfg, &d, |t| {
        for (n, x) in t.iter_mut() {
            if n == "model.norm.weight" {
                *x = Tensor::ones(31, DType::F32, &Device::Cpu).unwrap();
            }
        }
    });
    let e = checkpoint::load(&d, DType::F32, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("model.norm.weight") && e.contains("[31]") && e.contains("[32]"), "{e}");

    // Truncated safetensors file.
    let d = dir.path().join("trunc");
    save_tensors_with(&cfg, &d, |_| {});
    std::fs::write(d.join("model.safetensors"), b"\x10\x00").unwrap();
    let e = checkpoint::load(&d, DType::F32, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("model.safetensors"), "{e}");

    // Broken config.json.
    let d = dir.path().join("cfg");
    save_tensors_with(&cfg, &d, |_| {});
    std::fs::write(d.join("config.json"), r#"{"model_type":"mamba"}"#).unwrap();
    let e = checkpoint::load(&d, DType::F32, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("model_type") && e.contains("mamba"), "{e}");

    let e = checkpoint::load(dir.path().join("nope"), DType::F32, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
}

/// A WordLevel tokenizer.json with `n` tokens.
fn word_level_tokenizer(path: &Path, n: usize) {
    let vocab: serde_json::Map<String, serde_json::Value> = (0..n).map(|i| (format!("w{i}"), serde_json::json!(i))).collect();
    let j = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "w0"}
    });
    std::fs::write(path, j.to_string()).unwrap();
}

#[test]
fn tokenizer_vocab_larger_than_embedding_is_an_error() {
    let cfg = tiny_llama(); // vocab 61
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok.json");
    word_level_tokenizer(&ok, 50);
    assert_eq!(checkpoint::check_tokenizer_vocab(&ok, &cfg).unwrap(), 50);
    let big = dir.path().join("big.json");
    word_level_tokenizer(&big, 70);
    let e = checkpoint::check_tokenizer_vocab(&big, &cfg).unwrap_err().to_string();
    assert!(e.contains("big.json") && e.contains("70") && e.contains("61"), "{e}");
}
