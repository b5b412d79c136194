//! Benchmark readers: one JSONL record in, one [`Example`] out, for every format listed in
//! `shared/data/benchmarks/README.md`.
//!
//! | bench | fields read | reference |
//! |---|---|---|
//! | `gsm8k` | `question`, `answer` (`... #### N`; or the DeepSeek copy: `answer` = N, `cot`, `id`) | after `####`, commas removed |
//! | `math` | `problem`, `solution`, `type`, `level`, `unique_id` | last `\boxed{}` of `solution` |
//! | `math500` | `problem`, `solution`, `answer`, `subject`, `level` (int), `unique_id` | `answer` |
//! | `cmath` | `question`, `golden`, `grade` | `golden` |
//! | `mgsm-zh` | `messages[role=user].content`, `answer`, `id` | `answer` |
//! | `gaokao-mathcloze` | `question`, `answer` (`;` between blanks) | `answer`, blanks joined as a tuple |
//! | `gaokao-mathqa` | `question`, `options` (`"(A)..."`), `label` | `label` |
//! | `sat` | `question`, `options` (one string `A) .. B) ..`), `Answer` | `Answer` |
//! | `ocw` | `problem`, `solution`, `answer`, `id` | `answer` |
//! | `mmlu-stem` | `question`, `options` (4 strings), `answer` letter, `topic` | `answer` |
//!
//! A record that lacks a field is an error naming file, line and field; with `skip_bad` it is
//! skipped and counted with that reason instead (datatrove's `dropped_<reason>`).
use crate::answer::{gsm8k_final, gsm8k_rationale, last_boxed};
use crate::example::{Example, Lang};
use crate::{Error, Result};
use mathforge_io::jsonl::open_read;
use std::io::BufRead;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The benchmark formats this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bench {
    /// GSM8K (openai format, or the DeepSeek-Math copy); also what the arithmetic generator writes.
    Gsm8k,
    /// MATH (Hendrycks et al. 2021), converted one record per problem.
    Math,
    /// MATH-500 (PRM800K test subset) with an explicit `answer`.
    Math500,
    /// CMATH (Chinese elementary school math).
    Cmath,
    /// MGSM, Chinese subset.
    MgsmZh,
    /// Gaokao MathCloze (AGIEval): fill-in-the-blank.
    GaokaoMathcloze,
    /// Gaokao MathQA (AGIEval): multiple choice.
    GaokaoMathqa,
    /// SAT math (Minerva / Llemma evaluation): multiple choice.
    Sat,
    /// MIT OCW courses (Minerva).
    Ocw,
    /// MMLU STEM subset: multiple choice.
    MmluStem,
}

impl Bench {
    /// Every benchmark, in the order the docs list them.
    pub const ALL: [Bench; 10] = [
        Bench::Gsm8k,
        Bench::Math,
        Bench::Math500,
        Bench::Cmath,
        Bench::MgsmZh,
        Bench::GaokaoMathcloze,
        Bench::GaokaoMathqa,
        Bench::Sat,
        Bench::Ocw,
        Bench::MmluStem,
    ];

