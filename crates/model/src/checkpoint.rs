//! Checkpoints in the Hugging Face layout, so a mathforge model opens in `transformers` and a
//! `transformers` model opens here (issue 2, item 3; DESIGN.md "Files on disk").
//!
//! A model directory holds `config.json`, weights in `model.safetensors` or sharded as
//! `model-0000i-of-0000N.safetensors` plus `model.safetensors.index.json`
//! (`{"metadata": {"total_size": bytes}, "weight_map": {tensor: file}}`, the format
//! `save_pretrained` writes), `generation_config.json`, and usually `tokenizer.json`.
//! safetensors files are read by their header (8-byte little-endian length + JSON, see
//! <https://github.com/huggingface/safetensors> "Format") so a checkpoint is validated against
//! [`Config::tensor_shapes`] — missing, extra and mis-shaped tensors are errors naming the tensor
//! and the expected shape — before any weight is mapped.
//!
//! Weights stored as f32, bf16 or f16 load into any chosen dtype. Writing goes through temp files
//! renamed into place, so a crash never leaves a half-written `model.safetensors`.
//! Random init ([`init_varmap`]) follows `transformers`' `_init_weights` for Llama: normal(0,
//! `initializer_range`) for linear and embedding weights, ones for norms, zeros for biases, from a
//! seeded ChaCha stream so `model init --seed` is reproducible.
use crate::config::Config;
use crate::error::{Error, Result};
use crate::llama::Llama;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Name of the single-file weights.
pub const WEIGHTS: &str = "model.safetensors";
/// Name of the shard index.
pub const INDEX: &str = "model.safetensors.index.json";

/// One tensor as described by a safetensors header.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// safetensors dtype string (`F32`, `BF16`, `F16`, ...).
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// File holding it.
    pub file: PathBuf,
}

/// `float32`/`bfloat16`/`float16`/`float64` (config.json `torch_dtype` spelling) for a dtype.
pub fn dtype_name(dt: DType) -> &'static str {
    match dt {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        DType::F64 => "float64",
        _ => "float32",
    }
}

/// Parse `f32|float32|bf16|bfloat16|f16|float16|f64|float64`.
pub fn parse_dtype(s: &str) -> Result<DType> {
    match s.to_ascii_lowercase().as_str() {
        "f32" | "float32" | "float" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" | "half" => Ok(DType::F16),
        "f64" | "float64" | "double" => Ok(DType::F64),
        other => Err(Error::Msg(format!("unknown dtype `{other}` (expected f32, bf16, f16 or f64)"))),
    }
}

/// Read the JSON header of one safetensors file.
pub fn read_header(path: &Path) -> Result<Vec<TensorInfo>> {
    let bad = |msg: String| Error::Safetensors { path: path.to_path_buf(), msg };
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut len8 = [0u8; 8];
    f.read_exact(&mut len8).map_err(|_| bad("file shorter than the 8-byte header length".into()))?;
    let n = u64::from_le_bytes(len8);
    if n > 100 << 20 || n + 8 > file_len {
        return Err(bad(format!("header length {n} exceeds the file ({file_len} bytes)")));
    }
    let mut buf = vec![0u8; n as usize];
    f.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
    let v: Value = serde_json::from_slice(&buf).map_err(|e| bad(format!("header is not JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| bad("header is not a JSON object".into()))?;
    let mut out = Vec::new();
    for (name, info) in obj {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info.get("dtype").and_then(Value::as_str).ok_or_else(|| bad(format!("tensor `{name}`: no dtype")))?;
        let shape = info
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|x| x.as_u64().map(|x| x as usize)).collect::<Option<Vec<_>>>())
            .ok_or_else(|| bad(format!("tensor `{name}`: no valid shape")))?;
        out.push(TensorInfo { name: name.clone(), dtype: dtype.to_string(), shape, file: path.to_path_buf() });
    }
    Ok(out)
}

/// The safetensors files of a model directory: `model.safetensors`, or the files named by
/// `model.safetensors.index.json`.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join(WEIGHTS);
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join(INDEX);
    if !index.is_file() {
        return Err(Error::io(
            &single,
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("neither {WEIGHTS} nor {INDEX} found")),
        ));
    }
    let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
    let v: Value = serde_json::from_str(&text).map_err(|source| Error::Json { path: index.clone(), source })?;
    let map = v
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::field(&index, "weight_map", "missing or not an object"))?;
    let mut files: Vec<String> = Vec::new();
    for (name, f) in map {
        let f = f.as_str().ok_or_else(|| Error::field(&index, "weight_map", format!("`{name}` maps to a non-string")))?;
        if f.contains('/') || f.contains("..") {
            return Err(Error::field(&index, "weight_map", format!("`{name}` points outside the directory: {f}")));
        }
        if !files.iter().any(|x| x == f) {
            files.push(f.to_string());
        }
    }
    files.sort();
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}

