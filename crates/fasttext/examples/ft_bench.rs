//! Library-level timing for `scripts/bench/fasttext` (ours vs fastText's Python binding, both
//! measured as library calls: no process start, model load or save inside the timed part).
//!
//! ```text
//! ft_bench train <input> <output.bin> <thread> [dim lr wordNgrams minCount epoch bucket]
//! ft_bench predict <model.bin> <file> <threads> <repeat>
//! ft_bench test <model.bin> <file>
//! ```
//! Each prints one JSON object on stdout.
use mathforge_fasttext::{train, Args, Model, PredictBuf};
use rayon::prelude::*;
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn arg<T: std::str::FromStr>(a: &[String], i: usize, default: T) -> T {
    a.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    match a.first().map(String::as_str) {
        Some("train") => {
            let mut args = Args::deepseekmath();
            args.thread = arg(&a, 3, 2);
            args.dim = arg(&a, 4, args.dim);
            args.lr = arg(&a, 5, args.lr);
            args.word_ngrams = arg(&a, 6, args.word_ngrams);
            args.min_count = arg(&a, 7, args.min_count);
            args.epoch = arg(&a, 8, args.epoch);
            args.bucket = arg(&a, 9, args.bucket);
            args.verbose = 0;
            let t = Instant::now();
            let trained = train(&args, a[1].as_ref(), &|_| {}, &|_| {})?;
            let secs = t.elapsed().as_secs_f64();
            trained.model.save(&a[2])?;
            let words = trained.dict_stats.ntokens as f64 * args.epoch as f64;
            println!(
                "{{\"seconds\": {secs:.3}, \"ntokens\": {}, \"nwords\": {}, \"words_per_sec\": {:.0}, \"words_per_sec_per_thread_train_phase\": {:.0}}}",
                trained.dict_stats.ntokens,
                trained.dict_stats.nwords,
                words / secs,
                trained.last.words_per_sec_per_thread
            );
        }
        Some("predict") => {
            let model = Model::load(&a[1])?;
            let text = std::fs::read(&a[2])?;
            let lines: Vec<&[u8]> = text.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
            let threads: usize = arg(&a, 3, 1);
            let repeat: usize = arg(&a, 4, 1);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
            let t = Instant::now();
            let cpu0 = cpu_seconds();
            let mut hits = 0usize;
            for _ in 0..repeat {
                hits += pool.install(|| {
                    lines
                        .par_iter()
                        .with_min_len(256)
                        .map_init(PredictBuf::default, |buf, l| {
                            model.predict_line(l, true, 1, 0.0, buf).map(|p| p.len()).unwrap_or(0)
                        })
                        .sum::<usize>()
                });
            }
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu0;
            let docs = lines.len() * repeat;
            println!(
                "{{\"docs\": {docs}, \"seconds\": {secs:.3}, \"cpu_seconds\": {cpu:.3}, \"docs_per_sec\": {:.0}, \"predicted\": {hits}}}",
                docs as f64 / secs
            );
        }
        Some("test") => {
            let model = Model::load(&a[1])?;
            let f = std::io::BufReader::new(std::fs::File::open(&a[2])?);
            let m = model.test(f, 1, 0.0)?;
            println!("{{\"n\": {}, \"p1\": {}, \"r1\": {}}}", m.nexamples, m.precision(), m.recall());
        }
        _ => return Err("usage: ft_bench train|predict|test ...".into()),
    }
    Ok(())
}

/// User + system CPU seconds of this process (all threads): steadier than wall time on a busy
/// machine when comparing variants of the same code.
fn cpu_seconds() -> f64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrusage only writes the struct we pass.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } == 0 {
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
            return tv(u.ru_utime) + tv(u.ru_stime);
        }
    }
    f64::NAN
}
