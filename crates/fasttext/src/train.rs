//! Supervised training as fastText 0.9.2 does it (src/fasttext.cc `train`, `trainThread`,
//! `supervised`; src/model.cc `update`; src/loss.cc `forward`).
//!
//! * The vocabulary is counted over the whole file (here in parallel over line-aligned byte
//!   ranges, then merged: the counts are the same as fastText's single pass).
//! * The input matrix (`nwords + bucket` rows) starts uniform in `[-1/dim, 1/dim]`, the output
//!   matrix (`nlabels` rows) at zero.
//! * Each of `thread` workers opens the file at byte `i * size / thread` and reads lines
//!   (wrapping to the start at EOF) until the shared token counter reaches `epoch * ntokens`.
//!   The learning rate decays linearly with that counter, which each worker publishes every
//!   `lrUpdateRate` tokens.
//! * Per line with labels: hidden = mean of the input rows; the loss updates the output rows and
//!   accumulates the gradient; the gradient, divided by the number of rows, is added to every
//!   input row. Softmax, negative sampling and hierarchical softmax train on one label drawn
//!   uniformly from the line's labels; one-vs-all on all of them.
//! * Updates are lock-free (Hogwild, Recht et al. 2011): workers write the shared matrices
//!   without synchronisation, exactly like fastText. Rows touched by two threads at once lose
//!   a little precision in a race; that is the algorithm, not a bug, and it is why the
//!   matrices are shared through raw pointers below.
use crate::args::{Args, LossName};
use crate::dictionary::{Dictionary, EntryType, LineBuf};
use crate::loss::{softmax, HsTree, Tables};
use crate::matrix::{axpy, dot, prefetch, DenseMatrix, Matrix};
use crate::model::Model;
use crate::{Error, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A snapshot of training progress, handed to the caller's callback about every 100 ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainProgress {
    /// Fraction of `epoch * ntokens` processed, in `[0, 1]`.
    pub progress: f64,
    /// Tokens per second per thread (fastText's `words/sec/thread`).
    pub words_per_sec_per_thread: f64,
    /// Current learning rate.
    pub lr: f64,
    /// Average loss of thread 0 so far.
    pub loss: f64,
    /// Estimated seconds left.
    pub eta_secs: f64,
}

/// What happened while building the vocabulary (fastText prints these at `-verbose 2`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DictStats {
    /// Tokens read (labels and `</s>` included).
    pub ntokens: i64,
    /// Words kept after `minCount`.
    pub nwords: i32,
    /// Labels kept after `minCountLabel`.
    pub nlabels: i32,
}

/// Build the vocabulary of a training file with `args.thread` workers.
pub fn build_dictionary(args: &Args, path: &Path) -> Result<Dictionary> {
    let size = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    let nthreads = (args.thread.max(1) as u64).min(size.max(1) / (1 << 20) + 1) as usize;
    let offsets = line_offsets(path, size, nthreads)?;
    let parts: Vec<Result<Dictionary>> = std::thread::scope(|s| {
        let handles: Vec<_> = offsets
            .windows(2)
            .map(|w| {
                let (start, end) = (w[0], w[1]);
                s.spawn(move || count_range(args, path, start, end))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Error::Unsupported("counting thread panicked".into())))).collect()
    });
    let mut dict = Dictionary::new(args);
    for p in parts {
        dict.merge(&p?);
    }
    dict.threshold(args.min_count as i64, args.min_count_label as i64);
    dict.init_ngrams();
    if dict.entries().is_empty() {
        return Err(Error::BadData {
            path: path.to_path_buf(),
            message: "empty vocabulary; try a smaller -minCount value".into(),
        });
    }
    if dict.nlabels() == 0 {
        return Err(Error::BadData {
            path: path.to_path_buf(),
            message: format!(
                "no labels: supervised training needs lines with `{}`-prefixed tokens (or lower -minCountLabel)",
                args.label
            ),
        });
    }
    Ok(dict)
}

/// `n + 1` byte offsets splitting the file into `n` ranges that start at line starts.
fn line_offsets(path: &Path, size: u64, n: usize) -> Result<Vec<u64>> {
    let mut out = vec![0u64];
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut skip = Vec::new();
    for t in 1..n {
        let target = (t as u64 * size / n as u64).max(*out.last().unwrap_or(&0));
        if target == 0 {
            out.push(0);
            continue;
        }
        r.seek(SeekFrom::Start(target - 1)).map_err(|e| Error::io(path, e))?;
        skip.clear();
        let got = r.read_until(b'\n', &mut skip).map_err(|e| Error::io(path, e))? as u64;
        out.push((target - 1 + got).min(size));
    }
    out.push(size);
    Ok(out)
}

