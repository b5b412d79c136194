//! Tokenizers: load any Hugging Face `tokenizer.json`, and train the byte-level BPE tokenizer
//! mathforge uses for models trained from scratch.
//!
//! Why a wrapper around the `tokenizers` crate: the rest of mathforge needs more than
//! `encode`/`decode`: which ids end a sequence, which id pads, and where a tokenizer came from
//! (so errors can name the file). Those live in `tokenizer_config.json` / `generation_config.json`
//! in the Hugging Face layout, next to `tokenizer.json`; [`Tokenizer::from_dir`] reads all three.
//!
//! Training ([`train_bpe`]) follows DeepSeekMath (Shao et al. 2024), which reuses the
//! DeepSeek LLM tokenizer (DeepSeek-AI 2024, §2.1): byte-level BPE whose pre-tokenizer splits
//! every digit into its own token, so numbers are seen digit by digit. Concretely:
//! - normalizer: none (the text is kept byte for byte);
//! - pre-tokenizer: `Sequence[Digits(individual_digits=true), ByteLevel(add_prefix_space=false,
//!   use_regex=true)]` (the GPT-2 split regex after the digit split);
//! - model: BPE seeded with all 256 byte symbols, so no input is ever unknown;
//! - post-processor: `TemplateProcessing` that prepends the BOS token (as DeepSeek's and Llama's
//!   tokenizers do when `add_special_tokens=true`);
//! - decoder: ByteLevel.
//!
//! Special tokens (our choice, documented in `docs/generate.md`): DeepSeek's spellings
//! `<｜begin▁of▁sentence｜>` (id 0), `<｜end▁of▁sentence｜>` (id 1) and a separate
//! `<｜pad｜>` (id 2), so a mathforge tokenizer is drop-in for DeepSeekMath-style prompts and
//! padding never collides with EOS (EOS must stay a learnable target in SFT).
//!
//! The saved `tokenizer.json` loads in Python `tokenizers` and in `transformers`
//! (`PreTrainedTokenizerFast`, via the `tokenizer_config.json` we write beside it).
use crate::chat::HF_CHAT_TEMPLATE;
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper};

/// BOS token of mathforge-trained tokenizers (DeepSeek's spelling).
pub const BOS_TOKEN: &str = "<｜begin▁of▁sentence｜>";
/// EOS token of mathforge-trained tokenizers (DeepSeek's spelling).
pub const EOS_TOKEN: &str = "<｜end▁of▁sentence｜>";
/// PAD token of mathforge-trained tokenizers (distinct from EOS on purpose).
pub const PAD_TOKEN: &str = "<｜pad｜>";

/// Name of the tokenizer file in a Hugging Face model folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Name of the tokenizer config (special tokens, chat template) in a Hugging Face model folder.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

/// A text tokenizer plus the special-token facts generation and training need.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Vec<u32>,
    pad: Option<u32>,
    source: Option<PathBuf>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("pad", &self.pad)
            .field("source", &self.source)
            .finish()
    }
}

fn tok_err(path: Option<&Path>, what: &str, e: impl std::fmt::Display) -> Error {
    match path {
        Some(p) => Error::Msg(format!("{}: {what}: {e}", p.display())),
        None => Error::Msg(format!("tokenizer: {what}: {e}")),
    }
}

/// `"<s>"` or `{"content": "<s>", ...}`, the two shapes `tokenizer_config.json` uses.
fn special_token_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(m) => m.get("content").and_then(|c| c.as_str()).map(str::to_owned),
        _ => None,
    }
}