/// All tensors of a model directory (from the headers only).
pub fn read_tensor_infos(dir: &Path) -> Result<Vec<TensorInfo>> {
    let mut out = Vec::new();
    for f in weight_files(dir)? {
        out.extend(read_header(&f)?);
    }
    Ok(out)
}

/// Tensors transformers keeps as non-persistent buffers in old checkpoints; harmless to ignore.
fn ignorable(name: &str, cfg: &Config) -> bool {
    name.ends_with("rotary_emb.inv_freq") || (cfg.tie_word_embeddings && name == "lm_head.weight")
}

/// Check the tensors of `dir` against what `cfg` needs; the first problem is returned.
pub fn validate(dir: &Path, cfg: &Config, infos: &[TensorInfo]) -> Result<()> {
    let have: HashMap<&str, &TensorInfo> = infos.iter().map(|i| (i.name.as_str(), i)).collect();
    let expected = cfg.tensor_shapes();
    for (name, shape) in &expected {
        match have.get(name.as_str()) {
            None => return Err(Error::MissingTensor { path: dir.to_path_buf(), name: name.clone(), expected: shape.clone() }),
            Some(info) if &info.shape != shape => {
                return Err(Error::ShapeMismatch {
                    path: info.file.clone(),
                    name: name.clone(),
                    expected: shape.clone(),
                    got: info.shape.clone(),
                })
            }
            Some(info) if !matches!(info.dtype.as_str(), "F32" | "BF16" | "F16" | "F64") => {
                return Err(Error::Safetensors {
                    path: info.file.clone(),
                    msg: format!("tensor `{name}` has dtype {} (expected F32, BF16, F16 or F64)", info.dtype),
                })
            }
            Some(_) => {}
        }
    }
    let wanted: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    for info in infos {
        if !wanted.contains(info.name.as_str()) && !ignorable(&info.name, cfg) {
            return Err(Error::ExtraTensor { path: info.file.clone(), name: info.name.clone(), shape: info.shape.clone() });
        }
    }
    Ok(())
}

/// Load a model directory for inference: weights are mmaped and converted to `dtype` on `device`.
pub fn load(dir: impl AsRef<Path>, dtype: DType, device: &Device) -> Result<Llama> {
    let dir = dir.as_ref();
    let cfg = Config::from_file(dir.join("config.json"))?;
    let infos = read_tensor_infos(dir)?;
    validate(dir, &cfg, &infos)?;
    let files = weight_files(dir)?;
    // SAFETY: the files are mapped read-only; as every safetensors loader does, we assume nobody
    // truncates or rewrites them while they are being read.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, dtype, device)? };
    Llama::new(&cfg, vb)
}

/// Load a model directory as trainable variables: returns the config and a `VarMap` whose entries
/// (HF names) back a model built with `Llama::new(&cfg, VarBuilder::from_varmap(&vm, dtype, dev))`.
pub fn load_varmap(dir: impl AsRef<Path>, dtype: DType, device: &Device) -> Result<(Config, VarMap)> {
    let dir = dir.as_ref();
    let cfg = Config::from_file(dir.join("config.json"))?;
    let infos = read_tensor_infos(dir)?;
    validate(dir, &cfg, &infos)?;
    let files = weight_files(dir)?;
    // SAFETY: as in `load`.
    let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&files)? };
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
        for (name, _) in cfg.tensor_shapes() {
            let t = st.load(&name, device)?.to_dtype(dtype)?;
            data.insert(name, Var::from_tensor(&t)?);
        }
    }
    Ok((cfg, varmap))
}

/// Standard normal samples from a seeded stream (Box–Muller), so init does not depend on candle's
/// unseedable CPU RNG.
fn normal_vec(rng: &mut rand_chacha::ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = rng.gen();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let th = 2.0 * std::f64::consts::PI * u2;
        out.push((r * th.cos()) as f32);
        out.push((r * th.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// Fresh trainable weights for `cfg`, reproducible from `seed` (see the module docs for the init).
pub fn init_varmap(cfg: &Config, seed: u64, dtype: DType, device: &Device) -> Result<VarMap> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
        for (name, shape) in cfg.tensor_shapes() {
            let n: usize = shape.iter().product();
            let t = if name.ends_with("norm.weight") {
                Tensor::ones(shape.as_slice(), DType::F32, device)?
            } else if name.ends_with(".bias") {
                Tensor::zeros(shape.as_slice(), DType::F32, device)?
            } else {
                Tensor::from_vec(normal_vec(&mut rng, n, cfg.initializer_range), shape.as_slice(), device)?
            };
            data.insert(name, Var::from_tensor(&t.to_dtype(dtype)?)?);
        }
    }
    Ok(varmap)
}

/// A randomly initialized model and the `VarMap` holding its weights.
pub fn init_model(cfg: &Config, seed: u64, dtype: DType, device: &Device) -> Result<(Llama, VarMap)> {
    let vm = init_varmap(cfg, seed, dtype, device)?;
    let model = Llama::new(cfg, VarBuilder::from_varmap(&vm, dtype, device))?;
    Ok((model, vm))
}

/// How to write a checkpoint.
#[derive(Debug, Clone)]
pub struct SaveOptions {
    /// dtype of the stored weights.
    pub dtype: DType,
    /// Split into shards of at most this many bytes (`save_pretrained`'s `max_shard_size`); `None`
    /// writes a single `model.safetensors`.
    pub max_shard_bytes: Option<usize>,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions { dtype: DType::F32, max_shard_bytes: None }
    }
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(v).map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
    text.push('\n');
    mathforge_io::atomic::write_atomic(path, text.as_bytes())?;
    Ok(())
}

fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let views: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    safetensors::serialize_to_file(views, Some(meta), &tmp)
        .map_err(|e| Error::Safetensors { path: path.to_path_buf(), msg: e.to_string() })?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// `generation_config.json` for `cfg` (bos/eos/pad ids; greedy by default).
pub fn generation_config_json(cfg: &Config) -> Value {
    let mut v = json!({"_from_model_config": true});
    let m = v.as_object_mut().expect("object literal");
    if let Some(b) = cfg.bos_token_id {
        m.insert("bos_token_id".into(), json!(b));
    }
    match cfg.eos_token_ids.as_slice() {
        [] => {}
        [one] => {
            m.insert("eos_token_id".into(), json!(one));
        }
        many => {
            m.insert("eos_token_id".into(), json!(many));
        }
    }
    if let Some(p) = cfg.pad_token_id {
        m.insert("pad_token_id".into(), json!(p));
    }
    v
}

/// Write `model` to `dir` in the HF layout (config.json, weights, generation_config.json).
/// Tokenizer files are the caller's (copy `tokenizer.json` beside it).
pub fn save(model: &Llama, dir: impl AsRef<Path>, opts: &SaveOptions) -> Result<()> {
    save_tensors(model.config(), &model.named_tensors(), dir, opts)
}

/// Write named tensors for `cfg` to `dir` in the HF layout (see [`save`]).
pub fn save_tensors(cfg: &Config, tensors: &[(String, Tensor)], dir: impl AsRef<Path>, opts: &SaveOptions) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let elem = opts.dtype.size_in_bytes();
    let converted: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), t.to_dtype(opts.dtype)?.contiguous()?)))
        .collect::<Result<_>>()?;
    // Greedy in-order packing, as save_pretrained does.
    let mut shards: Vec<Vec<(String, Tensor)>> = vec![Vec::new()];
    let mut cur = 0usize;
    for (n, t) in converted {
        let bytes = t.elem_count() * elem;
        if let Some(max) = opts.max_shard_bytes {
            if cur > 0 && cur + bytes > max {
                shards.push(Vec::new());
                cur = 0;
            }
        }
        cur += bytes;
        shards.last_mut().expect("non-empty").push((n, t));
    }
    // Remove weights of a previous save in the other layout so loaders do not pick stale files.
    if shards.len() == 1 {
        write_safetensors(&dir.join(WEIGHTS), &shards[0])?;
        let _ = std::fs::remove_file(dir.join(INDEX));
    } else {
        let n = shards.len();
        let mut weight_map = BTreeMap::new();
        let mut total = 0usize;
        for (i, shard) in shards.iter().enumerate() {
            let fname = format!("model-{:05}-of-{:05}.safetensors", i + 1, n);
            for (name, t) in shard {
                weight_map.insert(name.clone(), fname.clone());
                total += t.elem_count() * elem;
            }
            write_safetensors(&dir.join(&fname), shard)?;
        }
        write_json(&dir.join(INDEX), &json!({"metadata": {"total_size": total}, "weight_map": weight_map}))?;
        let _ = std::fs::remove_file(dir.join(WEIGHTS));
    }
    write_json(&dir.join("config.json"), &cfg.to_hf_json(dtype_name(opts.dtype)))?;
    write_json(&dir.join("generation_config.json"), &generation_config_json(cfg))?;
    Ok(())
}

/// Error if `tokenizer.json` has more tokens (incl. added tokens) than the embedding has rows;
/// fewer is fine (embeddings are often padded to a multiple of 64/128). Returns the tokenizer size.
pub fn check_tokenizer_vocab(tokenizer_json: impl AsRef<Path>, cfg: &Config) -> Result<usize> {
    let path = tokenizer_json.as_ref();
    let tok = tokenizers::Tokenizer::from_file(path)
        .map_err(|e| Error::Tokenizer { path: path.to_path_buf(), msg: e.to_string() })?;
    let n = tok.get_vocab_size(true);
    if n > cfg.vocab_size {
        return Err(Error::VocabMismatch { path: path.to_path_buf(), tokenizer_vocab: n, config_vocab: cfg.vocab_size });
    }
    Ok(n)
}