    /// The CLI name (`--bench NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Bench::Gsm8k => "gsm8k",
            Bench::Math => "math",
            Bench::Math500 => "math500",
            Bench::Cmath => "cmath",
            Bench::MgsmZh => "mgsm-zh",
            Bench::GaokaoMathcloze => "gaokao-mathcloze",
            Bench::GaokaoMathqa => "gaokao-mathqa",
            Bench::Sat => "sat",
            Bench::Ocw => "ocw",
            Bench::MmluStem => "mmlu-stem",
        }
    }

    /// Parse a CLI name (case-insensitive; `_` and `-` are interchangeable).
    pub fn from_name(name: &str) -> Result<Bench> {
        let norm = name.trim().to_ascii_lowercase().replace('_', "-");
        let alias = match norm.as_str() {
            "math-500" => "math500",
            "mgsm" | "mgsm_zh" => "mgsm-zh",
            "mmlu" | "mmlu_stem" => "mmlu-stem",
            other => other,
        };
        Bench::ALL.into_iter().find(|b| b.name() == alias).ok_or_else(|| Error::UnknownName {
            what: "benchmark",
            name: name.to_string(),
            known: Bench::ALL.map(|b| b.name()).join(", "),
        })
    }

    /// Language of the benchmark's problems.
    pub fn lang(self) -> Lang {
        match self {
            Bench::Cmath | Bench::MgsmZh | Bench::GaokaoMathcloze | Bench::GaokaoMathqa => Lang::Zh,
            _ => Lang::En,
        }
    }

    /// True for multiple-choice benchmarks (reference is a letter).
    pub fn multiple_choice(self) -> bool {
        matches!(self, Bench::GaokaoMathqa | Bench::Sat | Bench::MmluStem)
    }

    /// Guess the benchmark from the field names of one record.
    pub fn detect(record: &Map<String, Value>) -> Option<Bench> {
        let has = |k: &str| record.contains_key(k);
        let str_field = |k: &str| record.get(k).and_then(Value::as_str);
        if has("messages") && has("answer") {
            return Some(Bench::MgsmZh);
        }
        if has("golden") {
            return Some(Bench::Cmath);
        }
        if has("passage") && has("options") {
            return Some(if record.get("options").is_some_and(Value::is_array) {
                Bench::GaokaoMathqa
            } else {
                Bench::GaokaoMathcloze
            });
        }
        if has("Answer") && has("options") {
            return Some(Bench::Sat);
        }
        if has("options") && has("topic") {
            return Some(Bench::MmluStem);
        }
        if has("problem") && has("solution") {
            if has("answer") && has("subject") {
                return Some(Bench::Math500);
            }
            if has("type") && has("level") {
                return Some(Bench::Math);
            }
            if has("answer") {
                return Some(Bench::Ocw);
            }
        }
        if has("question") && has("answer") {
            let ans = str_field("answer").unwrap_or("");
            if ans.contains("####") || has("cot") {
                return Some(Bench::Gsm8k);
            }
        }
        None
    }
}

impl std::fmt::Display for Bench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What reading a benchmark file produced.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The benchmark (given or detected).
    pub bench: Bench,
    /// The examples, in file order.
    pub examples: Vec<Example>,
    /// Records skipped with `skip_bad`: `file:line: reason`.
    pub skipped: Vec<String>,
}

/// Read a benchmark JSONL file (`.gz`/`.zst` too). `bench = None` detects the format from the
/// first record's fields. With `skip_bad`, malformed lines and records are skipped and listed
/// in [`Loaded::skipped`]; otherwise the first one is an error with file and line.
pub fn read_bench(path: &Path, bench: Option<Bench>, skip_bad: bool) -> Result<Loaded> {
    let mut input = open_read(path)?;
    let mut bench = bench;
    let mut examples = Vec::new();
    let mut skipped = Vec::new();
    let mut buf = Vec::new();
    let mut line: u64 = 0;
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf).map_err(|e| {
            bad(path, line + 1, bench.map_or("jsonl", Bench::name), format!("read error (truncated or corrupt file?): {e}"))
        })?;
        if n == 0 {
            break;
        }
        line += 1;
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let value = match parse_json_line(text) {
            Ok(v) => v,
            Err(e) => {
                let err = bad(path, line, bench.map_or("jsonl", Bench::name), format!("invalid JSON: {e}"));
                if skip_bad {
                    skipped.push(err.to_string());
                    continue;
                }
                return Err(err);
            }
        };
        let Value::Object(map) = value else {
            let err = bad(path, line, bench.map_or("jsonl", Bench::name), "record is not a JSON object");
            if skip_bad {
                skipped.push(err.to_string());
                continue;
            }
            return Err(err);
        };
        let b = match bench {
            Some(b) => b,
            None => {
                let detected = Bench::detect(&map).ok_or_else(|| Error::UnknownFormat {
                    path: path.to_path_buf(),
                    fields: map.keys().cloned().collect(),
                    known: Bench::ALL.map(|b| b.name()).join(", "),
                })?;
                bench = Some(detected);
                detected
            }
        };
        match parse_record(b, &map, path, line) {
            Ok(ex) => examples.push(ex),
            Err(e) if skip_bad => skipped.push(e.to_string()),
            Err(e) => return Err(e),
        }
    }
    let Some(bench) = bench else {
        return Err(Error::Empty(path.to_path_buf()));
    };
    if examples.is_empty() {
        return Err(Error::Empty(path.to_path_buf()));
    }
    Ok(Loaded { bench, examples, skipped })
}