/// `1` or `[1, 2]`, the two shapes `generation_config.json` uses for `eos_token_id`.
fn id_list(v: &serde_json::Value) -> Option<Vec<u32>> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().and_then(|x| u32::try_from(x).ok()).map(|x| vec![x]),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
            .collect::<Option<Vec<u32>>>(),
        _ => None,
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    match std::fs::read_to_string(path) {
        Ok(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| tok_err(Some(path), "invalid JSON", e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(tok_err(Some(path), "cannot read", e)),
    }
}

impl Tokenizer {
    /// Wrap an in-memory `tokenizers` tokenizer; special tokens are guessed from the vocabulary
    /// (mathforge's DeepSeek spellings, then `<s>`/`</s>`/`<pad>`, then Qwen's `<|endoftext|>`).
    pub fn from_inner(inner: tokenizers::Tokenizer) -> Self {
        let find = |names: &[&str]| names.iter().find_map(|n| inner.token_to_id(n));
        let bos = find(&[BOS_TOKEN, "<s>", "<|begin_of_text|>"]);
        let eos: Vec<u32> =
            find(&[EOS_TOKEN, "</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>"]).into_iter().collect();
        let pad = find(&[PAD_TOKEN, "<pad>", "<|pad|>"]);
        Tokenizer { inner, bos, eos, pad, source: None }
    }

    /// Load a `tokenizer.json` file (any Hugging Face tokenizer).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| tok_err(Some(path), "cannot load tokenizer", e))?;
        let mut t = Self::from_inner(inner);
        t.source = Some(path.to_path_buf());
        Ok(t)
    }

    /// Load a model folder: `tokenizer.json`, then the special tokens of `tokenizer_config.json`
    /// (`bos_token`, `eos_token`, `pad_token`) and `generation_config.json` (`eos_token_id`,
    /// which may list several ids and wins for EOS), where present.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let tok_path = dir.join(TOKENIZER_FILE);
        if !tok_path.exists() {
            return Err(Error::Msg(format!(
                "{}: missing (a model folder needs the Hugging Face tokenizer.json)",
                tok_path.display()
            )));
        }
        let mut t = Self::from_file(&tok_path)?;
        let cfg_path = dir.join(TOKENIZER_CONFIG_FILE);
        if let Some(cfg) = read_json(&cfg_path)? {
            let lookup = |field: &str| -> Result<Option<u32>> {
                let Some(v) = cfg.get(field) else { return Ok(None) };
                if v.is_null() {
                    return Ok(None);
                }
                let text = special_token_text(v).ok_or_else(|| {
                    tok_err(Some(&cfg_path), field, "expected a string or {\"content\": ...}")
                })?;
                t.inner.token_to_id(&text).map(Some).ok_or_else(|| {
                    tok_err(Some(&cfg_path), field, format!("token {text:?} is not in {}", tok_path.display()))
                })
            };
            if let Some(id) = lookup("bos_token")? {
                t.bos = Some(id);
            }
            if let Some(id) = lookup("eos_token")? {
                t.eos = vec![id];
            }
            if let Some(id) = lookup("pad_token")? {
                t.pad = Some(id);
            }
        }
        let gen_path = dir.join("generation_config.json");
        if let Some(gen) = read_json(&gen_path)? {
            if let Some(v) = gen.get("eos_token_id").filter(|v| !v.is_null()) {
                t.eos = id_list(v)
                    .ok_or_else(|| tok_err(Some(&gen_path), "eos_token_id", "expected an integer or a list of integers"))?;
            }
        }
        Ok(t)
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Where this tokenizer was loaded from, if from disk.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Vocabulary size including added (special) tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// BOS id, if the tokenizer has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// Ids that end a generated sequence (may be empty).
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos
    }

    /// Override the EOS ids (e.g. from a model's `generation_config.json`).
    pub fn set_eos_ids(&mut self, ids: Vec<u32>) {
        self.eos = ids;
    }

    /// Padding id: the PAD token, else the first EOS id, else 0 (padding is always masked, so
    /// its value only has to be a valid id).
    pub fn pad_id(&self) -> u32 {
        self.pad.or_else(|| self.eos.first().copied()).unwrap_or(0)
    }

    /// Id of a token string, if in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Encode text. With `add_special_tokens` the tokenizer's post-processor runs (for
    /// mathforge, Llama and DeepSeek tokenizers that prepends BOS; Qwen2 adds nothing).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, add_special_tokens)
            .map_err(|e| tok_err(self.source.as_deref(), "encode", e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decode ids to text; `skip_special_tokens` drops BOS/EOS/PAD and other special tokens.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| tok_err(self.source.as_deref(), "decode", e))
    }

    /// Text of a token id, if in the vocabulary (special tokens by their spelling).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Write `tokenizer.json` and `tokenizer_config.json` (special tokens and the DeepSeekMath
    /// chat template, for `transformers`' `AutoTokenizer`) into `dir`, each via temp file + rename.
    pub fn save_dir(&self, dir: impl AsRef<Path>, model_max_length: Option<usize>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| tok_err(Some(dir), "cannot create folder", e))?;
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| tok_err(None, "cannot serialize tokenizer", e))?;
        write_atomic(&dir.join(TOKENIZER_FILE), json.as_bytes())?;
        let cfg = self.hf_tokenizer_config(model_max_length);
        let cfg = serde_json::to_string_pretty(&cfg).map_err(|e| tok_err(None, "cannot serialize config", e))?;
        write_atomic(&dir.join(TOKENIZER_CONFIG_FILE), cfg.as_bytes())?;
        Ok(())
    }

    /// The `tokenizer_config.json` that makes `AutoTokenizer.from_pretrained(dir)` load this
    /// tokenizer as a `PreTrainedTokenizerFast` with the right special tokens and chat template.
    pub fn hf_tokenizer_config(&self, model_max_length: Option<usize>) -> serde_json::Value {
        let name = |id: Option<u32>| id.and_then(|i| self.inner.id_to_token(i));
        let mut m = serde_json::Map::new();
        m.insert("tokenizer_class".into(), "PreTrainedTokenizerFast".into());
        m.insert("bos_token".into(), name(self.bos).into());
        m.insert("eos_token".into(), name(self.eos.first().copied()).into());
        m.insert("pad_token".into(), name(self.pad.or(self.eos.first().copied())).into());
        m.insert("add_bos_token".into(), self.bos.is_some().into());
        m.insert("add_eos_token".into(), false.into());
        m.insert("clean_up_tokenization_spaces".into(), false.into());
        m.insert("model_max_length".into(), model_max_length.unwrap_or(1 << 20).into());
        m.insert("chat_template".into(), HF_CHAT_TEMPLATE.into());
        serde_json::Value::Object(m)
    }
}

