//! Procedural multi-step arithmetic word problems with GSM8K-style worked solutions, for the
//! issue-5 proof that GRPO learns (a 1-10M parameter model on CPU needs problems it can learn
//! in minutes, with exact references and an honest held-out split).
//!
//! A problem follows one person's count of one kind of item through `steps` changes (gain,
//! loss, doubling/tripling, equal split), with small operands (1-9) and intermediate values
//! kept within `max_value`. The solution shows one line per step with GSM8K calculator
//! annotations (`5 + 3 = <<5+3=8>>8`) and ends `#### N`, so it is graded, rewarded and used for
//! SFT exactly like GSM8K.
//!
//! **Split by seed, disjoint by content.** Problems come from one ChaCha8 stream seeded by
//! `seed`; each problem goes to `train` or `heldout` by a hash of its question text (10% held
//! out by default), so the same question can never appear on both sides, and the split of a
//! question does not depend on `n` or on the order of generation. Same seed, same problems.
//!
//! **Two RL options** (spec keys, both off by default). `instruct=true` appends the eval prompt's
//! instruction line ([`INSTRUCTION`]) to every question, so GRPO can sample the generator directly
//! with the prompt SFT saw (runs/tiny.sh writes the same line into its SFT files). `check_work=true`
//! makes [`Task::reward`] stricter than the final answer: the response must also contain at least
//! one `<<a op b=c>>` calculator annotation and every one must be arithmetically true. Why: with
//! answers in 0..=20 a wrong derivation often lands on the right number; in the tiny GRPO run of
//! issue 5 only 96 of 528 rewarded rollouts had correct arithmetic, so the plain outcome reward
//! mostly reinforced wrong work. Held-out accuracy is still graded on the answer alone.
use crate::example::Example;
use crate::task::Task;
use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Which side of the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training problems.
    Train,
    /// Held-out evaluation problems.
    Heldout,
}

/// Generator settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArithConfig {
    /// Stream seed.
    pub seed: u64,
    /// Number of operations after the starting amount (difficulty knob), 1..=8.
    pub steps: usize,
    /// Largest value any intermediate count may reach.
    pub max_value: u64,
    /// Percent of question hashes that are held out (1..=50).
    pub heldout_percent: u64,
    /// Append [`INSTRUCTION`] to every question (after the split is decided on the bare text).
    pub instruct: bool,
    /// Reward 1 only when the answer is right *and* the calculator annotations check out.
    pub check_work: bool,
}

/// The instruction line of `mathforge eval --prompt-format instruct`, as runs/tiny.sh appends it.
pub const INSTRUCTION: &str =
    "Please reason step by step, and put your final answer within \\boxed{}.";

impl Default for ArithConfig {
    fn default() -> Self {
        ArithConfig {
            seed: 0,
            steps: 2,
            max_value: 100,
            heldout_percent: 10,
            instruct: false,
            check_work: false,
        }
    }
}

impl ArithConfig {
    fn validate(&self) -> Result<()> {
        if !(1..=8).contains(&self.steps) {
            return Err(Error::Invalid(format!("arith: steps must be 1..=8, got {}", self.steps)));
        }
        if !(20..=1_000_000).contains(&self.max_value) {
            return Err(Error::Invalid(format!(
                "arith: max_value must be 20..=1000000, got {}",
                self.max_value
            )));
        }
        if !(1..=50).contains(&self.heldout_percent) {
            return Err(Error::Invalid(format!(
                "arith: heldout_percent must be 1..=50, got {}",
                self.heldout_percent
            )));
        }
        Ok(())
    }
}

const NAMES: [(&str, &str, &str); 12] = [
    ("Ava", "she", "her"),
    ("Ben", "he", "his"),
    ("Chloe", "she", "her"),
    ("Dev", "he", "his"),
    ("Emma", "she", "her"),
    ("Felix", "he", "his"),
    ("Grace", "she", "her"),
    ("Hugo", "he", "his"),
    ("Iris", "she", "her"),
    ("Jack", "he", "his"),
    ("Lena", "she", "her"),
    ("Omar", "he", "his"),
];
const ITEMS: [&str; 12] = [
    "apples", "marbles", "stickers", "pencils", "cookies", "coins", "books", "shells", "cards",
    "stamps", "balloons", "buttons",
];
const FRIENDS: [&str; 6] =
    ["a friend", "her brother", "his sister", "a neighbour", "a classmate", "a cousin"];
