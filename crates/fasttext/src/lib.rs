//! A fastText-compatible supervised text classifier (Joulin et al. 2017, "Bag of Tricks for
//! Efficient Text Classification"), as DeepSeekMath uses it to mine math pages (Shao et al.
//! 2024, §2.1: dim 256, lr 0.1, wordNgrams 3, minCount 3, epoch 3).
//!
//! It reproduces fastText 0.9.2's supervised mode: the same tokenisation, vocabulary, hashing
//! of word and char n-grams into buckets ([`dictionary`]), the four losses ([`loss`]), linear
//! learning-rate decay and lock-free multi-threaded training ([`train`]), and the `.bin`/`.ftz`
//! file layout byte for byte ([`model`], [`matrix`]), so a model trained by fastText predicts
//! the same labels and probabilities here and a model trained here loads in fastText.
//!
//! ```
//! use mathforge_fasttext::{train, Args, Model};
//! let dir = tempfile::tempdir().unwrap();
//! let data = dir.path().join("train.txt");
//! let mut text = String::new();
//! for _ in 0..50 {
//!     text.push_str("__label__math integral of x squared dx\n");
//!     text.push_str("__label__other the cat sat on the mat\n");
//! }
//! std::fs::write(&data, text).unwrap();
//! let args = Args { epoch: 5, thread: 1, dim: 10, ..Args::supervised() };
//! let trained = train(&args, &data, &|_| {}, &|_| {}).unwrap();
//! let model = trained.model;
//! model.save(dir.path().join("m.bin")).unwrap();
//! let model = Model::load(dir.path().join("m.bin")).unwrap();
//! let top = model.predict("the integral of x", 1, 0.0).unwrap();
//! assert_eq!(top[0].label, "__label__math");
//! ```
#![deny(missing_docs)]

pub mod args;
pub mod binio;
pub mod dictionary;
pub mod error;
pub mod format;
pub mod loss;
pub mod matrix;
pub mod meter;
pub mod model;
pub mod text;
pub mod train;

pub use args::{Args, LossName, ModelName};
pub use error::{Error, Result};
pub use meter::Meter;
pub use model::{Model, PredictBuf, Prediction};
pub use train::{train, DictStats, TrainProgress, Trained};
