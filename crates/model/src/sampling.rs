//! Next-token selection: greedy, temperature, top-k, top-p (nucleus), seeded per sequence; plus
//! the stop conditions of generation (stop strings, EOS ids, a token budget).
//!
//! What DeepSeekMath needs from a sampler: greedy decoding for evaluation (Shao et al. 2024, §3.2,
//! §5.2), and temperature sampling of `G` outputs per question for GRPO (§4.1; 64 per question in
//! the paper) and for maj@k / pass@k. The transforms are the usual ones (Holtzman et al. 2020 for
//! top-p), applied in the order of Hugging Face `transformers`: temperature, then top-k, then
//! top-p.
//!
//! Reproducibility: every sequence owns its RNG, a ChaCha8 stream keyed by `(seed, sequence id)`
//! ([`SeqRng`]), so a sequence's samples do not depend on which other sequences share its batch,
//! on batch order, or on when its neighbours finish.
//!
//! The log-prob reported for a sampled token is under the model's *unmodified* distribution
//! (log-softmax of the raw logits, temperature 1, no truncation): that is the `π_old(o_t|q,o_<t)`
//! GRPO's ratio needs (§4.1, Eq. 3) and what scoring reports. Processors only decide *which*
//! token is drawn.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Sampling settings of one generation request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingParams {
    /// Softmax temperature; `0` means greedy (argmax). Default 0: DeepSeekMath evaluates greedily.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0: off).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p` (1: off).
    pub top_p: f32,
    /// Stop after this many generated tokens (finish reason `length`).
    pub max_new_tokens: usize,
    /// Stop when the generated text contains one of these; the text is cut before it.
    pub stop: Vec<String>,
    /// Samples per prompt.
    pub n: usize,
    /// Base seed; sequence `i` uses stream `i` of ChaCha8 keyed by this seed.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams { temperature: 0.0, top_k: 0, top_p: 1.0, max_new_tokens: 512, stop: Vec::new(), n: 1, seed: 0 }
    }
}

impl SamplingParams {
    /// Check ranges; the message names the field.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |field: &str, why: String| Err(crate::Error::Msg(format!("sampling: {field}: {why}")));
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad("temperature", format!("must be >= 0 (0 = greedy), got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", format!("must be in (0, 1], got {}", self.top_p));
        }
        if self.n == 0 {
            return bad("n", "must be >= 1".into());
        }
        if self.stop.iter().any(|s| s.is_empty()) {
            return bad("stop", "stop strings must not be empty".into());
        }
        Ok(())
    }

    /// Greedy decoding (temperature 0).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }
}

/// The RNG of one sequence: ChaCha8 with `seed`, stream `sequence_id`.
#[derive(Debug, Clone)]
pub struct SeqRng(ChaCha8Rng);

impl SeqRng {
    /// RNG for sequence `sequence_id` of a request seeded with `seed`.
    pub fn new(seed: u64, sequence_id: u64) -> Self {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(sequence_id);
        SeqRng(r)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.gen::<f64>()
    }
}

/// A chosen token and its log-probability under the unmodified model distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampled {
    /// Token id.
    pub token: u32,
    /// `log softmax(logits)[token]` (temperature 1, no truncation).
    pub logprob: f32,
}

/// Index of the largest finite value (first on ties); None when all are NaN/-inf or empty.
fn argmax(logits: &[f32]) -> Option<usize> {
    // The maximum in 8 lanes (NaN never wins a `>`), then its first position: two passes that
    // vectorize, instead of one with a running index that does not.
    let max = crate::decode::lanes_max(logits);
    if max == f32::NEG_INFINITY {
        return None; // empty, or only NaN and -inf
    }
    logits.iter().position(|&x| x == max)
}

