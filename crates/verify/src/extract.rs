//! Final-answer extraction from a model response.
//!
//! Markers, in order of trust: the last `\boxed{..}`/`\fbox{..}` (brace-matched, nested; the
//! convention of the MATH dataset, Hendrycks et al. 2021, and of DeepSeekMath's instruct prompt
//! "put your final answer within \boxed{}"), the Minerva few-shot form "Final Answer: The final
//! answer is $X$. I hope it is correct." (Lewkowycz et al. 2022), "The answer is X" (the GSM8K
//! chain-of-thought few-shot prompt of Wei et al. 2022), GSM8K's `#### X`, Chinese `答案是 X`,
//! and, unless [`Config::strict`](crate::Config), the last number of the response.
//!
//! A base model prompted few-shot keeps writing new problems after its answer; everything from
//! the first `\n\nProblem:` / `\nQ:` / `\nQuestion:` / `\nUser:` is cut before extraction.
//! Hedging ("5 or 6", `\boxed{5} or \boxed{6}`, "not 5, it is 6") is reported by [`hedge`] and
//! earns nothing: a reward that accepts either of two answers teaches the policy to list both.
use crate::Config;

/// An extracted answer and the rule that found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The answer text (trimmed; outer `$` removed).
    pub answer: String,
    /// Which marker found it (for the grade's reason).
    pub rule: &'static str,
    /// Other boxed answers offered with "or" (`\boxed{x+11} or \boxed{11+x}`): a hedge unless
    /// they are all equivalent to `answer`.
    pub alternatives: Vec<String>,
}

/// Markers after which a base model starts a new few-shot example.
const CONTINUATIONS: [&str; 7] =
    ["\n\nProblem:", "\nProblem:", "\nQ:", "\n\nQuestion:", "\nQuestion:", "\nUser:", "\nHuman:"];

/// Cut a few-shot continuation off a response.
pub fn cut_continuation(response: &str) -> &str {
    let mut end = response.len();
    for m in CONTINUATIONS {
        if let Some(p) = response.find(m) {
            // A marker right at the start is the response itself, not a continuation.
            if p > 0 && p < end {
                end = p;
            }
        }
    }
    &response[..end]
}

/// Extract the final answer of `response`.
pub fn extract(response: &str, cfg: &Config) -> Option<Found> {
    let text = cut_continuation(response);
    if let Some(f) = boxed(text) {
        return Some(f);
    }
    if let Some(a) = after_marker(text) {
        return Some(a);
    }
    if cfg.strict {
        return None;
    }
    last_number(text).map(|n| Found { answer: n, rule: "last number", alternatives: vec![] })
}

/// Content of a brace group starting at `open` (which must be `{`); returns (content, end index
/// after the closing brace). Unbalanced groups return `None`.
pub fn brace_group(s: &str, open: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    if b.get(open) != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                // An escaped brace does not count.
                i += 2;
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&s[open + 1..i], i + 1));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// All `\boxed`/`\fbox` answers with their (start, end) byte spans.
fn boxed_spans(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while from < text.len() {
        let rest = &text[from..];
        let hit = [("\\boxed", 6), ("\\fbox", 5)]
            .iter()
            .filter_map(|(m, l)| rest.find(m).map(|p| (p, *l)))
            .min_by_key(|(p, _)| *p);
        let Some((p, l)) = hit else { break };
        let start = from + p;
        let mut i = start + l;
        let bytes = text.as_bytes();
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if let Some((content, end)) = brace_group(text, i) {
            out.push((start, end, content.trim().to_string()));
            from = end;
        } else if i > start + l && i < bytes.len() {
            // `\boxed 5`: the argument is one token.
            let tok_end = text[i..]
                .find(|c: char| c.is_whitespace() || c == '$')
                .map_or(text.len(), |e| i + e);
            let tok = text[i..tok_end].trim_end_matches(['.', ',']);
            if !tok.is_empty() {
                out.push((start, tok_end, tok.to_string()));
            }
            from = tok_end.max(i + 1);
        } else {
            from = start + l;
        }
    }
    out
}