fn count_range(args: &Args, path: &Path, start: u64, end: u64) -> Result<Dictionary> {
    let mut dict = Dictionary::new(args);
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    r.seek(SeekFrom::Start(start)).map_err(|e| Error::io(path, e))?;
    let mut pos = start;
    let mut line = Vec::new();
    while pos < end {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        dict.add_text(&line);
    }
    Ok(dict)
}

/// A matrix shared by all training threads without locks (Hogwild).
#[derive(Clone, Copy)]
struct Shared {
    ptr: *mut f32,
    cols: usize,
}

// SAFETY: Hogwild training deliberately lets threads read and write rows concurrently without
// synchronisation (see the module docs); every access stays inside the allocation, which
// outlives the scoped threads.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// Row `i` as a mutable slice.
    ///
    /// SAFETY: `i` must be a valid row; concurrent writers are the accepted Hogwild race.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, i: usize) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.ptr.add(i * self.cols), self.cols)
    }
    #[inline]
    fn prefetch(&self, i: usize) {
        prefetch(self.ptr.wrapping_add(i * self.cols), self.cols);
    }
}

/// Per-thread random numbers (splitmix64: fast, and good enough for sampling labels).
struct Rng(u64);
impl Rng {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    #[inline]
    fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }
    /// Uniform in `[-a, a)`.
    #[inline]
    fn uniform(&mut self, a: f32) -> f32 {
        let u = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        (2.0 * u - 1.0) * a
    }
}

/// Negative-sampling distribution: fastText fills a 10M-entry table with each label repeated
/// `ceil(sqrt(count) * 1e7 / z)` times and draws uniformly from it; sampling the cumulative
/// sums of those repeat counts draws from the same distribution without the table.
struct Negatives {
    cumulative: Vec<u64>,
}

impl Negatives {
    fn new(counts: &[i64]) -> Self {
        const TABLE: f64 = 10_000_000.0;
        let z: f64 = counts.iter().map(|&c| (c as f64).sqrt()).sum();
        let mut acc = 0u64;
        let cumulative = counts
            .iter()
            .map(|&c| {
                acc += ((c as f64).sqrt() * TABLE / z).ceil() as u64;
                acc
            })
            .collect();
        Negatives { cumulative }
    }
    fn sample(&self, rng: &mut Rng, target: i32) -> Option<usize> {
        let total = *self.cumulative.last()?;
        if self.cumulative.len() < 2 || total == 0 {
            return None;
        }
        loop {
            let x = rng.below(total as usize) as u64;
            let i = self.cumulative.partition_point(|&c| c <= x);
            if i as i32 != target {
                return Some(i);
            }
        }
    }
}

struct Ctx<'a> {
    args: &'a Args,
    dict: &'a Dictionary,
    path: &'a Path,
    size: u64,
    wi: Shared,
    wo: Shared,
    osz: usize,
    tables: Tables,
    hs: Option<HsTree>,
    negatives: Option<Negatives>,
    token_count: AtomicI64,
    stop: AtomicBool,
    loss0: AtomicU64,
}

struct Worker<'a> {
    ctx: &'a Ctx<'a>,
    hidden: Vec<f32>,
    grad: Vec<f32>,
    out: Vec<f32>,
    rng: Rng,
    loss_sum: f64,
    nexamples: u64,
}