/// Temp file + rename in the target's folder (`mathforge_io::atomic`), so a crash never leaves
/// a half-written tokenizer.
fn write_atomic(target: &Path, bytes: &[u8]) -> Result<()> {
    mathforge_io::atomic::write_atomic(target, bytes).map_err(|e| Error::Msg(e.to_string()))
}

/// Settings of [`train_bpe`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BpeTrainConfig {
    /// Final vocabulary size, including the 256 byte symbols and the special tokens.
    pub vocab_size: usize,
    /// A pair must occur at least this often to be merged.
    pub min_frequency: u64,
    /// Longest token, in characters of the byte-level alphabet (None: unlimited).
    pub max_token_length: Option<usize>,
}

impl Default for BpeTrainConfig {
    fn default() -> Self {
        // DeepSeek LLM's tokenizer has 100k merges-based entries (100015 with specials); the
        // default here is for small from-scratch models and is overridden by `--vocab-size`.
        BpeTrainConfig { vocab_size: 32_000, min_frequency: 2, max_token_length: Some(32) }
    }
}

/// The untrained mathforge tokenizer pipeline (digit split + byte-level BPE, BOS template).
fn pipeline() -> Result<tokenizers::Tokenizer> {
    let pre = Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ]);
    let mut tok = tokenizers::Tokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(pre));
    tok.with_decoder(Some(ByteLevel::new(false, true, true)));
    Ok(tok)
}