const GAIN: [&str; 4] = ["buys", "finds", "is given", "wins"];

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// FNV-1a: a stable hash (the standard library's hasher may change between releases).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Which split a question text belongs to.
pub fn split_of(question: &str, heldout_percent: u64) -> Split {
    if fnv1a(question) % 100 < heldout_percent {
        Split::Heldout
    } else {
        Split::Train
    }
}

/// One generated problem: (question, worked solution ending `#### N`, answer).
fn one_problem(rng: &mut ChaCha8Rng, cfg: &ArithConfig) -> (String, String, u64) {
    let (name, he, his) = NAMES[rng.gen_range(0..NAMES.len())];
    let item = ITEMS[rng.gen_range(0..ITEMS.len())];
    let mut v: u64 = rng.gen_range(2..=20u64.min(cfg.max_value));
    let mut q = format!("{name} has {v} {item}.");
    let mut sol = format!("{name} starts with {v} {item}.");
    for _ in 0..cfg.steps {
        // Pick an operation that keeps the count a small non-negative integer.
        let mut choices: Vec<u8> = vec![0];
        if v >= 2 {
            choices.push(1);
        }
        if v * 2 <= cfg.max_value {
            choices.push(2);
        }
        if v >= 4 && (v % 2 == 0 || v % 3 == 0) {
            choices.push(3);
        }
        let op = choices[rng.gen_range(0..choices.len())];
        match op {
            0 => {
                let x = rng.gen_range(1..=9u64.min(cfg.max_value.saturating_sub(v)).max(1));
                let r = v + x;
                let verb = GAIN[rng.gen_range(0..GAIN.len())];
                q.push_str(&format!(" Then {he} {verb} {x} more."));
                sol.push_str(&format!(
                    "\nAfter that {he} has {v} + {x} = <<{v}+{x}={r}>>{r} {item}."
                ));
                v = r;
            }
            1 => {
                let x = rng.gen_range(1..=9u64.min(v - 1));
                let r = v - x;
                let friend = FRIENDS[rng.gen_range(0..FRIENDS.len())];
                q.push_str(&format!(" Then {he} gives {x} to {friend}."));
                sol.push_str(&format!(
                    "\nGiving away {x} leaves {v} - {x} = <<{v}-{x}={r}>>{r} {item}."
                ));
                v = r;
            }
            2 => {
                let k = if v * 3 <= cfg.max_value && rng.gen_bool(0.5) { 3 } else { 2 };
                let r = v * k;
                let word = if k == 2 { "doubles" } else { "triples" };
                q.push_str(&format!(" Then the number of {item} {he} has {word}."));
                sol.push_str(&format!(
                    "\nThe count {word}: {v} * {k} = <<{v}*{k}={r}>>{r} {item}."
                ));
                v = r;
            }
            _ => {
                let k = if v % 2 == 0 && (v % 3 != 0 || rng.gen_bool(0.5)) { 2 } else { 3 };
                let r = v / k;
                q.push_str(&format!(
                    " Then {he} splits {his} {item} into {k} equal groups and keeps one group."
                ));
                sol.push_str(&format!("\nKeeping one of {k} equal groups leaves {v} / {k} = <<{v}/{k}={r}>>{r} {item}."));
                v = r;
            }
        }
    }
    q.push_str(&format!(" How many {item} does {name} have now?"));
    sol.push_str(&format!("\n{} has {v} {item} now.\n#### {v}", capitalize(name)));
    (q, sol, v)
}

/// Generate `n` distinct problems of `split`. Deterministic in `cfg`; an error if the space of
/// problems is too small to find `n` distinct ones.
pub fn generate(cfg: &ArithConfig, split: Split, n: usize) -> Result<Vec<Example>> {
    cfg.validate()?;
    let mut rng =
        ChaCha8Rng::seed_from_u64(cfg.seed ^ (cfg.steps as u64).wrapping_mul(0x9E3779B97F4A7C15));
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    let budget = 1000 + n.saturating_mul(200);
    let split_name = match split {
        Split::Train => "train",
        Split::Heldout => "heldout",
    };
    for _ in 0..budget {
        if out.len() == n {
            break;
        }
        let (q, sol, answer) = one_problem(&mut rng, cfg);
        if split_of(&q, cfg.heldout_percent) != split || !seen.insert(q.clone()) {
            continue;
        }
        let q = if cfg.instruct { format!("{q}\n{INSTRUCTION}") } else { q };
        let mut ex = Example::new(
            format!("arith-{split_name}-s{}-{}", cfg.steps, out.len()),
            q,
            answer.to_string(),
        );
        ex.solution = Some(sol);
        ex.subject = Some("arithmetic".into());
        ex.level = Some(cfg.steps.to_string());
        out.push(ex);
    }
    if out.len() < n {
        return Err(Error::Invalid(format!(
            "arith: found only {} distinct {split_name} problems with steps={} (asked for {n})",
            out.len(),
            cfg.steps
        )));
    }
    Ok(out)
}