fn boxed(text: &str) -> Option<Found> {
    let spans = boxed_spans(text);
    let (_, _, last) = spans.last()?;
    let mut alternatives = Vec::new();
    // Walk back over boxes that end the response together: "\boxed{2} and \boxed{3}" is one
    // answer (a list), "\boxed{5} or \boxed{6}" offers alternatives.
    let mut parts = vec![last.clone()];
    for w in spans.windows(2).rev() {
        let between = &text[w[0].1..w[1].0];
        if between.len() > 40 {
            break;
        }
        let sep = between.replace(['$', ',', ' ', '(', ')', '.'], "").replace("\\text{or}", "or");
        match sep.trim() {
            "" | "and" | "\\text{and}" => parts.push(w[0].2.clone()),
            "or" => {
                alternatives.push(w[0].2.clone());
                // Boxes before an "or" belong to the alternatives, not to the list.
                break;
            }
            _ => break,
        }
    }
    parts.reverse();
    parts.dedup_by(|a, b| norm(a) == norm(b));
    let mut answer = strip_dollars(&parts.join(", "));
    // `\boxed{\boxed{5}}`: unwrap.
    while let Some(inner) = answer.strip_prefix("\\boxed").map(str::trim_start) {
        match brace_group(inner, 0) {
            Some((c, end)) if end == inner.len() => answer = strip_dollars(c),
            _ => break,
        }
    }
    Some(Found { answer: strip_dollars(&answer), rule: "boxed", alternatives })
}

fn norm(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Markers that introduce a final answer, lowercase (matched case-insensitively on ASCII).
const MARKERS: [(&str, &str); 8] = [
    ("final answer is", "final answer is"),
    ("answer is:", "the answer is"),
    ("answer is", "the answer is"),
    ("final answer:", "final answer:"),
    ("answer:", "answer:"),
    ("####", "####"),
    ("答案是", "答案是"),
    ("答案为", "答案为"),
];

fn after_marker(text: &str) -> Option<Found> {
    let lower = text.to_ascii_lowercase();
    // The marker that occurs last wins; for ties the longer (earlier in the list) one.
    let mut best: Option<(usize, usize, &'static str)> = None;
    for (m, rule) in MARKERS {
        if let Some(p) = lower.rfind(m) {
            let end = p + m.len();
            if best.is_none_or(|(bp, be, _)| end > be || (end == be && p < bp)) {
                best = Some((p, end, rule));
            }
        }
    }
    let (_, end, rule) = best?;
    // "Final Answer: The final answer is $X$": the later marker wins by position anyway.
    let rest = text[end..].trim_start_matches([' ', ':', '：', '\t']);
    let ans = answer_span(rest, rule == "####");
    let ans = ans.trim();
    if ans.is_empty() {
        return None;
    }
    Some(Found { answer: ans.to_string(), rule, alternatives: vec![] })
}

/// The answer right after a marker: a `$..$`/`\(..\)` math span if it starts with one, else the
/// rest of the sentence.
fn answer_span(rest: &str, whole_line: bool) -> String {
    let line = rest.split('\n').next().unwrap_or("");
    let line = line.split("I hope it is correct").next().unwrap_or(line);
    if !whole_line {
        for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
            if let Some(inner) = line.strip_prefix(open) {
                if let Some(e) = inner.find(close) {
                    let after = inner[e + close.len()..].trim_start();
                    // "$x$ or $y$" must stay whole so the hedge check sees it.
                    if !(after.starts_with("or ") || after.starts_with("and ")) {
                        return inner[..e].trim().to_string();
                    }
                }
            }
        }
    }
    let mut s = line.trim().to_string();
    // A sentence ends at ". " or "。"; a decimal point is followed by a digit.
    if let Some(p) = find_sentence_end(&s) {
        s.truncate(p);
    }
    let s = s.trim_end().trim_end_matches(['.', '。', '!']).trim_end();
    strip_dollars(s)
}

fn find_sentence_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0i32;
    let mut dollars = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '$' => dollars += 1,
            '。' => return Some(i),
            '.' if depth == 0 && dollars % 2 == 0 && b.get(i + 1).is_none_or(|n| *n == b' ') => {
                return Some(i);
            }
            _ => {}
        }
    }
    None
}

/// Remove surrounding `$`, `\(`..`\)`, `\[`..`\]` and a trailing period.
pub fn strip_dollars(s: &str) -> String {
    // `\$` is a currency sign, not a math delimiter.
    let owned = s.replace("\\$", "");
    let mut t = owned.trim();
    loop {
        let before = t;
        for (o, c) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
            if let Some(x) = t.strip_prefix(o).and_then(|x| x.strip_suffix(c)) {
                t = x.trim();
            }
        }
        t = t.trim_end_matches(['.', '。']).trim();
        if t == before {
            break;
        }
    }
    if t.matches('$').count() == 1 {
        // "$12" (a currency sign) or a dangling delimiter.
        return t.replace('$', "").trim().to_string();
    }
    t.replace('$', " ").trim().to_string()
}

