//! Precision and recall at k, printed as fastText's `test` prints them (src/meter.cc):
//! `N\t<examples>`, then `P@k\t<precision>` and `R@k\t<recall>` with 3 significant digits.
use crate::format::fmt_g;

/// Counts accumulated over a test file.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Meter {
    /// Lines evaluated (with at least one label and one input row).
    pub nexamples: u64,
    /// Gold labels seen.
    pub gold: u64,
    /// Labels predicted.
    pub predicted: u64,
    /// Predicted labels that were gold.
    pub predicted_gold: u64,
}

impl Meter {
    /// Count one example.
    pub fn log(&mut self, gold: &[i32], predictions: &[(f32, i32)]) {
        self.nexamples += 1;
        self.gold += gold.len() as u64;
        self.predicted += predictions.len() as u64;
        self.predicted_gold += predictions.iter().filter(|p| gold.contains(&p.1)).count() as u64;
    }

    /// Precision (NaN when nothing was predicted, as in fastText).
    pub fn precision(&self) -> f64 {
        self.predicted_gold as f64 / self.predicted as f64
    }

    /// Recall (NaN when there were no gold labels).
    pub fn recall(&self) -> f64 {
        self.predicted_gold as f64 / self.gold as f64
    }

    /// fastText's three-line report for `k`.
    pub fn report(&self, k: i32) -> String {
        format!(
            "N\t{}\nP@{k}\t{}\nR@{k}\t{}\n",
            self.nexamples,
            fmt_g(self.precision(), 3),
            fmt_g(self.recall(), 3)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_format() {
        let mut m = Meter::default();
        m.log(&[0], &[(0.0, 0)]);
        m.log(&[1], &[(0.0, 0)]);
        m.log(&[1], &[(0.0, 1)]);
        assert_eq!(m.report(1), "N\t3\nP@1\t0.667\nR@1\t0.667\n");
    }
}