/// `max` and `log Σ exp(x - max)` of a logit row, NaN entries skipped: f32 exponentials
/// (`decode::exp_f32`, relative error under 5e-7) in 8 lanes, each lane summing at most 32
/// terms before its block sum is added in f64, so 100k terms do not lose the small ones.
fn log_norm(logits: &[f32]) -> (f32, f64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for (checked above).
        return unsafe { log_norm_avx2(logits) };
    }
    log_norm_generic(logits)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn log_norm_avx2(logits: &[f32]) -> (f32, f64) {
    log_norm_generic(logits)
}

#[inline(always)]
fn log_norm_generic(logits: &[f32]) -> (f32, f64) {
    use crate::decode::exp_f32;
    let max = crate::decode::lanes_max(logits);
    // `f32::max` turns NaN into -inf, whose exponential is 0: a select, not a branch.
    let e = |x: f32| exp_f32(x.max(f32::NEG_INFINITY) - max);
    let mut sum = 0f64;
    for block in logits.chunks(256) {
        let mut acc = [0f32; 8];
        let c = block.chunks_exact(8);
        let rest: f32 = c.remainder().iter().map(|&x| e(x)).sum();
        for x in c {
            for i in 0..8 {
                acc[i] += e(x[i]);
            }
        }
        sum += acc.iter().map(|&a| a as f64).sum::<f64>() + rest as f64;
    }
    (max, sum.ln())
}

/// Log-prob of `token` under `softmax(logits)`.
pub fn logprob_of(logits: &[f32], token: usize) -> f32 {
    let (max, lse) = log_norm(logits);
    ((logits[token] - max) as f64 - lse) as f32
}

/// Pick the next token of one sequence from its logit row `[V]`.
///
/// Errors only when the row has no finite logit (a broken model), naming the row length.
pub fn sample(logits: &[f32], params: &SamplingParams, rng: &mut SeqRng) -> crate::Result<Sampled> {
    let no_finite = || crate::Error::Msg(format!("sampling: logit row of {} entries has no finite value", logits.len()));
    let token = if params.is_greedy() {
        argmax(logits).ok_or_else(no_finite)?
    } else {
        sample_token(logits, params, rng).ok_or_else(no_finite)?
    };
    Ok(Sampled { token: token as u32, logprob: logprob_of(logits, token) })
}

/// Temperature, top-k, top-p, then one inverse-CDF draw.
fn sample_token(logits: &[f32], params: &SamplingParams, rng: &mut SeqRng) -> Option<usize> {
    let inv_t = 1.0 / params.temperature as f64;
    let (max, _) = log_norm(logits);
    if max == f32::NEG_INFINITY {
        return None;
    }
    let v = logits.len();
    let top_k = if params.top_k == 0 || params.top_k >= v { v } else { params.top_k };
    let use_top_p = params.top_p < 1.0;

    if top_k == v && !use_top_p {
        // Plain temperature sampling: one pass for the weights, one draw; no sort.
        let w: Vec<f64> = logits.iter().map(|&x| weight(x, max, inv_t)).collect();
        return Some(draw(&w, None, rng));
    }

    // (weight, id) of the candidates; masked (zero-weight) entries never enter.
    let mut items: Vec<(f64, u32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &x)| (weight(x, max, inv_t), i as u32))
        .filter(|&(w, _)| w > 0.0)
        .collect();
    // Heavier first; ties by lower id, so the kept set is a deterministic function of the row.
    let heavier = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if top_k < items.len() {
        items.select_nth_unstable_by(top_k - 1, heavier);
        items.truncate(top_k);
    }
    if use_top_p {
        let total: f64 = items.iter().map(|x| x.0).sum();
        let keep = nucleus(&mut items, params.top_p as f64 * total, heavier);
        items.truncate(keep);
    }
    let w: Vec<f64> = items.iter().map(|x| x.0).collect();
    let ids: Vec<u32> = items.iter().map(|x| x.1).collect();
    Some(draw(&w, Some(&ids), rng))
}

