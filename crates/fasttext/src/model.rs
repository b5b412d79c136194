//! A loaded or trained classifier: fastText's `.bin`/`.ftz` file as a value, with prediction
//! and `test` (src/fasttext.cc `saveModel`/`loadModel`/`predictLine`/`test`).
//!
//! File layout: `int32 magic = 793712314`, `int32 version = 12`, the args block, the
//! dictionary, `bool quant_input`, the input matrix, `bool qout`, the output matrix.
//! Prediction follows fastText: the text's tokens plus `</s>` become input rows (words, and
//! word/char n-gram buckets), the hidden vector is their mean, and the loss turns it into label
//! scores; `k = -1` asks for all labels; labels scoring below `threshold` are dropped.
use crate::args::{Args, LossName, ModelName};
use crate::binio::{put_i32, BinReader};
use crate::dictionary::{Dictionary, EntryType, LineBuf};
use crate::loss::{self, HsTree, Tables};
use crate::matrix::Matrix;
use crate::meter::Meter;
use crate::{Error, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

/// fastText's file magic.
pub const MAGIC: i32 = 793_712_314;
/// The format version fastText 0.9 writes.
pub const VERSION: i32 = 12;

/// One predicted label with its probability (fastText's printed value, `p + 1e-5`).
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The label, prefix included (e.g. `__label__math`).
    pub label: String,
    /// Probability as fastText reports it.
    pub prob: f32,
}

/// Scratch buffers for prediction, reusable across calls (one per thread).
#[derive(Debug, Default, Clone)]
pub struct PredictBuf {
    line: LineBuf,
    hidden: Vec<f32>,
    out: Vec<f32>,
}

/// A fastText model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Hyperparameters (those stored in the file; others at their defaults).
    pub args: Args,
    /// Vocabulary and feature rules.
    pub dict: Dictionary,
    pub(crate) input: Matrix,
    pub(crate) output: Matrix,
    qout: bool,
    hs: Option<HsTree>,
    tables: Tables,
}

impl Model {
    /// Assemble a model from its parts (used by training).
    pub(crate) fn from_parts(args: Args, dict: Dictionary, input: Matrix, output: Matrix) -> Self {
        let hs = (args.loss == LossName::Hs).then(|| HsTree::new(&dict.counts(EntryType::Label)));
        Model { args, dict, input, output, qout: false, hs, tables: Tables::new() }
    }

