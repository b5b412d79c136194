//! MinHash signatures and LSH band keys (Broder 1997; Leskovec et al., *Mining of Massive
//! Datasets* §3.4), with datatrove's defaults (`pipeline/dedup/minhash.py`, `MinhashConfig`):
//! normalized word 5-grams, 14 bands x 8 hashes = 112 permutations, 64-bit hashes.
//!
//! Each shingle is hashed once with xxh3-64 ([`crate::text::ngram_hashes`]); permutation `i` is
//! `h -> a_i * h + b_i (mod 2^64)` with odd `a_i`. Datatrove uses `(a h + b) mod (2^61 - 1)` over
//! SHA-1 shingle hashes; the multiply-add family is also near min-wise independent on the high
//! bits that decide the minimum, and costs one multiply per permutation (issue #4 performance
//! line). Parameters come from splitmix64 seeded by [`MinhashConfig::seed`], so every shard and
//! machine derives the same permutations.
//!
//! LSH: the signature is cut into `num_buckets` bands of `hashes_per_bucket` values; two
//! documents are candidate duplicates when all values of one band agree. A pair with Jaccard
//! similarity `s` collides in some band with probability `1 - (1 - s^8)^14` (0.92 at s = 0.8,
//! threshold about (1/14)^(1/8) = 0.72). Instead of storing each band's 8 values (64 bytes) the
//! band is reduced to one 64-bit key (xxh3 of its values): collisions of distinct bands have
//! probability 2^-64 per pair, far below the LSH false-positive rate.
use serde::{Deserialize, Serialize};

/// MinHash-LSH parameters (datatrove's `MinhashConfig` defaults, 64-bit hashes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinhashConfig {
    /// Words per shingle.
    pub n_grams: usize,
    /// Number of LSH bands ("buckets" in datatrove).
    pub num_buckets: usize,
    /// Hashes per band.
    pub hashes_per_bucket: usize,
    /// Seed of the permutation parameters; must be equal on every shard.
    pub seed: u64,
}

impl Default for MinhashConfig {
    fn default() -> Self {
        MinhashConfig { n_grams: 5, num_buckets: 14, hashes_per_bucket: 8, seed: 1 }
    }
}