/// The last number of a text (signs, thousands separators, decimals, simple fractions).
pub fn last_number(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut i = b.len();
    while i > 0 {
        i -= 1;
        if !b[i].is_ascii_digit() {
            continue;
        }
        let end = i + 1;
        let mut start = i;
        while start > 0 {
            let c = b[start - 1];
            let digit_before = start >= 2 && b[start - 2].is_ascii_digit();
            if c.is_ascii_digit() || ((c == b'.' || c == b',' || c == b'/') && digit_before) {
                start -= 1;
            } else {
                break;
            }
        }
        if start > 0 && b[start - 1] == b'-' {
            start -= 1;
        }
        let tok = text[start..end].to_string();
        // "1,000" keeps its comma; "3, 4" never reaches here (space breaks the token).
        return Some(tok);
    }
    None
}

/// Whether an extracted answer hedges between values; returns the pattern that matched.
pub fn hedge(answer: &str) -> Option<&'static str> {
    let plain =
        answer.replace("\\text{", " ").replace("\\mbox{", " ").replace(['{', '}', '$'], " ");
    let words: Vec<&str> = plain.split_whitespace().collect();
    let has_rel = |s: &[&str]| {
        s.iter().any(|w| {
            w.contains('=')
                || w.contains('<')
                || w.contains('>')
                || w.contains("\\le")
                || w.contains("\\ge")
                || w.contains("\\ne")
        })
    };
    for (k, w) in words.iter().enumerate() {
        let lw = w.to_ascii_lowercase();
        if lw == "or" && k > 0 && k + 1 < words.len() {
            // "x < 2 or x > 5" and "x = 2 or x = 3" describe a set; "5 or 6" is a hedge.
            if !has_rel(&words[..k]) && !has_rel(&words[k + 1..]) {
                return Some("or");
            }
        }
        if (lw == "not" || lw == "isn't") && k + 1 < words.len() {
            let after = words[k + 1..].join(" ");
            let digit_after = after.chars().take(12).any(|c| c.is_ascii_digit());
            let later =
                words[k + 1..].iter().skip(1).any(|x| x.chars().any(|c| c.is_ascii_digit()));
            if digit_after && later {
                return Some("not");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str) -> Option<String> {
        extract(s, &Config::lenient()).map(|f| f.answer)
    }

    #[test]
    fn boxed_nested() {
        assert_eq!(ex("so $\\boxed{\\frac{1}{\\sqrt{2}}}$."), Some("\\frac{1}{\\sqrt{2}}".into()));
        assert_eq!(ex("\\boxed{1} then \\fbox{2}"), Some("2".into()));
        assert_eq!(ex("\\boxed 5."), Some("5".into()));
    }

    #[test]
    fn minerva_and_gsm8k() {
        let r = "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.";
        assert_eq!(ex(r), Some("\\frac{3}{4}".into()));
        assert_eq!(ex("48/2 = 24\n#### 1,024"), Some("1,024".into()));
        assert_eq!(ex("So 3.5 + 2 = 5.5. The answer is 5.5."), Some("5.5".into()));
        assert_eq!(ex("所以答案是 18。"), Some("18".into()));
    }

    #[test]
    fn continuation_is_cut() {
        let r = "The answer is 7.\n\nQ: There are 3 cars. A: The answer is 9.";
        assert_eq!(ex(r), Some("7".into()));
    }

    #[test]
    fn strict_needs_marker() {
        assert_eq!(extract("it is 42", &Config::strict()), None);
        assert_eq!(ex("it is 42"), Some("42".into()));
    }

    #[test]
    fn hedges() {
        assert!(hedge("5 or 6").is_some());
        assert!(hedge("not 5, it is 6").is_some());
        assert!(hedge("x<2 \\text{ or } x>5").is_none());
        assert!(hedge("\\text{does not exist}").is_none());
        let f = extract("$\\boxed{5}$ or $\\boxed{6}$", &Config::lenient()).unwrap();
        assert_eq!(f.alternatives, vec!["5".to_string()]);
    }
}
