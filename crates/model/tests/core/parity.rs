//! Parity with Hugging Face `transformers` (issue 2, item 3), both directions.
//!
//! transformers → mathforge: `scripts/make_model_fixture.py make` saved tiny random
//! `LlamaForCausalLM` (single file, linear RoPE scaling, GQA) and `Qwen2ForCausalLM` (sharded,
//! tied embeddings, q/k/v bias) with reference logits for a left-padded batch; we load them and
//! require max |diff| < 1e-4 over the real positions.
//!
//! mathforge → transformers: we write checkpoints for the same configs and check they follow the
//! HF conventions tensor by tensor (same names, shapes, dtypes as `save_pretrained`). With
//! `MATHFORGE_PARITY_OUT=DIR` set, the checkpoints and our logits are also written to DIR for
//! `make_model_fixture.py check DIR`, which reloads them in transformers (run by hand; the result is
//! recorded in docs/model.md).
use super::util::max_abs_diff;
use candle_core::{DType, Device, Tensor};
use mathforge_model::checkpoint::{self, SaveOptions};
use std::path::{Path, PathBuf};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(rel)
}

struct Case {
    input_ids: Tensor,
    mask: Tensor,
    logits: Tensor,
    mask_rows: Vec<Vec<u32>>,
}

fn case(name: &str) -> Case {
    let p = testdata(&format!("parity_{name}.json"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let ids: Vec<Vec<u32>> = serde_json::from_value(v["input_ids"].clone()).unwrap();
    let mask: Vec<Vec<u32>> = serde_json::from_value(v["attention_mask"].clone()).unwrap();
    let logits: Vec<Vec<Vec<f32>>> = serde_json::from_value(v["logits"].clone()).unwrap();
    Case {
        input_ids: Tensor::new(ids, &Device::Cpu).unwrap(),
        mask: Tensor::new(mask.clone(), &Device::Cpu).unwrap(),
        logits: Tensor::new(logits, &Device::Cpu).unwrap(),
        mask_rows: mask,
    }
}

/// Max |diff| over positions whose mask is 1.
fn real_diff(a: &Tensor, b: &Tensor, mask: &[Vec<u32>]) -> f64 {
    let mut worst = 0.0f64;
    for (bi, row) in mask.iter().enumerate() {
        for (t, &m) in row.iter().enumerate() {
            if m == 1 {
                let x = a.narrow(0, bi, 1).unwrap().narrow(1, t, 1).unwrap();
                let y = b.narrow(0, bi, 1).unwrap().narrow(1, t, 1).unwrap();
                worst = worst.max(max_abs_diff(&x, &y));
            }
        }
    }
    worst
}

const CASES: [(&str, &str); 2] = [("llama", "hf_llama"), ("qwen2", "hf_qwen2_sharded")];

#[test]
fn transformers_checkpoints_load_with_the_same_logits() {
    for (name, dir) in CASES {
        let c = case(name);
        let m = checkpoint::load(testdata(dir), DType::F32, &Device::Cpu).unwrap();
        let ours = m.forward(&c.input_ids, Some(&c.mask)).unwrap();
        let d = real_diff(&ours, &c.logits, &c.mask_rows);
        assert!(d < 1e-4, "{name}: max |diff| {d:e}");
        // The logits are not trivially small: the comparison has teeth.
        assert!(max_abs_diff(&c.logits, &c.logits.zeros_like().unwrap()) > 0.5);
        // f64 agrees too, and bf16 stays close.
        let m64 = checkpoint::load(testdata(dir), DType::F64, &Device::Cpu).unwrap();
        let d = real_diff(&m64.forward(&c.input_ids, Some(&c.mask)).unwrap(), &c.logits, &c.mask_rows);
        assert!(d < 1e-4, "{name} f64: {d:e}");
        let mbf = checkpoint::load(testdata(dir), DType::BF16, &Device::Cpu).unwrap();
        let d = real_diff(&mbf.forward(&c.input_ids, Some(&c.mask)).unwrap(), &c.logits, &c.mask_rows);
        assert!(d < 0.25, "{name} bf16: {d:e}");
    }
}

#[test]
fn mathforge_checkpoints_follow_the_hf_layout() {
    let out = std::env::var_os("MATHFORGE_PARITY_OUT").map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    for (name, dir) in CASES {
        let hf = testdata(dir);
        // A wide init so the logits are far from zero and the transformers comparison has teeth.
        let cfg = mathforge_model::Config { initializer_range: 0.3, ..mathforge_model::Config::from_file(&hf).unwrap() };
        let (init, _) = checkpoint::init_model(&cfg, 77, DType::F32, &Device::Cpu).unwrap();
        // Also re-save transformers' own weights through our writer.
        let resaved = checkpoint::load(&hf, DType::F32, &Device::Cpu).unwrap();
        for (kind, m) in [("init", &init), ("resaved", &resaved)] {
            let root = out.as_deref().unwrap_or(tmp.path());
            let target = root.join(format!("{name}_{kind}"));
            checkpoint::save(m, &target, &SaveOptions::default()).unwrap();
            // Same tensor names, shapes and dtypes as save_pretrained wrote.
            let mut theirs: Vec<_> =
                checkpoint::read_tensor_infos(&hf).unwrap().into_iter().map(|i| (i.name, i.shape, i.dtype)).collect();
            let mut ours: Vec<_> =
                checkpoint::read_tensor_infos(&target).unwrap().into_iter().map(|i| (i.name, i.shape, i.dtype)).collect();
            theirs.sort();
            ours.sort();
            assert_eq!(ours, theirs, "{name}");
            // Our config.json normalizes back to the model's config.
            let back = mathforge_model::Config::from_file(&target).unwrap();
            assert_eq!(back, mathforge_model::Config { torch_dtype: Some("float32".into()), ..m.config().clone() });
            let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(target.join("config.json")).unwrap()).unwrap();
            assert_eq!(j["architectures"][0], if name == "llama" { "LlamaForCausalLM" } else { "Qwen2ForCausalLM" });
            if out.is_some() {
                let c = case(name);
                let logits = m.forward(&c.input_ids, Some(&c.mask)).unwrap().to_vec3::<f32>().unwrap();
                let j = serde_json::json!({"input_ids": c.input_ids.to_vec2::<u32>().unwrap(), "attention_mask": c.mask_rows, "logits": logits});
                std::fs::write(target.join("mathforge_logits.json"), j.to_string()).unwrap();
            }
        }
    }
}