/// Parse one JSON line. Python's `json.dumps` writes a bare `NaN` for a missing pandas value
/// (DeepSeek-Math's MMLU-STEM copy has 11 such options, originally the option text "None");
/// strict JSON rejects it, so bare `NaN` tokens outside strings are read as `null`.
fn parse_json_line(text: &str) -> std::result::Result<Value, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(e) => {
            if !text.contains("NaN") {
                return Err(e);
            }
            let mut out = String::with_capacity(text.len());
            let (mut in_str, mut esc) = (false, false);
            let mut rest = text;
            while let Some(c) = rest.chars().next() {
                if in_str {
                    if esc {
                        esc = false;
                    } else if c == '\\' {
                        esc = true;
                    } else if c == '"' {
                        in_str = false;
                    }
                } else if c == '"' {
                    in_str = true;
                } else if rest.starts_with("NaN") {
                    out.push_str("null");
                    rest = &rest[3..];
                    continue;
                }
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
            serde_json::from_str(&out).map_err(|_| e)
        }
    }
}

fn bad(path: &Path, line: u64, bench: &'static str, message: impl Into<String>) -> Error {
    Error::BadRecord { path: PathBuf::from(path), line, bench, message: message.into() }
}

/// Field access that names the missing field in its error.
struct Rec<'a> {
    map: &'a Map<String, Value>,
    path: &'a Path,
    line: u64,
    bench: Bench,
}

