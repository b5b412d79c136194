//! A [`Task`] bundles examples, prompt formats and grading, so the GRPO reward and the benchmark
//! grade are the same check (DeepSeekMath §4.1 rewards the final answer with the verifier that
//! grades; nanochat's `tasks/` makes `reward` reuse `evaluate` for the same reason).
//!
//! Grading goes through `mathforge-verify`: lenient for evaluation (a last-number fallback, as
//! few-shot base models often do not box), strict for rewards (an explicit final-answer marker
//! is required, so rambling is not rewarded). Multiple-choice tasks compare choice letters.
use crate::bench::{read_bench, Bench, Loaded};
use crate::example::Example;
use crate::prompt::{render, FewShotStyle, Prompt, PromptFormat};
use crate::Result;
use mathforge_verify::{Config, Grade};
use std::path::Path;

/// Examples + prompts + grading.
pub trait Task: Send + Sync {
    /// Short name for reports (`gsm8k`, `math500`, `arith`).
    fn name(&self) -> &str;
    /// The problems.
    fn examples(&self) -> &[Example];
    /// Which few-shot exemplars suit this task.
    fn few_shot_style(&self) -> FewShotStyle {
        FewShotStyle::Gsm8k
    }
    /// The prompt for one example.
    fn prompt(&self, ex: &Example, format: PromptFormat) -> Prompt {
        render(ex, format, self.few_shot_style())
    }
    /// Grade a full response (evaluation grader, lenient extraction).
    fn grade(&self, ex: &Example, response: &str) -> Grade {
        grade_example(ex, response, &Config::lenient())
    }
    /// Rule-based rewards of the reasoning steps of `response` (its non-empty lines, in order),
    /// for GRPO's process supervision (DeepSeekMath §4.1.3) without a learned PRM: an oracle in
    /// the spirit of Math-Shepherd's automatic step labels (Wang et al. 2023), possible when the
    /// task knows the one correct derivation. `None` (the default) when it does not.
    fn step_rewards(&self, _ex: &Example, _response: &str) -> Option<Vec<f32>> {
        None
    }
    /// The RL reward: 1 when the strict grader accepts the response, else 0.
    fn reward(&self, ex: &Example, response: &str) -> f32 {
        if grade_example(ex, response, &Config::strict()).equivalent {
            1.0
        } else {
            0.0
        }
    }
}

/// Grade `response` against `ex.reference` with `cfg`; multiple-choice examples compare the sets
/// of choice letters (Gaokao-MathQA has a few multi-answer questions such as `AD`).
pub fn grade_example(ex: &Example, response: &str, cfg: &Config) -> Grade {
    if !ex.multiple_choice {
        return mathforge_verify::grade(&ex.reference, response, cfg);
    }
    let extracted = mathforge_verify::extract_answer(response, cfg);
    let letters = extracted.as_deref().and_then(choice_letters);
    let want = choice_letters(&ex.reference).unwrap_or_else(|| ex.reference.trim().to_ascii_uppercase());
    match letters {
        Some(l) => Grade {
            equivalent: l == want,
            reason: format!("choice {l} vs reference {want}"),
            extracted: Some(l),
        },
        None => Grade {
            equivalent: false,
            reason: match &extracted {
                Some(a) => format!("answer {a:?} is not a choice letter"),
                None => "no answer found".into(),
            },
            extracted,
        },
    }
}

/// The choice letters an extracted answer names, sorted and deduplicated: `B`, `(B)`, `$B$`,
/// `\text{(B)}`, `B) 4`, `(B) 4`, `A, D`, `A and D`, `ACD`. `None` when it names no choice.
pub fn choice_letters(answer: &str) -> Option<String> {
    let mut s = answer.trim().trim_matches('$').trim();
    for wrap in ["\\text{", "\\textbf{", "\\mathrm{"] {
        if let Some(inner) = s.strip_prefix(wrap).and_then(|r| r.strip_suffix('}')) {
            s = inner.trim();
        }
    }
    let is_choice = |c: char| ('A'..='J').contains(&c);
    // Only letters and separators: a (multi-)letter answer such as `A, D` or `(A)(D)` or `ACD`.
    let cleaned = s.replace(" and ", " ").replace('和', " ");
    if cleaned.chars().all(|c| is_choice(c) || matches!(c, ' ' | ',' | '(' | ')' | '、' | '，' | ';'))
        && cleaned.chars().any(is_choice)
    {
        let mut v: Vec<char> = cleaned.chars().filter(|&c| is_choice(c)).collect();
        v.sort_unstable();
        v.dedup();
        return Some(v.into_iter().collect());
    }
    // A letter closed by `)`/`.`/`:` and followed by the option text: `(B) 4`, `B) 4`, `B. 4`.
    let rest = s.trim_start_matches('(').trim_start();
    let mut chars = rest.chars();
    let first = chars.next()?;
    if is_choice(first) && matches!(chars.next(), Some(')' | '.' | ':')) {
        return Some(first.to_string());
    }
    None
}