/// Reorder `items` so that its first `k` entries are the nucleus, the smallest set of heaviest
/// items whose mass reaches `target`, and return `k`. Expected O(V): a quickselect on mass
/// rather than a full sort (the nucleus of an untrained model is most of a 32k-100k vocabulary).
fn nucleus(items: &mut [(f64, u32)], target: f64, heavier: impl Fn(&(f64, u32), &(f64, u32)) -> std::cmp::Ordering + Copy) -> usize {
    let (mut lo, mut hi) = (0usize, items.len());
    let mut acc = 0.0f64; // mass of items[..lo], all inside the nucleus
    while hi - lo > 32 {
        // Median of three as pivot, then split [lo, hi) into heavier-than-pivot and the rest.
        let mid = lo + (hi - lo) / 2;
        let mut three = [items[lo], items[mid], items[hi - 1]];
        three.sort_by(heavier);
        let pivot = three[1];
        let mut store = lo;
        for i in lo..hi {
            if heavier(&items[i], &pivot).is_lt() {
                items.swap(i, store);
                store += 1;
            }
        }
        let head: f64 = items[lo..store].iter().map(|x| x.0).sum();
        if acc + head >= target && store > lo {
            hi = store;
        } else {
            acc += head;
            if store == lo {
                // Nothing heavier than the pivot: move the pivot itself (the heaviest left)
                // into the kept prefix so the range always shrinks.
                let p = (lo..hi).min_by(|&a, &b| heavier(&items[a], &items[b])).unwrap_or(lo);
                items.swap(lo, p);
                acc += items[lo].0;
                if acc >= target {
                    return lo + 1;
                }
                store = lo + 1;
            }
            lo = store;
        }
    }
    items[lo..hi].sort_by(heavier);
    for i in lo..hi {
        acc += items[i].0;
        if acc >= target {
            return i + 1;
        }
    }
    hi.max(1)
}

#[inline]
fn weight(x: f32, max: f32, inv_t: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        (((x - max) as f64) * inv_t).exp()
    }
}

/// Inverse-CDF draw from unnormalized weights; `ids` maps positions to token ids.
fn draw(w: &[f64], ids: Option<&[u32]>, rng: &mut SeqRng) -> usize {
    let total: f64 = w.iter().sum();
    let u = rng.uniform() * total;
    let mut cum = 0.0;
    let mut pick = w.len() - 1;
    for (j, &x) in w.iter().enumerate() {
        cum += x;
        if u < cum {
            pick = j;
            break;
        }
    }
    // Rounding can leave `u` past the last cumulative sum; fall back to the last nonzero weight.
    if w[pick] == 0.0 {
        pick = w.iter().rposition(|&x| x > 0.0).unwrap_or(pick);
    }
    ids.map_or(pick, |ids| ids[pick] as usize)
}

/// Why a sequence stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// A stop string appeared in the generated text.
    Stop,
    /// An EOS id was generated.
    Eos,
    /// `max_new_tokens` reached (or the context window is full).
    Length,
}

impl std::fmt::Display for FinishReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FinishReason::Stop => "stop",
            FinishReason::Eos => "eos",
            FinishReason::Length => "length",
        })
    }
}

/// Stop strings, checked on the tail of the decoded text after each token.
#[derive(Debug, Clone, Default)]
pub struct StopStrings {
    stops: Vec<String>,
    max_bytes: usize,
}

impl StopStrings {
    /// From the request's stop list.
    pub fn new(stops: &[String]) -> Self {
        StopStrings { stops: stops.to_vec(), max_bytes: stops.iter().map(|s| s.len()).max().unwrap_or(0) }
    }

    /// No stop strings.
    pub fn is_empty(&self) -> bool {
        self.stops.is_empty()
    }

    /// How many trailing tokens to decode to see any stop string that ends at the last token:
    /// every byte-level token is at least one byte, plus slack for a split UTF-8 character.
    pub fn tail_tokens(&self) -> usize {
        self.max_bytes + 4
    }

