//! Metrics of DeepSeekMath §5 / Table 1-3: greedy accuracy, maj@k (self-consistency, Wang et al.
//! 2023) and pass@k with the unbiased estimator of Chen et al. 2021 (Codex paper, eq. 1).
//!
//! maj@k votes over *equivalence classes* of extracted answers, decided by
//! `mathforge_verify::equivalent` (so `0.5`, `1/2` and `\frac12` are one vote), not raw strings.
//! Samples without an extracted answer do not vote; ties go to the class that reached the top
//! count first in sample order.
use mathforge_verify::Config;

/// Unbiased pass@k from `n` samples with `c` correct: `1 - C(n-c, k) / C(n, k)`, computed as a
/// product to stay exact-ish for large n. `k > n` is clamped to `n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    let k = k.min(n);
    if n == 0 || k == 0 {
        return 0.0;
    }
    if n - c < k {
        return 1.0;
    }
    let mut prod = 1.0f64;
    for i in (n - c + 1)..=n {
        prod *= 1.0 - k as f64 / i as f64;
    }
    1.0 - prod
}

/// The outcome of majority voting over one example's samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Vote {
    /// Index of the first sample of the winning class.
    pub representative: usize,
    /// Samples in the winning class.
    pub votes: usize,
    /// Number of distinct classes.
    pub classes: usize,
}

/// Majority vote over extracted answers (None = no answer, does not vote). `None` when no
/// sample has an answer.
pub fn majority(extracted: &[Option<&str>], cfg: &Config) -> Option<Vote> {
    // (representative index, count)
    let mut classes: Vec<(usize, usize)> = Vec::new();
    let mut best: Option<(usize, usize)> = None; // (class idx, count)
    for (i, ans) in extracted.iter().enumerate() {
        let Some(a) = ans else { continue };
        let found = classes.iter().position(|(rep, _)| {
            let r = extracted[*rep].unwrap_or_default();
            r == *a || mathforge_verify::equivalent(r, a, cfg)
        });
        let ci = match found {
            Some(ci) => {
                classes[ci].1 += 1;
                ci
            }
            None => {
                classes.push((i, 1));
                classes.len() - 1
            }
        };
        let count = classes[ci].1;
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((ci, count));
        }
    }
    best.map(|(ci, votes)| Vote { representative: classes[ci].0, votes, classes: classes.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_at_k_matches_the_closed_form() {
        // C(n-c,k)/C(n,k) by hand: n=5, c=2, k=2: C(3,2)/C(5,2) = 3/10.
        assert!((pass_at_k(5, 2, 2) - 0.7).abs() < 1e-12);
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        assert_eq!(pass_at_k(4, 0, 4), 0.0);
        assert_eq!(pass_at_k(4, 1, 4), 1.0);
        assert_eq!(pass_at_k(8, 7, 2), 1.0);
        // n=64, c=1, k=8: 1 - C(63,8)/C(64,8) = 8/64.
        assert!((pass_at_k(64, 1, 8) - 0.125).abs() < 1e-12);
    }

    #[test]
    fn majority_votes_over_equivalence_classes() {
        let cfg = Config::lenient();
        let ex = [Some("5"), Some("7"), Some("5.0"), None, Some("7"), Some("05")];
        let v = majority(&ex, &cfg).unwrap();
        // 5, 5.0 and 05 are one class (3 votes) even though the raw strings differ.
        assert_eq!((v.representative, v.votes, v.classes), (0, 3, 2));
        // Tie: the class that reached the count first wins.
        let v = majority(&[Some("7"), Some("5"), Some("5"), Some("7")], &cfg).unwrap();
        assert_eq!(v.representative, 1);
        assert!(majority(&[None, None], &cfg).is_none());
    }
}