impl MinhashConfig {
    /// Total permutations (`num_buckets * hashes_per_bucket`).
    pub fn num_hashes(&self) -> usize {
        self.num_buckets * self.hashes_per_bucket
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Computes signatures and band keys for one [`MinhashConfig`].
#[derive(Debug, Clone)]
pub struct MinHasher {
    config: MinhashConfig,
    a: Vec<u64>,
    b: Vec<u64>,
}

impl MinHasher {
    /// Derive the permutation parameters from the config's seed.
    pub fn new(config: MinhashConfig) -> Self {
        let mut state = config.seed;
        let n = config.num_hashes();
        let a = (0..n).map(|_| splitmix64(&mut state) | 1).collect();
        let b = (0..n).map(|_| splitmix64(&mut state)).collect();
        MinHasher { config, a, b }
    }

    /// The configuration.
    pub fn config(&self) -> &MinhashConfig {
        &self.config
    }

    /// The MinHash signature of a set of shingle hashes into `sig` (length `num_hashes`).
    /// An empty set gives all `u64::MAX`; callers skip such documents.
    pub fn signature(&self, shingles: &[u64], sig: &mut [u64]) {
        sig.fill(u64::MAX);
        // Blocks of 8 permutations keep the running minima in registers and let the compiler
        // unroll; the shingle loop is inside so each block streams the shingles once.
        let n = sig.len().min(self.a.len());
        let mut start = 0;
        while start + 8 <= n {
            let a: [u64; 8] = self.a[start..start + 8].try_into().unwrap_or([1; 8]);
            let b: [u64; 8] = self.b[start..start + 8].try_into().unwrap_or([0; 8]);
            let mut m = [u64::MAX; 8];
            for &h in shingles {
                for k in 0..8 {
                    m[k] = m[k].min(a[k].wrapping_mul(h).wrapping_add(b[k]));
                }
            }
            sig[start..start + 8].copy_from_slice(&m);
            start += 8;
        }
        for i in start..n {
            let (a, b) = (self.a[i], self.b[i]);
            sig[i] = shingles.iter().map(|&h| a.wrapping_mul(h).wrapping_add(b)).min().unwrap_or(u64::MAX);
        }
    }

    /// One 64-bit key per band of `sig` into `keys` (cleared first).
    pub fn band_keys(&self, sig: &[u64], keys: &mut Vec<u64>) {
        keys.clear();
        let r = self.config.hashes_per_bucket;
        let mut bytes = Vec::with_capacity(r * 8);
        for band in sig.chunks_exact(r).take(self.config.num_buckets) {
            bytes.clear();
            for v in band {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            keys.push(xxhash_rust::xxh3::xxh3_64(&bytes));
        }
    }

    /// Band keys of a normalized text, or `false` (keys empty) when it has fewer than `n_grams`
    /// words. `scratch` holds reusable buffers.
    pub fn text_band_keys(&self, normalized: &str, scratch: &mut Scratch, keys: &mut Vec<u64>) -> bool {
        crate::text::ngram_hashes(normalized, self.config.n_grams, &mut scratch.starts, &mut scratch.shingles);
        keys.clear();
        if scratch.shingles.is_empty() {
            return false;
        }
        // Duplicate shingles do not change a minimum; removing them pays off on repetitive pages.
        scratch.shingles.sort_unstable();
        scratch.shingles.dedup();
        scratch.sig.resize(self.config.num_hashes(), 0);
        let mut sig = std::mem::take(&mut scratch.sig);
        self.signature(&scratch.shingles, &mut sig);
        self.band_keys(&sig, keys);
        scratch.sig = sig;
        true
    }
}

/// Reusable buffers for [`MinHasher::text_band_keys`].
#[derive(Debug, Default)]
pub struct Scratch {
    starts: Vec<usize>,
    shingles: Vec<u64>,
    sig: Vec<u64>,
}

/// Estimated Jaccard similarity of two signatures (fraction of equal positions).
pub fn estimate_jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{ngram_hashes, normalize};

    fn sig_of(h: &MinHasher, text: &str) -> Vec<u64> {
        let mut starts = Vec::new();
        let mut sh = Vec::new();
        ngram_hashes(&normalize(text), 5, &mut starts, &mut sh);
        let mut sig = vec![0; 112];
        h.signature(&sh, &mut sig);
        sig
    }

    #[test]
    fn signature_estimates_jaccard() {
        let h = MinHasher::new(MinhashConfig::default());
        let words: Vec<String> = (0..400).map(|i| format!("w{i}")).collect();
        let a = words.join(" ");
        // Change 10 of 400 words: about 50 of ~396 shingles differ -> Jaccard ~0.78.
        let mut w2 = words.clone();
        for i in (0..400).step_by(40) {
            w2[i] = format!("x{i}");
        }
        let b = w2.join(" ");
        let est = estimate_jaccard(&sig_of(&h, &a), &sig_of(&h, &b));
        assert!((0.6..0.95).contains(&est), "estimate {est}");
        let other: Vec<String> = (0..400).map(|i| format!("z{i}")).collect();
        assert!(estimate_jaccard(&sig_of(&h, &a), &sig_of(&h, &other.join(" "))) < 0.05);
        assert_eq!(sig_of(&h, &a), sig_of(&h, &a));
    }

    #[test]
    fn band_keys_and_short_texts() {
        let h = MinHasher::new(MinhashConfig::default());
        let mut s = Scratch::default();
        let mut k = Vec::new();
        assert!(!h.text_band_keys("one two three four", &mut s, &mut k));
        assert!(k.is_empty());
        assert!(h.text_band_keys("one two three four five", &mut s, &mut k));
        assert_eq!(k.len(), 14);
        let mut k2 = Vec::new();
        assert!(h.text_band_keys("one two three four five six", &mut s, &mut k2));
        assert_ne!(k, k2);
        // Other seeds give other permutations.
        let h2 = MinHasher::new(MinhashConfig { seed: 2, ..Default::default() });
        let mut k3 = Vec::new();
        h2.text_band_keys("one two three four five", &mut s, &mut k3);
        assert_ne!(k, k3);
    }
}