/// Parse a data spec `arith:split=heldout,steps=3,n=200,seed=0,max_value=100` (used by
/// `mathforge eval --data`). Unknown keys are an error naming the key.
pub fn parse_spec(spec: &str) -> Result<Option<(ArithConfig, Split, usize)>> {
    let Some(rest) = spec.strip_prefix("arith") else { return Ok(None) };
    let rest = match rest.strip_prefix(':') {
        Some(r) => r,
        None if rest.is_empty() => "",
        None => return Ok(None),
    };
    let mut cfg = ArithConfig::default();
    let (mut split, mut n) = (Split::Heldout, 200usize);
    for kv in rest.split(',').filter(|s| !s.trim().is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("arith spec: {kv:?} is not key=value")))?;
        let (k, v) = (k.trim(), v.trim());
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| Error::Invalid(format!("arith spec: {k}={v:?} is not a number")))
        };
        match k {
            "split" => {
                split = match v {
                    "train" => Split::Train,
                    "heldout" | "test" => Split::Heldout,
                    _ => return Err(Error::Invalid(format!("arith spec: split must be train or heldout, got {v:?}"))),
                }
            }
            "steps" => cfg.steps = num(v)? as usize,
            "n" => n = num(v)? as usize,
            "seed" => cfg.seed = num(v)?,
            "max_value" => cfg.max_value = num(v)?,
            "heldout_percent" => cfg.heldout_percent = num(v)?,
            "instruct" | "check_work" => {
                let b = match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(Error::Invalid(format!("arith spec: {k}={v:?} is not true or false"))),
                };
                if k == "instruct" {
                    cfg.instruct = b
                } else {
                    cfg.check_work = b
                }
            }
            other => {
                return Err(Error::Invalid(format!(
                    "arith spec: unknown key {other:?} (known: split, steps, n, seed, max_value, heldout_percent, instruct, check_work)"
                )))
            }
        }
    }
    cfg.validate()?;
    Ok(Some((cfg, split, n)))
}

/// The generated problems as a [`Task`].
#[derive(Debug, Clone)]
pub struct ArithTask {
    /// The problems.
    pub examples: Vec<Example>,
    /// Reward also checks the calculator annotations ([`ArithConfig::check_work`]).
    pub check_work: bool,
}

impl ArithTask {
    /// Generate `n` problems of `split`.
    pub fn new(cfg: &ArithConfig, split: Split, n: usize) -> Result<Self> {
        Ok(ArithTask { examples: generate(cfg, split, n)?, check_work: cfg.check_work })
    }
}

/// True when `response` has at least one `<<a op b=c>>` annotation (non-negative integers, op one
/// of `+ - * /`) and every annotation is arithmetically true (division exact). Anything that does
/// not parse counts as wrong work.
pub fn annotations_valid(response: &str) -> bool {
    let mut seen = 0;
    for part in response.split("<<").skip(1) {
        let Some((expr, _)) = part.split_once(">>") else { return false };
        let Some((lhs, rhs)) = expr.split_once('=') else { return false };
        let Some(op) = lhs.find(['+', '-', '*', '/']) else { return false };
        let (Ok(a), Ok(b), Ok(c)) = (
            lhs[..op].trim().parse::<u64>(),
            lhs[op + 1..].trim().parse::<u64>(),
            rhs.trim().parse::<u64>(),
        ) else {
            return false;
        };
        let r = match &lhs[op..op + 1] {
            "+" => a.checked_add(b),
            "-" => a.checked_sub(b),
            "*" => a.checked_mul(b),
            _ => (b != 0 && a % b == 0).then(|| a / b),
        };
        if r != Some(c) {
            return false;
        }
        seen += 1;
    }
    seen > 0
}

/// The arithmetic skeleton of a solution line: its digits and `+ - * / = #` signs in order, all
/// words dropped, so the person, the item and the phrasing do not matter but every operand, every
/// operator, every result and the `#### N` marker do.
fn skeleton(line: &str) -> String {
    line.chars().filter(|c| c.is_ascii_digit() || "+-*/=#".contains(*c)).collect()
}

