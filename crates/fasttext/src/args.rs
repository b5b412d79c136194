//! Hyperparameters, mirroring fastText 0.9.2's `Args` (src/args.cc): names, defaults, and the
//! 12-integer + 1-double block that opens every `.bin` after the magic/version header.
//!
//! Defaults are fastText's `supervised` defaults (lr 0.1, dim 100, epoch 5, minCount 1,
//! wordNgrams 1, softmax, minn = maxn = 0, bucket 2,000,000, which [`Args::finalize`] turns to 0
//! when neither word n-grams nor char n-grams are used, as fastText does). The DeepSeekMath
//! classifier (paper §2.1) uses dim 256, lr 0.1, wordNgrams 3, minCount 3, epoch 3:
//! [`Args::deepseekmath`].
use crate::binio::{put_f64, put_i32, BinReader};
use crate::Result;
use std::io::{Read, Write};

/// fastText's `loss_name` (the numbers are the on-disk values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossName {
    /// Hierarchical softmax over a Huffman tree of label counts.
    Hs = 1,
    /// Negative sampling.
    Ns = 2,
    /// Full softmax.
    Softmax = 3,
    /// One-vs-all: independent binary logistic losses (multi-label).
    Ova = 4,
}

impl LossName {
    /// Parse fastText's flag value (`softmax`, `hs`, `ns`, `ova`; `one-vs-all` also accepted).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hs" => Some(LossName::Hs),
            "ns" => Some(LossName::Ns),
            "softmax" => Some(LossName::Softmax),
            "ova" | "one-vs-all" => Some(LossName::Ova),
            _ => None,
        }
    }
    fn from_i32(v: i32) -> Option<Self> {
        match v {
            1 => Some(LossName::Hs),
            2 => Some(LossName::Ns),
            3 => Some(LossName::Softmax),
            4 => Some(LossName::Ova),
            _ => None,
        }
    }
    /// fastText's name for the loss.
    pub fn name(self) -> &'static str {
        match self {
            LossName::Hs => "hs",
            LossName::Ns => "ns",
            LossName::Softmax => "softmax",
            LossName::Ova => "one-vs-all",
        }
    }
}

/// fastText's `model_name` (on-disk values). Only `Sup` can predict; the others load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelName {
    /// Continuous bag of words (unsupervised).
    Cbow = 1,
    /// Skip-gram (unsupervised).
    Sg = 2,
    /// Supervised classifier.
    Sup = 3,
}

impl ModelName {
    fn from_i32(v: i32) -> Option<Self> {
        match v {
            1 => Some(ModelName::Cbow),
            2 => Some(ModelName::Sg),
            3 => Some(ModelName::Sup),
            _ => None,
        }
    }
}

/// Training hyperparameters, named and defaulted as fastText's flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    /// `-lr` learning rate.
    pub lr: f64,
    /// `-lrUpdateRate`: tokens a thread processes before publishing its count (lr schedule).
    pub lr_update_rate: i32,
    /// `-dim` size of word vectors.
    pub dim: i32,
    /// `-ws` context window (unsupervised only; stored in the file).
    pub ws: i32,
    /// `-epoch` passes over the data.
    pub epoch: i32,
    /// `-minCount` minimal word occurrences.
    pub min_count: i32,
    /// `-minCountLabel` minimal label occurrences.
    pub min_count_label: i32,
    /// `-neg` negatives sampled (ns loss).
    pub neg: i32,
    /// `-wordNgrams` max length of word n-grams.
    pub word_ngrams: i32,
    /// `-loss`.
    pub loss: LossName,
    /// Model kind (always `Sup` when training here).
    pub model: ModelName,
    /// `-bucket` number of hash buckets for word and char n-grams.
    pub bucket: i32,
    /// `-minn` min char n-gram length (0: none).
    pub minn: i32,
    /// `-maxn` max char n-gram length (0: none).
    pub maxn: i32,
    /// `-thread` training threads.
    pub thread: i32,
    /// `-t` subsampling threshold (unsupervised only; stored in the file).
    pub t: f64,
    /// `-label` label prefix.
    pub label: String,
    /// `-verbose` level (0 silent, 1 summary, 2 progress).
    pub verbose: i32,
    /// `-seed` random seed (matrix init and per-thread samplers).
    pub seed: i32,
}