/// A benchmark read from a JSONL file.
#[derive(Debug, Clone)]
pub struct BenchTask {
    /// The benchmark.
    pub bench: Bench,
    /// Its examples.
    pub examples: Vec<Example>,
    /// Records skipped while reading (`--skip-bad`), with their reasons.
    pub skipped: Vec<String>,
}

impl BenchTask {
    /// Read `path` (format given or detected).
    pub fn open(path: &Path, bench: Option<Bench>, skip_bad: bool) -> Result<Self> {
        let Loaded { bench, examples, skipped } = read_bench(path, bench, skip_bad)?;
        Ok(BenchTask { bench, examples, skipped })
    }
}

impl Task for BenchTask {
    fn name(&self) -> &str {
        self.bench.name()
    }
    fn examples(&self) -> &[Example] {
        &self.examples
    }
    fn few_shot_style(&self) -> FewShotStyle {
        match self.bench {
            Bench::Gsm8k | Bench::Cmath | Bench::MgsmZh => FewShotStyle::Gsm8k,
            Bench::Math | Bench::Math500 | Bench::Ocw | Bench::GaokaoMathcloze => FewShotStyle::Minerva,
            Bench::GaokaoMathqa | Bench::Sat | Bench::MmluStem => FewShotStyle::Choice,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Toy(Vec<Example>);
    impl Task for Toy {
        fn name(&self) -> &str {
            "toy"
        }
        fn examples(&self) -> &[Example] {
            &self.0
        }
    }

    #[test]
    fn grade_and_reward_agree_on_marked_answers() {
        let t = Toy(vec![Example::new("1", "What is 2 + 3?", "5")]);
        let ex = &t.examples()[0];
        assert!(t.grade(ex, "So it is $\\boxed{5}$.").equivalent);
        assert_eq!(t.reward(ex, "So it is $\\boxed{5}$."), 1.0);
        assert_eq!(t.reward(ex, "So it is $\\boxed{6}$."), 0.0);
        // Lenient grading takes the last number; the strict reward does not.
        assert!(t.grade(ex, "I think 5").equivalent);
        assert_eq!(t.reward(ex, "I think 5"), 0.0);
        // A task without a step-level reference has no rule-based step rewards.
        assert!(t.step_rewards(ex, "2 + 3 = 5\n#### 5").is_none());
    }

    #[test]
    fn multiple_choice_compares_letters() {
        let mut ex = Example::new("1", "Pick\n(A) 1 (B) 2", "B");
        ex.multiple_choice = true;
        let g = grade_example(&ex, "Final Answer: The final answer is (B). I hope it is correct.", &Config::lenient());
        assert!(g.equivalent, "{g:?}");
        assert!(grade_example(&ex, "The answer is $\\boxed{B}$", &Config::lenient()).equivalent);
        let g = grade_example(&ex, "The answer is $\\boxed{C}$", &Config::lenient());
        assert!(!g.equivalent && g.extracted.as_deref() == Some("C"), "{g:?}");
        assert_eq!(choice_letters("(D) 4").as_deref(), Some("D"));
        assert_eq!(choice_letters("\\text{(A)}").as_deref(), Some("A"));
        assert_eq!(choice_letters("D, A").as_deref(), Some("AD"));
        assert_eq!(choice_letters("A B D").as_deref(), Some("ABD"));
        assert_eq!(choice_letters("Apple"), None);
        assert_eq!(choice_letters("a"), None);
        assert_eq!(choice_letters("12"), None);
        let mut multi = Example::new("2", "Pick all", "A C");
        multi.multiple_choice = true;
        assert!(grade_example(&multi, "The answer is $\\boxed{AC}$", &Config::lenient()).equivalent);
        assert!(!grade_example(&multi, "The answer is $\\boxed{A}$", &Config::lenient()).equivalent);
    }
}