/// Step rewards of `response` against the reference `solution`: one per non-empty line of the
/// response, 1 while every line so far has the skeleton of the reference's line at the same
/// position, 0 from the first line that does not (or that goes past the reference's end); then a
/// 0 for each reference line the response stopped short of. A problem here has a single
/// derivation, so "all steps so far match it" is exactly "the correct answer is still reachable
/// from here", Math-Shepherd's definition of a good step (a lucky final answer after a wrong step
/// gets 0 for that last step too). The missing steps count because GRPO's process advantage sums
/// the normalized rewards of every later step: without them, stopping after one line
/// (`X has 6.\n#### 6`, one 0) beat going on after a wrong step (four 0s), and a 10-minute run
/// learned to skip the work (docs/train-report.md, section 0.8, run T).
pub fn step_rewards(solution: &str, response: &str) -> Vec<f32> {
    let reference: Vec<String> =
        solution.lines().filter(|l| !l.trim().is_empty()).map(skeleton).collect();
    let mut ok = true;
    let mut rewards: Vec<f32> = response
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            ok = ok && reference.get(i).is_some_and(|r| *r == skeleton(line));
            if ok {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    if rewards.len() < reference.len() {
        rewards.resize(reference.len(), 0.0);
    }
    rewards
}

impl Task for ArithTask {
    fn step_rewards(&self, ex: &Example, response: &str) -> Option<Vec<f32>> {
        ex.solution.as_deref().map(|sol| step_rewards(sol, response))
    }
    fn name(&self) -> &str {
        "arith"
    }
    fn examples(&self) -> &[Example] {
        &self.examples
    }
    fn reward(&self, ex: &Example, response: &str) -> f32 {
        let answer_right =
            crate::task::grade_example(ex, response, &mathforge_verify::Config::strict())
                .equivalent;
        if answer_right && (!self.check_work || annotations_valid(response)) {
            1.0
        } else {
            0.0
        }
    }
}

/// The examples as GSM8K-format JSONL records (`question`, `answer` with `#### N`, `id`,
/// `steps`), readable back with `--bench gsm8k` (or auto-detected).
pub fn to_gsm8k_records(examples: &[Example]) -> Vec<serde_json::Value> {
    examples
        .iter()
        .map(|e| {
            serde_json::json!({
                "question": e.question,
                "answer": e.solution.clone().unwrap_or_else(|| format!("#### {}", e.reference)),
                "id": e.id,
                "steps": e.level,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::gsm8k_final;

    /// Re-do the arithmetic of every `<<a op b=c>>` annotation.
    fn check_annotations(sol: &str) {
        for part in sol.split("<<").skip(1) {
            let expr = part.split(">>").next().unwrap();
            let (lhs, rhs) = expr.split_once('=').unwrap();
            let rhs: u64 = rhs.parse().unwrap();
            let op = lhs.find(['+', '-', '*', '/']).unwrap();
            let a: u64 = lhs[..op].parse().unwrap();
            let b: u64 = lhs[op + 1..].parse().unwrap();
            let r = match &lhs[op..op + 1] {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                _ => {
                    assert_eq!(a % b, 0, "{expr}");
                    a / b
                }
            };
            assert_eq!(r, rhs, "{expr}");
        }
    }

    #[test]
    fn solutions_are_correct_and_end_with_the_answer() {
        for steps in 1..=6 {
            let cfg = ArithConfig { steps, ..Default::default() };
            for ex in generate(&cfg, Split::Train, 200).unwrap() {
                let sol = ex.solution.as_deref().unwrap();
                check_annotations(sol);
                assert_eq!(gsm8k_final(sol).unwrap(), ex.reference);
                assert_eq!(sol.matches("<<").count(), steps, "{sol}");
                let v: u64 = ex.reference.parse().unwrap();
                assert!(v <= cfg.max_value);
            }
        }
    }

    #[test]
    fn deterministic_and_disjoint_split() {
        let cfg = ArithConfig { steps: 3, seed: 7, ..Default::default() };
        let a = generate(&cfg, Split::Train, 300).unwrap();
        assert_eq!(a, generate(&cfg, Split::Train, 300).unwrap());
        let held = generate(&cfg, Split::Heldout, 100).unwrap();
        let train: HashSet<_> = a.iter().map(|e| e.question.clone()).collect();
        assert!(held.iter().all(|e| !train.contains(&e.question)));
        assert!(held.iter().all(|e| split_of(&e.question, 10) == Split::Heldout));
        let other = generate(&ArithConfig { seed: 8, ..cfg.clone() }, Split::Train, 300).unwrap();
        assert_ne!(a, other);
    }

    #[test]
    fn check_work_rejects_lucky_answers() {
        assert!(annotations_valid("4 + 3 = <<4+3=7>>7\n12 / 3 = <<12/3=4>>4\n#### 4"));
        assert!(!annotations_valid("#### 4"), "no annotation: no checked work");
        assert!(!annotations_valid("19 / 3 = <<19/3=6>>6\n#### 6"), "inexact division");
        assert!(!annotations_valid("<<2-5=0>>"), "negative result");
        assert!(!annotations_valid("<<2+2=5>> then <<1+1=2>>"));
        assert!(!annotations_valid("<<2+x=5>>"));
        let (cfg, split, n) =
            parse_spec("arith:split=train,steps=2,max_value=20,n=50,check_work=true,instruct=1")
                .unwrap()
                .unwrap();
        let t = ArithTask::new(&cfg, split, n).unwrap();
        let plain = ArithTask::new(
            &ArithConfig { instruct: false, check_work: false, ..cfg.clone() },
            split,
            n,
        )
        .unwrap();
        for (ex, p) in t.examples().iter().zip(plain.examples()) {
            // Same problems, the instruction appended; the reference solution still earns 1.
            assert_eq!(ex.question, format!("{}\n{INSTRUCTION}", p.question));
            assert_eq!(t.reward(ex, ex.solution.as_deref().unwrap()), 1.0);
            // The right number after wrong work: 1 for the plain reward, 0 with check_work.
            let lucky = format!("<<1+1=3>>3\n#### {}", ex.reference);
            assert_eq!((plain.reward(p, &lucky), t.reward(ex, &lucky)), (1.0, 0.0));
        }
        assert!(parse_spec("arith:check_work=maybe")
            .unwrap_err()
            .to_string()
            .contains("check_work"));
    }

    #[test]
    fn step_rewards_follow_the_reference_derivation() {
        let cfg = ArithConfig { max_value: 20, ..ArithConfig::default() };
        let t = ArithTask::new(&cfg, Split::Train, 30).unwrap();
        for ex in &t.examples {
            let sol = ex.solution.clone().unwrap();
            let n = sol.lines().filter(|l| !l.trim().is_empty()).count();
            // The reference itself, and the reference with other names and items: every step right.
            assert_eq!(t.step_rewards(ex, &sol).unwrap(), vec![1.0; n]);
            let renamed = sol.replace("starts with", "begins with").replace(" has ", " owns ");
            assert_eq!(t.step_rewards(ex, &renamed).unwrap(), vec![1.0; n]);
            // A wrong result in the second line: that step and every later one get 0, even when
            // the final `#### N` line is then copied right (a lucky answer).
            let mut lines: Vec<String> = sol.lines().map(String::from).collect();
            let (_, tail) = lines[1].rsplit_once(">>").unwrap();
            let wrong: u64 = tail.trim_start().split(' ').next().unwrap().parse::<u64>().unwrap() + 1;
            lines[1] = format!("{}>>{wrong} things.", lines[1].rsplit_once(">>").unwrap().0);
            let want: Vec<f32> = (0..n).map(|i| if i < 1 { 1.0 } else { 0.0 }).collect();
            assert_eq!(t.step_rewards(ex, &lines.join("\n")).unwrap(), want);
            // Lines past the reference's end are wrong steps.
            let extra = format!("{sol}\nAnd one more line 7.");
            let r = t.step_rewards(ex, &extra).unwrap();
            assert_eq!((r.len(), r[n - 1], r[n]), (n + 1, 1.0, 0.0));
            // Stopping short: the right first line, then the start count as the answer (the
            // shortcut run T learned) scores a 0 for every step it skipped, as does silence.
            let first = sol.lines().next().unwrap();
            let short = format!("{first}\n#### {}", first.split(' ').find_map(|w| w.parse::<u64>().ok()).unwrap());
            let want: Vec<f32> = (0..n).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect();
            assert_eq!(t.step_rewards(ex, &short).unwrap(), want);
            assert_eq!(t.step_rewards(ex, "").unwrap(), vec![0.0; n]);
        }
    }

    #[test]
    fn reward_accepts_the_reference_solution() {
        let t = ArithTask::new(&ArithConfig::default(), Split::Heldout, 20).unwrap();
        for ex in t.examples() {
            assert_eq!(t.reward(ex, ex.solution.as_deref().unwrap()), 1.0, "{}", ex.question);
        }
    }

    #[test]
    fn spec_parsing() {
        let (cfg, split, n) = parse_spec("arith:split=train,steps=4,n=50,seed=3").unwrap().unwrap();
        assert_eq!((cfg.steps, cfg.seed, split, n), (4, 3, Split::Train, 50));
        assert!(parse_spec("data.jsonl").unwrap().is_none());
        assert!(parse_spec("arith:bogus=1").unwrap_err().to_string().contains("bogus"));
        assert!(parse_spec("arith:steps=99").is_err());
    }
}