impl Default for Args {
    fn default() -> Self {
        Args::supervised()
    }
}

impl Args {
    /// fastText's defaults for the `supervised` command.
    pub fn supervised() -> Self {
        Args {
            lr: 0.1,
            lr_update_rate: 100,
            dim: 100,
            ws: 5,
            epoch: 5,
            min_count: 1,
            min_count_label: 0,
            neg: 5,
            word_ngrams: 1,
            loss: LossName::Softmax,
            model: ModelName::Sup,
            bucket: 2_000_000,
            minn: 0,
            maxn: 0,
            thread: 12,
            t: 1e-4,
            label: "__label__".to_string(),
            verbose: 2,
            seed: 0,
        }
    }

    /// The DeepSeekMath math-page classifier (paper §2.1): dim 256, lr 0.1, wordNgrams 3,
    /// minCount 3, epoch 3; everything else fastText's supervised default.
    pub fn deepseekmath() -> Self {
        Args { dim: 256, lr: 0.1, word_ngrams: 3, min_count: 3, epoch: 3, ..Args::supervised() }
    }

    /// Apply fastText's post-parse rule (no n-grams of any kind: no buckets) and validate.
    pub fn finalize(&mut self) -> Result<()> {
        if self.word_ngrams <= 1 && self.maxn == 0 {
            self.bucket = 0;
        }
        let bad = |m: &str| Err(crate::Error::Args(m.to_string()));
        if self.dim <= 0 {
            return bad("-dim must be positive");
        }
        if self.epoch <= 0 {
            return bad("-epoch must be positive");
        }
        if self.thread <= 0 {
            return bad("-thread must be positive");
        }
        if self.bucket < 0 || self.minn < 0 || self.maxn < 0 || self.neg < 0 {
            return bad("-bucket, -minn, -maxn and -neg must not be negative");
        }
        if self.word_ngrams > 1 && self.bucket == 0 {
            return bad("-wordNgrams > 1 needs -bucket > 0");
        }
        if self.maxn > 0 && self.bucket == 0 {
            return bad("char n-grams (-maxn > 0) need -bucket > 0");
        }
        if !(self.lr > 0.0) {
            return bad("-lr must be positive");
        }
        if self.label.is_empty() {
            return bad("-label must not be empty");
        }
        Ok(())
    }

    /// Write the args block (src/args.cc `Args::save`).
    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        for v in [
            self.dim,
            self.ws,
            self.epoch,
            self.min_count,
            self.neg,
            self.word_ngrams,
            self.loss as i32,
            self.model as i32,
            self.bucket,
            self.minn,
            self.maxn,
            self.lr_update_rate,
        ] {
            put_i32(w, v)?;
        }
        put_f64(w, self.t)
    }

    /// Read the args block. Fields not stored in the file (lr, label, thread...) keep their
    /// supervised defaults, as in fastText.
    pub fn read<R: Read>(r: &mut BinReader<R>) -> Result<Self> {
        let mut a = Args::supervised();
        a.dim = r.i32("args.dim")?;
        a.ws = r.i32("args.ws")?;
        a.epoch = r.i32("args.epoch")?;
        a.min_count = r.i32("args.minCount")?;
        a.neg = r.i32("args.neg")?;
        a.word_ngrams = r.i32("args.wordNgrams")?;
        let loss = r.i32("args.loss")?;
        a.loss = LossName::from_i32(loss).ok_or_else(|| r.bad("args.loss", format!("unknown loss {loss}")))?;
        let model = r.i32("args.model")?;
        a.model =
            ModelName::from_i32(model).ok_or_else(|| r.bad("args.model", format!("unknown model {model}")))?;
        a.bucket = r.i32("args.bucket")?;
        a.minn = r.i32("args.minn")?;
        a.maxn = r.i32("args.maxn")?;
        a.lr_update_rate = r.i32("args.lrUpdateRate")?;
        a.t = r.f64("args.t")?;
        if a.dim <= 0 || a.dim > 1 << 20 {
            return Err(r.bad("args.dim", format!("implausible dimension {}", a.dim)));
        }
        if a.bucket < 0 || a.minn < 0 || a.maxn < 0 {
            return Err(r.bad("args.bucket/minn/maxn", "negative value"));
        }
        Ok(a)
    }
}