impl Worker<'_> {
    #[inline]
    fn binary_logistic(&mut self, target: usize, positive: bool, lr: f32) -> f32 {
        let ctx = self.ctx;
        // SAFETY: target < osz (a label id or a tree node), see `Shared::row`.
        let wo = unsafe { ctx.wo.row(target) };
        let score = ctx.tables.sigmoid(dot(wo, &self.hidden));
        let alpha = lr * (positive as i32 as f32 - score);
        for ((g, w), h) in self.grad.iter_mut().zip(wo.iter_mut()).zip(&self.hidden) {
            *g += alpha * *w;
            *w += alpha * *h;
        }
        if positive {
            -ctx.tables.log(score)
        } else {
            -ctx.tables.log(1.0 - score)
        }
    }

    fn update(&mut self, rows: &[i32], labels: &[i32], lr: f32) {
        let ctx = self.ctx;
        const AHEAD: usize = 4;
        self.hidden.iter_mut().for_each(|x| *x = 0.0);
        for &r in rows.iter().take(AHEAD) {
            ctx.wi.prefetch(r as usize);
        }
        for (i, &r) in rows.iter().enumerate() {
            if let Some(&next) = rows.get(i + AHEAD) {
                ctx.wi.prefetch(next as usize);
            }
            // SAFETY: rows come from the dictionary, all < nwords + bucket.
            crate::matrix::add(&mut self.hidden, unsafe { ctx.wi.row(r as usize) });
        }
        let inv = 1.0 / rows.len() as f32;
        self.hidden.iter_mut().for_each(|x| *x *= inv);
        self.grad.iter_mut().for_each(|x| *x = 0.0);

        let loss = match ctx.args.loss {
            LossName::Softmax => {
                let target = labels[self.rng.below(labels.len())] as usize;
                self.out.clear();
                for i in 0..ctx.osz {
                    // SAFETY: i < osz.
                    self.out.push(dot(unsafe { ctx.wo.row(i) }, &self.hidden));
                }
                softmax(&mut self.out);
                for i in 0..ctx.osz {
                    let label = if i == target { 1.0 } else { 0.0 };
                    let alpha = lr * (label - self.out[i]);
                    // SAFETY: i < osz.
                    let wo = unsafe { ctx.wo.row(i) };
                    for ((g, w), h) in self.grad.iter_mut().zip(wo.iter_mut()).zip(&self.hidden) {
                        *g += alpha * *w;
                        *w += alpha * *h;
                    }
                }
                -ctx.tables.log(self.out[target])
            }
            LossName::Ova => {
                let mut l = 0.0;
                for i in 0..ctx.osz {
                    l += self.binary_logistic(i, labels.contains(&(i as i32)), lr);
                }
                l
            }
            LossName::Ns => {
                let target = labels[self.rng.below(labels.len())];
                let mut l = self.binary_logistic(target as usize, true, lr);
                if let Some(neg) = &ctx.negatives {
                    for _ in 0..ctx.args.neg {
                        if let Some(n) = neg.sample(&mut self.rng, target) {
                            l += self.binary_logistic(n, false, lr);
                        }
                    }
                }
                l
            }
            LossName::Hs => {
                let target = labels[self.rng.below(labels.len())] as usize;
                let tree = ctx.hs.as_ref().expect("hs tree built for hs loss");
                let mut l = 0.0;
                for d in 0..tree.paths[target].len() {
                    let (node, code) = (tree.paths[target][d] as usize, tree.codes[target][d]);
                    l += self.binary_logistic(node, code, lr);
                }
                l
            }
        };
        self.loss_sum += loss as f64;
        self.nexamples += 1;

        // fastText normalises the gradient by the number of input rows in supervised mode.
        self.grad.iter_mut().for_each(|x| *x *= inv);
        for (i, &r) in rows.iter().enumerate() {
            if let Some(&next) = rows.get(i + AHEAD) {
                ctx.wi.prefetch(next as usize);
            }
            // SAFETY: as above.
            axpy(unsafe { ctx.wi.row(r as usize) }, 1.0, &self.grad);
        }
    }

    fn run(&mut self, tid: usize) -> Result<()> {
        let ctx = self.ctx;
        let args = ctx.args;
        let path = ctx.path;
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut r = BufReader::with_capacity(1 << 20, f);
        let start = tid as u64 * ctx.size / args.thread as u64;
        r.seek(SeekFrom::Start(start)).map_err(|e| Error::io(path, e))?;
        let total = args.epoch as i64 * ctx.dict.ntokens();
        let mut local: i64 = 0;
        let mut line = Vec::new();
        let mut buf = LineBuf::default();
        let mut empty_reads = 0;
        while ctx.token_count.load(Ordering::Relaxed) < total && !ctx.stop.load(Ordering::Relaxed) {
            let progress = ctx.token_count.load(Ordering::Relaxed) as f64 / total as f64;
            let lr = (args.lr * (1.0 - progress)) as f32;
            line.clear();
            let n = r.read_until(b'\n', &mut line).map_err(|e| Error::io(path, e))?;
            if n == 0 {
                empty_reads += 1;
                if empty_reads > 1 {
                    return Err(Error::BadData { path: path.to_path_buf(), message: "file became empty during training".into() });
                }
                r.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
                continue;
            }
            empty_reads = 0;
            let eos = line.last() == Some(&b'\n');
            let body = if eos { &line[..line.len() - 1] } else { &line[..] };
            local += ctx.dict.line(body, eos, &mut buf);
            if !buf.labels.is_empty() && !buf.words.is_empty() {
                self.update(&buf.words, &buf.labels, lr);
            }
            if local > args.lr_update_rate as i64 {
                ctx.token_count.fetch_add(local, Ordering::Relaxed);
                local = 0;
                if tid == 0 && self.nexamples > 0 {
                    ctx.loss0.store((self.loss_sum / self.nexamples as f64).to_bits(), Ordering::Relaxed);
                }
            }
        }
        if tid == 0 && self.nexamples > 0 {
            ctx.loss0.store((self.loss_sum / self.nexamples as f64).to_bits(), Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Fill a matrix uniformly in `[-a, a)` with `threads` workers (fastText's `uniform`).
fn uniform_init(data: &mut [f32], a: f32, threads: usize, seed: u64) {
    let chunk = data.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (b, part) in data.chunks_mut(chunk).enumerate() {
            s.spawn(move || {
                let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ (b as u64 + 1));
                for x in part {
                    *x = rng.uniform(a);
                }
            });
        }
    });
}

/// The result of [`train`]: the model and the vocabulary/timing figures.
#[derive(Debug)]
pub struct Trained {
    /// The trained model.
    pub model: Model,
    /// Vocabulary figures.
    pub dict_stats: DictStats,
    /// The last progress snapshot (progress 1.0).
    pub last: TrainProgress,
}

/// Train a supervised model on a fastText-format file (`__label__x ... text` per line).
/// `on_dict` is called once the vocabulary is built; `on_progress` about every 100 ms and once
/// at the end.
pub fn train(
    args: &Args,
    input: &Path,
    on_dict: &(dyn Fn(&DictStats) + Sync),
    on_progress: &(dyn Fn(&TrainProgress) + Sync),
) -> Result<Trained> {
    let mut args = args.clone();
    args.finalize()?;
    args.model = crate::args::ModelName::Sup;
    let dict = build_dictionary(&args, input)?;
    let dict_stats = DictStats { ntokens: dict.ntokens(), nwords: dict.nwords(), nlabels: dict.nlabels() };
    on_dict(&dict_stats);
    let dim = args.dim as usize;
    let nrows = dict.nwords() as usize + args.bucket as usize;
    let mut input_m = DenseMatrix::zeros(nrows, dim);
    uniform_init(&mut input_m.data, 1.0 / dim as f32, args.thread as usize, args.seed as u64);
    let osz = dict.nlabels() as usize;
    let mut output_m = DenseMatrix::zeros(osz, dim);
    let label_counts = dict.counts(EntryType::Label);
    let size = std::fs::metadata(input).map_err(|e| Error::io(input, e))?.len();
    let ctx = Ctx {
        args: &args,
        dict: &dict,
        path: input,
        size,
        wi: Shared { ptr: input_m.data.as_mut_ptr(), cols: dim },
        wo: Shared { ptr: output_m.data.as_mut_ptr(), cols: dim },
        osz,
        tables: Tables::new(),
        hs: (args.loss == LossName::Hs).then(|| HsTree::new(&label_counts)),
        negatives: (args.loss == LossName::Ns).then(|| Negatives::new(&label_counts)),
        token_count: AtomicI64::new(0),
        stop: AtomicBool::new(false),
        loss0: AtomicU64::new((-1.0f64).to_bits()),
    };
    let total = args.epoch as i64 * dict.ntokens();
    let start = Instant::now();
    let nthreads = args.thread as usize;
    let snapshot = |ctx: &Ctx| {
        let t = start.elapsed().as_secs_f64();
        let count = ctx.token_count.load(Ordering::Relaxed).min(total);
        let progress = count as f64 / total as f64;
        TrainProgress {
            progress,
            words_per_sec_per_thread: if t > 0.0 { count as f64 / t / nthreads as f64 } else { 0.0 },
            lr: args.lr * (1.0 - progress),
            loss: f64::from_bits(ctx.loss0.load(Ordering::Relaxed)),
            eta_secs: if progress > 0.0 { t * (1.0 - progress) / progress } else { 0.0 },
        }
    };
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let ctx = &ctx;
        let handles: Vec<_> = (0..nthreads)
            .map(|tid| {
                s.spawn(move || {
                    let mut w = Worker {
                        ctx,
                        hidden: vec![0.0; dim],
                        grad: vec![0.0; dim],
                        out: Vec::with_capacity(osz),
                        rng: Rng((args.seed as u64).wrapping_add(tid as u64).wrapping_mul(0x9E37_79B9) + 1),
                        loss_sum: 0.0,
                        nexamples: 0,
                    };
                    let r = w.run(tid);
                    if r.is_err() {
                        ctx.stop.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(100));
            if ctx.loss0.load(Ordering::Relaxed) != (-1.0f64).to_bits() {
                on_progress(&snapshot(ctx));
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Unsupported("training thread panicked".into()))))
            .collect()
    });
    for r in results {
        r?;
    }
    let mut last = snapshot(&ctx);
    last.progress = 1.0;
    last.lr = 0.0;
    last.eta_secs = 0.0;
    on_progress(&last);
    drop(ctx);
    let model = Model::from_parts(args, dict, Matrix::Dense(input_m), Matrix::Dense(output_m));
    Ok(Trained { model, dict_stats, last })
}