    /// Byte offset of the earliest stop string in `text`, if any.
    pub fn find(&self, text: &str) -> Option<usize> {
        self.stops.iter().filter_map(|s| text.find(s.as_str())).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(t: f32, k: usize, p: f32) -> SamplingParams {
        SamplingParams { temperature: t, top_k: k, top_p: p, ..Default::default() }
    }

    #[test]
    fn greedy_picks_argmax_with_raw_logprob() {
        let logits = [0.0f32, 2.0, 1.0, 2.0];
        let s = sample(&logits, &params(0.0, 0, 1.0), &mut SeqRng::new(0, 0)).unwrap();
        assert_eq!(s.token, 1, "first of the tied maxima");
        let z: f64 = logits.iter().map(|&x| (x as f64).exp()).sum();
        assert!((s.logprob as f64 - (2.0 - z.ln())).abs() < 1e-6);
    }

    #[test]
    fn vectorized_argmax_and_log_norm_match_the_scalar_definitions() {
        // A 100,003-entry row (not a multiple of the 8 lanes or 256-entry blocks) with NaN and
        // -inf entries and a tied maximum, against a plain f64 loop.
        let mut row: Vec<f32> = (0..100_003).map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 20.0).collect();
        row[5] = f32::NAN;
        row[77_777] = f32::NEG_INFINITY;
        row[99_999] = 40.0;
        row[100_001] = 40.0;
        assert_eq!(argmax(&row), Some(99_999), "first of the tied maxima, NaN skipped");
        let (max, lse) = log_norm(&row);
        assert_eq!(max, 40.0);
        let want: f64 = row.iter().filter(|x| !x.is_nan()).map(|&x| (x as f64 - 40.0).exp()).sum::<f64>().ln();
        assert!((lse - want).abs() < 1e-6, "{lse} vs {want}");
        assert_eq!(argmax(&[f32::NAN, f32::NEG_INFINITY]), None);
        assert_eq!(argmax(&[]), None);
    }

