//! Learning-rate schedules: linear warmup, then cosine, linear, constant or multi-step decay.
//!
//! DeepSeekMath §2.3 / §3.1 (following DeepSeek LLM) pretrains with a *multi-step* schedule: warm
//! up for 2,000 steps, keep the peak until 80% of the training tokens, drop to 31.6% of the peak,
//! and to 10% at 90%. Cosine (to `min_lr_ratio` of the peak) and linear are the common SFT/RL
//! choices; RL in §4.2 uses a constant 1e-6.
//!
//! Convention: `lr_at(step)` is the rate used by the optimizer step with 0-based index `step`.
//! Warmup is `(step + 1) / warmup_steps`, so the first step already moves the weights (the
//! Hugging Face `get_*_schedule_with_warmup` helpers use `step / warmup` and waste step 0).
use serde::{Deserialize, Serialize};

/// Shape of the decay after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// Half-cosine from the peak down to `min_lr_ratio * peak` at `total_steps`.
    Cosine,
    /// Straight line from the peak down to `min_lr_ratio * peak` at `total_steps`.
    Linear,
    /// The peak, forever.
    Constant,
    /// DeepSeek's steps: 100% until 80% of training, 31.6% until 90%, then 10%.
    MultiStep,
}

impl std::str::FromStr for ScheduleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cosine" => Ok(ScheduleKind::Cosine),
            "linear" => Ok(ScheduleKind::Linear),
            "constant" => Ok(ScheduleKind::Constant),
            "multi-step" => Ok(ScheduleKind::MultiStep),
            _ => Err(format!("unknown schedule `{s}` (cosine, linear, constant, multi-step)")),
        }
    }
}

/// A learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Peak learning rate.
    pub lr: f64,
    /// Decay shape.
    pub kind: ScheduleKind,
    /// Linear warmup steps (0: start at the peak).
    pub warmup_steps: u64,
    /// Total optimizer steps of the run (the decay ends here).
    pub total_steps: u64,
    /// Final rate as a fraction of the peak (cosine / linear).
    pub min_lr_ratio: f64,
}

impl Schedule {
    /// Learning rate of the optimizer step with 0-based index `step`.
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / decay_steps as f64).clamp(0.0, 1.0);
        let min = self.min_lr_ratio;
        let factor = match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Cosine => {
                min + (1.0 - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            ScheduleKind::Linear => 1.0 - (1.0 - min) * progress,
            ScheduleKind::MultiStep => {
                // Measured on the whole run, as the paper states it in tokens.
                let frac = step as f64 / self.total_steps.max(1) as f64;
                if frac < 0.8 {
                    1.0
                } else if frac < 0.9 {
                    0.316
                } else {
                    0.1
                }
            }
        };
        self.lr * factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(kind: ScheduleKind) -> Schedule {
        Schedule { lr: 1e-3, kind, warmup_steps: 10, total_steps: 110, min_lr_ratio: 0.1 }
    }

    #[test]
    fn warmup_is_linear_from_first_step() {
        let s = sched(ScheduleKind::Cosine);
        assert!((s.lr_at(0) - 1e-4).abs() < 1e-15);
        assert!((s.lr_at(4) - 5e-4).abs() < 1e-15);
        assert!((s.lr_at(9) - 1e-3).abs() < 1e-15);
    }

    #[test]
    fn cosine_hand_values() {
        let s = sched(ScheduleKind::Cosine);
        assert!((s.lr_at(10) - 1e-3).abs() < 1e-15);
        // halfway through decay: min + (1-min)/2 = 0.55 of peak
        assert!((s.lr_at(60) - 0.55e-3).abs() < 1e-12);
        // a quarter: 0.1 + 0.9 * 0.5 * (1 + cos(pi/4)) = 0.868198...
        assert!((s.lr_at(35) - 0.868_198_051_533_946_4e-3).abs() < 1e-12);
        assert!((s.lr_at(110) - 1e-4).abs() < 1e-15);
        assert!((s.lr_at(500) - 1e-4).abs() < 1e-15, "clamped after the end");
    }

    #[test]
    fn linear_constant_multistep() {
        let l = sched(ScheduleKind::Linear);
        assert!((l.lr_at(60) - 0.55e-3).abs() < 1e-12);
        assert!((l.lr_at(85) - (1.0 - 0.9 * 0.75) * 1e-3).abs() < 1e-12);
        let c = sched(ScheduleKind::Constant);
        assert_eq!(c.lr_at(100), 1e-3);
        let m = Schedule { warmup_steps: 0, total_steps: 100, ..sched(ScheduleKind::MultiStep) };
        assert_eq!(m.lr_at(79), 1e-3);
        assert!((m.lr_at(80) - 0.316e-3).abs() < 1e-15);
        assert!((m.lr_at(95) - 1e-4).abs() < 1e-15);
    }

    #[test]
    fn parse_names() {
        assert_eq!("multi-step".parse::<ScheduleKind>().unwrap(), ScheduleKind::MultiStep);
        assert!("cosin".parse::<ScheduleKind>().unwrap_err().contains("cosin"));
    }
}