/// Train a byte-level, digit-splitting BPE tokenizer (see the module docs) on `texts`.
///
/// `texts` is any stream of documents (lines, JSONL `text` fields, ...). The special tokens get
/// ids 0 (BOS), 1 (EOS), 2 (PAD); the 256 byte symbols follow, then the merges.
pub fn train_bpe<I, S>(texts: I, cfg: &BpeTrainConfig) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let specials: Vec<AddedToken> =
        [BOS_TOKEN, EOS_TOKEN, PAD_TOKEN].iter().map(|s| AddedToken::from(s.to_string(), true)).collect();
    let min_vocab = specials.len() + 256;
    if cfg.vocab_size < min_vocab {
        return Err(Error::Msg(format!(
            "tokenizer train: vocab_size {} is too small: the 256 byte symbols and {} special tokens need at least {min_vocab}",
            cfg.vocab_size,
            specials.len()
        )));
    }
    let alphabet: HashSet<char> = ByteLevel::alphabet().into_iter().collect();
    let trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(cfg.vocab_size)
        .min_frequency(cfg.min_frequency)
        .max_token_length(cfg.max_token_length)
        .special_tokens(specials)
        .initial_alphabet(alphabet)
        .build();
    let mut trainer = TrainerWrapper::from(trainer);
    let mut tok = pipeline()?;
    tok.train(&mut trainer, texts).map_err(|e| tok_err(None, "BPE training failed", e))?;
    let bos = tok
        .token_to_id(BOS_TOKEN)
        .ok_or_else(|| tok_err(None, "after training", "BOS token missing from the vocabulary"))?;
    let post = TemplateProcessing::builder()
        .try_single(format!("{BOS_TOKEN} $A"))
        .and_then(|b| b.try_pair(format!("{BOS_TOKEN} $A {BOS_TOKEN} $B")))
        .map_err(|e| tok_err(None, "post-processor template", e))?
        .special_tokens(vec![(BOS_TOKEN.to_string(), bos)])
        .build()
        .map_err(|e| tok_err(None, "post-processor", e))?;
    tok.with_post_processor(Some(post));
    Ok(Tokenizer::from_inner(tok))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        let mut v = Vec::new();
        for i in 0..200 {
            v.push(format!("The sum of {i} and {} is {}. Therefore the answer is \\boxed{{{}}}.\n", i * 7, i * 8, i * 8));
            v.push("Let x be a real number such that x^2 = 4. Then x = 2 or x = -2.\n".to_string());
        }
        v
    }

    #[test]
    fn trained_tokenizer_splits_digits_and_round_trips() {
        let tok = train_bpe(corpus().into_iter(), &BpeTrainConfig { vocab_size: 400, ..Default::default() }).unwrap();
        assert_eq!(tok.token_to_id(BOS_TOKEN), Some(0));
        assert_eq!(tok.token_to_id(EOS_TOKEN), Some(1));
        assert_eq!(tok.token_to_id(PAD_TOKEN), Some(2));
        assert!(tok.vocab_size() <= 400 && tok.vocab_size() > 300, "{}", tok.vocab_size());
        let text = "The sum of 1234 and 56 is 1290. ünïcödé ∑";
        let ids = tok.encode(text, true).unwrap();
        assert_eq!(ids[0], 0, "BOS is prepended");
        assert_eq!(tok.decode(&ids, true).unwrap(), text);
        // Every digit is its own token: the tokens of "1234" are four single characters.
        let ids = tok.encode("1234", false).unwrap();
        let toks: Vec<String> = ids.iter().map(|&i| tok.id_to_token(i).unwrap()).collect();
        assert_eq!(toks, vec!["1", "2", "3", "4"]);
        // Frequent words were merged: "The" is a single token.
        assert_eq!(tok.encode("The", false).unwrap().len(), 1);
    }

    #[test]
    fn too_small_vocab_is_a_clear_error() {
        let err = train_bpe(corpus().into_iter(), &BpeTrainConfig { vocab_size: 100, ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("at least 259"), "{err}");
    }

    #[test]
    fn save_and_reload_dir() {
        let tok = train_bpe(corpus().into_iter(), &BpeTrainConfig { vocab_size: 320, ..Default::default() }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        tok.save_dir(dir.path(), Some(2048)).unwrap();
        let back = Tokenizer::from_dir(dir.path()).unwrap();
        assert_eq!(back.bos_id(), Some(0));
        assert_eq!(back.eos_ids(), &[1]);
        assert_eq!(back.pad_id(), 2);
        let text = "x = 42";
        assert_eq!(back.encode(text, true).unwrap(), tok.encode(text, true).unwrap());
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(TOKENIZER_CONFIG_FILE)).unwrap()).unwrap();
        assert_eq!(cfg["eos_token"], EOS_TOKEN);
        assert_eq!(cfg["model_max_length"], 2048);
    }

    #[test]
    fn bad_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = Tokenizer::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json") && err.contains("missing"), "{err}");
        std::fs::write(dir.path().join(TOKENIZER_FILE), "{not json").unwrap();
        let err = Tokenizer::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
    }

    #[test]
    fn generation_config_eos_list_wins() {
        let tok = train_bpe(corpus().into_iter(), &BpeTrainConfig { vocab_size: 300, ..Default::default() }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        tok.save_dir(dir.path(), None).unwrap();
        std::fs::write(dir.path().join("generation_config.json"), r#"{"eos_token_id": [1, 2]}"#).unwrap();
        assert_eq!(Tokenizer::from_dir(dir.path()).unwrap().eos_ids(), &[1, 2]);
        std::fs::write(dir.path().join("generation_config.json"), r#"{"eos_token_id": "x"}"#).unwrap();
        let err = Tokenizer::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("generation_config.json") && err.contains("eos_token_id"), "{err}");
    }
}