    #[test]
    fn top_k_one_is_greedy_and_top_k_restricts() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let best = argmax(&logits).unwrap() as u32;
        let mut rng = SeqRng::new(7, 3);
        for _ in 0..50 {
            assert_eq!(sample(&logits, &params(1.5, 1, 1.0), &mut rng).unwrap().token, best);
        }
        let mut sorted: Vec<usize> = (0..50).collect();
        sorted.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let top3: Vec<u32> = sorted[..3].iter().map(|&i| i as u32).collect();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300 {
            let t = sample(&logits, &params(1.0, 3, 1.0), &mut rng).unwrap().token;
            assert!(top3.contains(&t));
            seen.insert(t);
        }
        assert_eq!(seen.len(), 3, "all three candidates are drawn");
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        // probs ∝ [8, 4, 2, 1, 1]: p=0.5 keeps only token 0; p=0.75 keeps {0, 1}.
        let logits: Vec<f32> = [8.0f32, 4.0, 2.0, 1.0, 1.0].iter().map(|x| x.ln()).collect();
        let mut rng = SeqRng::new(1, 0);
        for _ in 0..100 {
            assert_eq!(sample(&logits, &params(1.0, 0, 0.5), &mut rng).unwrap().token, 0);
            assert!(sample(&logits, &params(1.0, 0, 0.75), &mut rng).unwrap().token <= 1);
        }
        // A wide near-uniform row exercises the widening path and still respects the nucleus.
        let wide: Vec<f32> = (0..5000).map(|i| -(i as f32) * 1e-3).collect();
        for _ in 0..50 {
            let t = sample(&wide, &params(1.0, 0, 0.1), &mut rng).unwrap().token;
            assert!(t < 600, "{t} outside the 10% nucleus");
        }
    }

    #[test]
    fn nucleus_selection_equals_sorting() {
        let mut rng = SeqRng::new(3, 0);
        let heavier = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        for case in 0..200 {
            let n = 1 + case * 7 % 700;
            // Some exact ties (quantized weights) to exercise the tie order.
            let items: Vec<(f64, u32)> =
                (0..n as u32).map(|i| (((rng.uniform() * 8.0).floor() + 1.0) * rng.uniform().max(0.5), i)).collect();
            let total: f64 = items.iter().map(|x| x.0).sum();
            let target = total * (0.05 + 0.9 * rng.uniform());
            let mut sorted = items.clone();
            sorted.sort_by(heavier);
            let mut acc = 0.0;
            let want = sorted.iter().position(|x| {
                acc += x.0;
                acc >= target
            });
            let mut got = items.clone();
            let k = nucleus(&mut got, target, heavier);
            let mut got_ids: Vec<u32> = got[..k].iter().map(|x| x.1).collect();
            let mut want_ids: Vec<u32> = sorted[..want.unwrap() + 1].iter().map(|x| x.1).collect();
            got_ids.sort();
            want_ids.sort();
            assert_eq!(got_ids, want_ids, "case {case} n {n}");
        }
    }

    #[test]
    fn sampling_frequencies_follow_temperature() {
        let logits: Vec<f32> = [2.0f32, 1.0, 1.0].iter().map(|x| x.ln()).collect();
        let mut rng = SeqRng::new(42, 0);
        let n = 20_000;
        let zeros = (0..n).filter(|_| sample(&logits, &params(1.0, 0, 1.0), &mut rng).unwrap().token == 0).count();
        assert!((zeros as f64 / n as f64 - 0.5).abs() < 0.02, "{zeros}");
        // T = 0.5 squares the weights: 4/(4+1+1).
        let zeros = (0..n).filter(|_| sample(&logits, &params(0.5, 0, 1.0), &mut rng).unwrap().token == 0).count();
        assert!((zeros as f64 / n as f64 - 4.0 / 6.0).abs() < 0.02, "{zeros}");
    }

    #[test]
    fn streams_are_reproducible_and_independent() {
        let logits: Vec<f32> = (0..100).map(|i| (i as f32 * 0.1).cos()).collect();
        let run = |seed, seq| {
            let mut r = SeqRng::new(seed, seq);
            (0..20).map(|_| sample(&logits, &params(1.0, 0, 0.9), &mut r).unwrap().token).collect::<Vec<_>>()
        };
        assert_eq!(run(5, 2), run(5, 2));
        assert_ne!(run(5, 2), run(5, 3));
        assert_ne!(run(5, 2), run(6, 2));
    }

    #[test]
    fn masked_logits_are_never_drawn_and_all_masked_is_an_error() {
        let logits = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, f32::NAN];
        let mut rng = SeqRng::new(0, 0);
        for _ in 0..100 {
            assert_eq!(sample(&logits, &params(1.0, 0, 0.9), &mut rng).unwrap().token, 1);
        }
        let err = sample(&[f32::NEG_INFINITY; 3], &params(1.0, 0, 1.0), &mut rng).unwrap_err();
        assert!(err.to_string().contains("no finite"), "{err}");
        assert!(sample(&[f32::NAN; 3], &params(0.0, 0, 1.0), &mut rng).is_err());
    }

    #[test]
    fn validate_names_the_field() {
        let e = params(-1.0, 0, 1.0).validate().unwrap_err().to_string();
        assert!(e.contains("temperature"), "{e}");
        let e = params(1.0, 0, 0.0).validate().unwrap_err().to_string();
        assert!(e.contains("top_p"), "{e}");
        let e = SamplingParams { stop: vec![String::new()], ..Default::default() }.validate().unwrap_err().to_string();
        assert!(e.contains("stop"), "{e}");
    }

    #[test]
    fn stop_strings_find_earliest() {
        let s = StopStrings::new(&["\n\nUser:".to_string(), "</s>".to_string()]);
        assert_eq!(s.find("The answer is 5.</s> more\n\nUser:"), Some(16));
        assert_eq!(s.find("nothing here"), None);
        assert!(s.tail_tokens() >= 8);
    }
}