    /// Load a `.bin` or `.ftz` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        Self::read(BufReader::with_capacity(1 << 20, f), path)
    }

    /// Read a model from any reader; `path` names it in errors.
    pub fn read(reader: impl Read, path: impl AsRef<Path>) -> Result<Self> {
        let mut r = BinReader::new(reader, path);
        let magic = r.i32("magic")?;
        if magic != MAGIC {
            return Err(r.bad("magic", format!("{magic} is not fastText's {MAGIC}")));
        }
        let version = r.i32("version")?;
        if version > VERSION || version < 11 {
            return Err(r.bad("version", format!("unsupported version {version} (expected 11 or 12)")));
        }
        let mut args = Args::read(&mut r)?;
        if version == 11 && args.model == ModelName::Sup {
            // fastText: version-11 supervised models predate char n-grams.
            args.maxn = 0;
        }
        let dict = Dictionary::read(&mut r, &args)?;
        let quant_input = r.u8("quant_input")? != 0;
        let input = Matrix::read(&mut r, quant_input, "input matrix")?;
        if !quant_input && dict.is_pruned() {
            return Err(r.bad("quant_input", "pruned dictionary with a dense input matrix"));
        }
        let qout = r.u8("qout")? != 0;
        let output = Matrix::read(&mut r, quant_input && qout, "output matrix")?;
        if input.cols() != args.dim as usize || output.cols() != args.dim as usize {
            return Err(r.bad(
                "matrix shape",
                format!("input has {} and output {} columns, args.dim is {}", input.cols(), output.cols(), args.dim),
            ));
        }
        let min_rows = dict.nwords() as usize + if dict.is_pruned() { 0 } else { args.bucket as usize };
        if !dict.is_pruned() && input.rows() < min_rows {
            return Err(r.bad("input matrix", format!("{} rows < nwords + bucket = {min_rows}", input.rows())));
        }
        if args.model == ModelName::Sup && output.rows() != dict.nlabels() as usize {
            return Err(r.bad("output matrix", format!("{} rows but {} labels", output.rows(), dict.nlabels())));
        }
        let mut m = Model::from_parts(args, dict, input, output);
        m.qout = qout;
        Ok(m)
    }

    /// Write the model in fastText's layout (to any writer).
    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        put_i32(w, MAGIC)?;
        put_i32(w, VERSION)?;
        self.args.write(w)?;
        self.dict.write(w)?;
        let quant = matches!(self.input, Matrix::Quant(_));
        w.write_all(&[quant as u8])?;
        self.input.write(w)?;
        w.write_all(&[self.qout as u8])?;
        self.output.write(w)
    }

    /// Save atomically (temp file + rename) to `path` (`.bin`, or `.ftz` for quantized models).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut f = mathforge_io::atomic::AtomicFile::create(path)?;
        self.write(&mut f).map_err(|e| Error::io(path, e))?;
        f.commit()?;
        Ok(())
    }

    /// Write the word vectors as fastText's `.vec` text file (`nwords dim`, then one word and
    /// its vector per line, `%g`-style with 5 significant digits, each value followed by a space).
    pub fn save_vectors(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut f = mathforge_io::atomic::AtomicFile::create(path)?;
        self.write_vectors(&mut f).map_err(|e| Error::io(path, e))?;
        f.commit()?;
        Ok(())
    }

    fn write_vectors(&self, f: &mut impl Write) -> std::io::Result<()> {
        let dim = self.args.dim as usize;
        writeln!(f, "{} {}", self.dict.nwords(), dim)?;
        let mut v = vec![0f32; dim];
        let mut buf = LineBuf::default();
        let mut line = Vec::with_capacity(dim * 12);
        for (i, e) in self.dict.entries().iter().enumerate().take(self.dict.nwords() as usize) {
            // fastText's getWordVector: the mean of the word's rows (itself + char n-grams).
            v.iter_mut().for_each(|x| *x = 0.0);
            let rows: Vec<i32> = if self.args.maxn > 0 {
                self.dict.subword_rows(i, &mut buf);
                buf.words.clone()
            } else {
                vec![i as i32]
            };
            for &r in &rows {
                self.input.add_row_to(&mut v, r as usize);
            }
            if !rows.is_empty() {
                let s = 1.0 / rows.len() as f32;
                v.iter_mut().for_each(|x| *x *= s);
            }
            line.clear();
            line.extend_from_slice(&e.word);
            line.push(b' ');
            for x in &v {
                line.extend_from_slice(crate::format::fmt_g(*x as f64, 5).as_bytes());
                line.push(b' ');
            }
            line.push(b'\n');
            f.write_all(&line)?;
        }
        Ok(())
    }

    /// Number of labels.
    pub fn nlabels(&self) -> usize {
        self.dict.nlabels() as usize
    }

    /// All labels in id order (most frequent first).
    pub fn labels(&self) -> Vec<String> {
        (0..self.dict.nlabels()).map(|i| String::from_utf8_lossy(self.dict.label(i)).into_owned()).collect()
    }

    /// The label string of label id `i`.
    pub fn label(&self, i: i32) -> String {
        String::from_utf8_lossy(self.dict.label(i)).into_owned()
    }

    /// Whether the input matrix is product-quantized (an `.ftz` model).
    pub fn is_quantized(&self) -> bool {
        matches!(self.input, Matrix::Quant(_))
    }

    fn check_supervised(&self) -> Result<()> {
        if self.args.model != ModelName::Sup {
            return Err(Error::Unsupported("model needs to be supervised for prediction".into()));
        }
        Ok(())
    }

    /// Predict from one line of bytes (`eos`: the line ended with a newline, as every line of a
    /// file does and as fastText's Python binding appends). Returns `(log(p + 1e-5), label id)`,
    /// best first; `k < 0` means all labels. Errors only for non-supervised models.
    pub fn predict_line(&self, line: &[u8], eos: bool, k: i32, threshold: f32, buf: &mut PredictBuf) -> Result<Vec<(f32, i32)>> {
        self.check_supervised()?;
        self.dict.line(line, eos, &mut buf.line);
        Ok(self.predict_rows(k, threshold, buf))
    }

    fn predict_rows(&self, k: i32, threshold: f32, buf: &mut PredictBuf) -> Vec<(f32, i32)> {
        if buf.line.words.is_empty() {
            return Vec::new();
        }
        let k = if k < 0 { self.nlabels() } else { k as usize };
        self.hidden(&buf.line.words, &mut buf.hidden);
        loss::predict(self.args.loss, &self.tables, self.hs.as_ref(), &self.output, &buf.hidden, k, threshold, &mut buf.out)
    }

    /// The mean of the input rows (`computeHidden`), prefetching ahead.
    fn hidden(&self, rows: &[i32], hidden: &mut Vec<f32>) {
        hidden.clear();
        hidden.resize(self.args.dim as usize, 0.0);
        const AHEAD: usize = 4;
        for &r in rows.iter().take(AHEAD) {
            self.input.prefetch_row(r as usize);
        }
        for (i, &r) in rows.iter().enumerate() {
            if let Some(&next) = rows.get(i + AHEAD) {
                self.input.prefetch_row(next as usize);
            }
            self.input.add_row_to(hidden, r as usize);
        }
        let s = 1.0 / rows.len() as f32;
        hidden.iter_mut().for_each(|x| *x *= s);
    }

    /// Predict labels for a document. Newlines inside `text` act as spaces and one `</s>` is
    /// appended (fastText's Python `predict` on a single line). `k < 0`: all labels.
    pub fn predict(&self, text: &str, k: i32, threshold: f32) -> Result<Vec<Prediction>> {
        let mut buf = PredictBuf::default();
        self.predict_with(text.as_bytes(), k, threshold, &mut buf)
    }

    /// [`Model::predict`] with reusable scratch buffers.
    pub fn predict_with(&self, text: &[u8], k: i32, threshold: f32, buf: &mut PredictBuf) -> Result<Vec<Prediction>> {
        let scored = self.predict_line(text, true, k, threshold, buf)?;
        Ok(scored.into_iter().map(|(s, i)| Prediction { label: self.label(i), prob: s.exp() }).collect())
    }

    /// The probability of one label for a document (0 when the label is unknown): the
    /// classifier score the corpus miner ranks pages by.
    pub fn label_prob(&self, text: &[u8], label: &str, buf: &mut PredictBuf) -> Result<f32> {
        let id = self.dict.id(label.as_bytes());
        if id < self.dict.nwords() {
            return Ok(0.0);
        }
        let want = id - self.dict.nwords();
        let scored = self.predict_line(text, true, -1, 0.0, buf)?;
        Ok(scored.into_iter().find(|p| p.1 == want).map(|p| p.0.exp()).unwrap_or(0.0))
    }

    /// fastText's `test`: for each line with at least one label and one input row, predict the
    /// top `k` above `threshold` and count hits against the gold labels.
    pub fn test(&self, reader: impl BufRead, k: i32, threshold: f32) -> Result<Meter> {
        self.check_supervised()?;
        let mut meter = Meter::default();
        let mut buf = PredictBuf::default();
        for_each_line(reader, |line, eos| {
            self.dict.line(line, eos, &mut buf.line);
            if !buf.line.labels.is_empty() && !buf.line.words.is_empty() {
                let preds = self.predict_rows(k, threshold, &mut buf);
                meter.log(&buf.line.labels, &preds);
            }
        })
        .map_err(|e| Error::io("<test input>", e))?;
        Ok(meter)
    }
}

/// Call `f(line_without_newline, ended_with_newline)` for each line of `reader`, reusing one
/// buffer (lines may be arbitrarily long and need not be UTF-8).
pub fn for_each_line(mut reader: impl BufRead, mut f: impl FnMut(&[u8], bool)) -> std::io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let eos = line.last() == Some(&b'\n');
        let body = if eos { &line[..line.len() - 1] } else { &line[..] };
        f(body, eos);
    }
}