impl<'a> Rec<'a> {
    fn err(&self, msg: impl Into<String>) -> Error {
        bad(self.path, self.line, self.bench.name(), msg)
    }
    fn str(&self, key: &str) -> Result<&'a str> {
        match self.map.get(key) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(other) => Err(self.err(format!("field {key:?} must be a string, found {}", kind(other)))),
            None => Err(self.err(format!("missing field {key:?}"))),
        }
    }
    /// A string or number field rendered as text (CMATH `golden`, MATH-500 `level`, ids).
    fn text(&self, key: &str) -> Result<String> {
        match self.map.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(self.err(format!("field {key:?} must be a string or number, found {}", kind(other)))),
            None => Err(self.err(format!("missing field {key:?}"))),
        }
    }
    fn opt_text(&self, key: &str) -> Option<String> {
        match self.map.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }
    fn id(&self, key: &str) -> String {
        self.opt_text(key).unwrap_or_else(|| format!("{}-{}", self.bench.name(), self.line))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const LETTERS: [char; 10] = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'];

/// Turn one record into an example (public for readers of single records, e.g. servers).
pub fn parse_record(bench: Bench, map: &Map<String, Value>, path: &Path, line: u64) -> Result<Example> {
    let r = Rec { map, path, line, bench };
    let mut ex = match bench {
        Bench::Gsm8k => {
            let question = r.str("question")?;
            let answer = r.text("answer")?;
            let (reference, solution) = if answer.contains("####") {
                let reference = gsm8k_final(&answer)
                    .ok_or_else(|| r.err("field \"answer\" has nothing after \"####\""))?;
                (reference, Some(answer.clone()))
            } else {
                // DeepSeek-Math copy: `answer` is the number, `cot` the rationale.
                let reference: String = answer.trim().chars().filter(|&c| c != ',').collect();
                if reference.is_empty() {
                    return Err(r.err("field \"answer\" is empty"));
                }
                let solution = r.opt_text("cot").map(|c| format!("{}\n#### {reference}", gsm8k_rationale(&c)));
                (reference, solution)
            };
            let mut ex = Example::new(r.id("id"), question, reference);
            ex.solution = solution;
            ex
        }
        Bench::Math => {
            let solution = r.str("solution")?;
            let reference = last_boxed(solution)
                .ok_or_else(|| r.err("field \"solution\" has no closed \\boxed{...}"))?;
            let mut ex = Example::new(r.id("unique_id"), r.str("problem")?, reference);
            ex.solution = Some(solution.to_string());
            ex.subject = r.opt_text("type");
            ex.level = r.opt_text("level").map(|l| l.trim_start_matches("Level ").to_string());
            ex
        }
        Bench::Math500 => {
            let mut ex = Example::new(r.id("unique_id"), r.str("problem")?, r.str("answer")?);
            ex.solution = r.opt_text("solution");
            ex.subject = r.opt_text("subject");
            ex.level = r.opt_text("level").map(|l| l.trim_start_matches("Level ").to_string());
            ex
        }
        Bench::Ocw => {
            let mut ex = Example::new(r.id("id"), r.str("problem")?, r.text("answer")?);
            ex.solution = r.opt_text("solution");
            ex
        }
        Bench::Cmath => {
            let mut ex = Example::new(r.id("id"), r.str("question")?, r.text("golden")?);
            ex.subject = r.opt_text("grade").map(|g| format!("grade {g}"));
            ex.level = r.opt_text("reasoning_step");
            ex
        }
        Bench::MgsmZh => {
            let messages = r
                .map
                .get("messages")
                .and_then(Value::as_array)
                .ok_or_else(|| r.err("missing field \"messages\" (an array of {role, content})"))?;
            let question = messages
                .iter()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .and_then(|m| m.get("content").and_then(Value::as_str))
                .ok_or_else(|| r.err("field \"messages\" has no user message with a string \"content\""))?;
            Example::new(r.id("id"), question, r.text("answer")?)
        }
        Bench::GaokaoMathcloze => {
            let answer = r.text("answer")?;
            // Several blanks are `;`-separated: grade them as one ordered tuple.
            let blanks: Vec<String> = answer
                .split(';')
                .map(|b| b.trim().trim_matches('$').trim().to_string())
                .filter(|b| !b.is_empty())
                .collect();
            if blanks.is_empty() {
                return Err(r.err("field \"answer\" is empty"));
            }
            let reference = if blanks.len() == 1 { blanks[0].clone() } else { format!("({})", blanks.join(", ")) };
            let mut ex = Example::new(r.id("id"), r.str("question")?, reference);
            ex.subject = r.map.get("other").and_then(|o| o.get("source")).and_then(Value::as_str).map(str::to_string);
            ex
        }
        Bench::GaokaoMathqa => {
            let options = string_list(&r, "options")?;
            let label = r.str("label")?.trim().to_string();
            let question = format!("{}\n{}", r.str("question")?.trim_end(), options.join("\n"));
            Example::new(r.id("id"), question, label)
        }
        Bench::Sat => {
            let options = r.str("options")?;
            let question = format!("{}\nAnswer Choices: {}", r.str("question")?.trim_end(), options.trim());
            Example::new(r.id("id"), question, r.str("Answer")?.trim())
        }
        Bench::MmluStem => {
            let options = string_list(&r, "options")?;
            let listed: Vec<String> =
                options.iter().zip(LETTERS).map(|(o, l)| format!("({l}) {o}")).collect();
            let question = format!("{}\nAnswer Choices: {}", r.str("question")?.trim_end(), listed.join(" "));
            let mut ex = Example::new(r.id("id"), question, r.str("answer")?.trim());
            ex.subject = r.opt_text("topic");
            ex
        }
    };
    ex.lang = bench.lang();
    ex.multiple_choice = bench.multiple_choice();
    if ex.multiple_choice {
        // Normalise `A C` / `ACD` to sorted letters; anything else is not a choice reference.
        ex.reference = crate::task::choice_letters(&ex.reference)
            .ok_or_else(|| r.err(format!("reference {:?} is not a choice letter A-J", ex.reference)))?;
    }
    if ex.question.trim().is_empty() {
        return Err(r.err("the question is empty"));
    }
    Ok(ex)
}

fn string_list(r: &Rec<'_>, key: &str) -> Result<Vec<String>> {
    let arr = match r.map.get(key) {
        Some(Value::Array(a)) => a,
        Some(other) => return Err(r.err(format!("field {key:?} must be an array of strings, found {}", kind(other)))),
        None => return Err(r.err(format!("missing field {key:?}"))),
    };
    arr.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            // A pandas NaN (see `parse_json_line`): the original option text was "None".
            Value::Null => Ok("None".to_string()),
            _ => Err(r.err(format!("field {key:?}[{i}] must be a string"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(lines: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.jsonl");
        let mut f = std::fs::File::create(&p).unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
        (dir, p)
    }

    #[test]
    fn detects_and_reads_every_format() {
        let cases: [(&str, Bench, &str); 11] = [
            (r#####"{"question":"q","answer":"x\n#### 1,000"}"#####, Bench::Gsm8k, "1000"),
            (r#"{"question":"q","answer":"18","cot":"c","id":"gsm8k-test-0"}"#, Bench::Gsm8k, "18"),
            (r#"{"problem":"p","level":"Level 3","type":"Algebra","solution":"so $\\boxed{\\frac{1}{2}}$","unique_id":"test/a/1.json"}"#, Bench::Math, r"\frac{1}{2}"),
            (r#"{"problem":"p","solution":"s","answer":"3","subject":"Algebra","level":2,"unique_id":"u"}"#, Bench::Math500, "3"),
            (r#"{"grade":1,"question":"q","golden":"18","reasoning_step":1,"num_digits":2}"#, Bench::Cmath, "18"),
            (r#"{"dataset":"mgsm-zh","id":"0","messages":[{"role":"user","content":"q"},{"role":"assistant","content":""}],"answer":"18"}"#, Bench::MgsmZh, "18"),
            (r#"{"passage":null,"question":"q","options":null,"label":null,"answer":"$5$;$10$","other":{"source":"s"}}"#, Bench::GaokaoMathcloze, "(5, 10)"),
            (r#"{"passage":null,"question":"q","options":["(A)1","(B)2","(C)3","(D)4"],"label":"D","answer":null}"#, Bench::GaokaoMathqa, "D"),
            (r#"{"id":"0","question":"q","options":"A) 1 B) 2","Answer":"A"}"#, Bench::Sat, "A"),
            (r#"{"problem":"p","solution":"s","answer":"1.6","id":"0"}"#, Bench::Ocw, "1.6"),
            (r#"{"question":"q","options":["0","4","2","6"],"answer":"B","topic":"abstract_algebra","id":0}"#, Bench::MmluStem, "B"),
        ];
        for (line, bench, reference) in cases {
            let (_d, p) = write(&[line]);
            let loaded = read_bench(&p, None, false).unwrap();
            assert_eq!(loaded.bench, bench, "{line}");
            assert_eq!(loaded.examples[0].reference, reference, "{line}");
        }
    }

    #[test]
    fn math_metadata_and_mmlu_choices() {
        let (_d, p) = write(&[
            r#"{"problem":"p","level":"Level 3","type":"Algebra","solution":"$\\boxed{2}$","unique_id":"test/a/1.json"}"#,
        ]);
        let ex = &read_bench(&p, None, false).unwrap().examples[0];
        assert_eq!((ex.subject.as_deref(), ex.level.as_deref(), ex.id.as_str()), (Some("Algebra"), Some("3"), "test/a/1.json"));
        let (_d, p) = write(&[r#"{"question":"q?","options":["0","4"],"answer":"B","topic":"t","id":7}"#]);
        let ex = &read_bench(&p, None, false).unwrap().examples[0];
        assert!(ex.question.contains("(A) 0 (B) 4"), "{}", ex.question);
        assert!(ex.multiple_choice);
        assert_eq!(ex.id, "7");
    }

    #[test]
    fn missing_field_names_file_line_and_field() {
        let (_d, p) = write(&[r#####"{"question":"q","answer":"x\n#### 1"}"#####, r#"{"question":"q2"}"#]);
        let err = read_bench(&p, Some(Bench::Gsm8k), false).unwrap_err().to_string();
        assert!(err.contains("b.jsonl:2:") && err.contains("\"answer\""), "{err}");
        let loaded = read_bench(&p, Some(Bench::Gsm8k), true).unwrap();
        assert_eq!(loaded.examples.len(), 1);
        assert_eq!(loaded.skipped.len(), 1);
    }

    #[test]
    fn malformed_json_is_error_or_skipped() {
        let (_d, p) = write(&[r#####"{"question":"q","answer":"#### 1"}"#####, "{oops", r#####"{"question":"r","answer":"#### 2"}"#####]);
        let err = read_bench(&p, None, false).unwrap_err().to_string();
        assert!(err.contains("b.jsonl:2:"), "{err}");
        let loaded = read_bench(&p, None, true).unwrap();
        assert_eq!(loaded.examples.len(), 2);
        assert_eq!(loaded.skipped.len(), 1);
        assert!(loaded.skipped[0].contains(":2:"));
    }

    #[test]
    fn unknown_format_and_names_are_clear() {
        let (_d, p) = write(&[r#"{"foo":1}"#]);
        let err = read_bench(&p, None, false).unwrap_err().to_string();
        assert!(err.contains("--bench") && err.contains("foo"), "{err}");
        assert!(Bench::from_name("MATH-500").is_ok());
        assert!(Bench::from_name("nope").unwrap_err().to_string().contains("gsm8k"));
    }

    #[test]
    fn python_nan_is_read_as_none_option() {
        let (_d, p) = write(&[r#"{"question":"q NaN","options":[NaN,"I only"],"answer":"A","topic":"t"}"#]);
        let ex = &read_bench(&p, None, false).unwrap().examples[0];
        assert!(ex.question.contains("(A) None (B) I only") && ex.question.starts_with("q NaN"), "{}", ex.question);
    }

    #[test]
    fn wrong_choice_letter_is_rejected() {
        let (_d, p) = write(&[r#"{"question":"q","options":["0","4"],"answer":"Z","topic":"t"}"#]);
        assert!(read_bench(&p, None, false).unwrap_err().to_string().contains("choice letter"));
    }
}
