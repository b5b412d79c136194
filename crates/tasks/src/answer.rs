//! Reference answers as a careful user takes them from benchmark records.
//!
//! * MATH (Hendrycks et al. 2021): the content of the **last** `\boxed{...}` (or `\fbox{...}`) of
//!   the solution, brace-matched so nested braces (`\boxed{\frac{1}{2}}`) survive. The
//!   `\boxed 5` form without braces (a few MATH solutions use it) is accepted too.
//! * GSM8K (Cobbe et al. 2021, `openai/grade-school-math`): the text after `####` on the last
//!   line, trimmed, with thousands commas removed (`#### 1,000` is `1000`).
//!
//! This is about *references* only; extracting the answer of a model *response* is
//! `mathforge-verify`'s job (it handles hedging, strict markers and more).

/// The content of the last `\boxed{...}` / `\fbox{...}` in `text`, brace-matched.
/// `None` when there is none or its braces never close.
pub fn last_boxed(text: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for marker in ["\\boxed", "\\fbox"] {
        let mut from = 0;
        while let Some(rel) = text[from..].find(marker) {
            let start = from + rel;
            from = start + marker.len();
            if let Some(content) = boxed_content(&text[from..]) {
                if best.as_ref().is_none_or(|(pos, _)| start > *pos) {
                    best = Some((start, content));
                }
            }
        }
    }
    best.map(|(_, c)| c)
}

/// Parse what follows `\boxed`: `{...}` brace-matched, or ` x` (a single token up to `$`/space).
fn boxed_content(rest: &str) -> Option<String> {
    let trimmed = rest.trim_start_matches([' ', '\t']);
    if let Some(body) = trimmed.strip_prefix('{') {
        let mut depth = 1usize;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' => escaped = true,
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(body[..i].trim().to_string());
                    }
                }
                _ => {}
            }
        }
        None
    } else if rest.starts_with(' ') {
        // `\boxed 5$`: a bare token (MATH uses this a handful of times).
        let tok: String = trimmed.chars().take_while(|c| !matches!(c, '$' | ' ' | '\n' | '.' | ',')).collect();
        (!tok.is_empty()).then_some(tok)
    } else {
        None
    }
}

/// The GSM8K final answer: text after the last `####`, trimmed, commas removed.
pub fn gsm8k_final(answer: &str) -> Option<String> {
    let idx = answer.rfind("####")?;
    let tail = answer[idx + 4..].trim();
    let tail = tail.lines().next().unwrap_or("").trim();
    let cleaned: String = tail.chars().filter(|&c| c != ',').collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// The GSM8K solution without its `#### N` line (for few-shot exemplars and SFT targets).
pub fn gsm8k_rationale(answer: &str) -> &str {
    match answer.rfind("####") {
        Some(i) => answer[..i].trim_end(),
        None => answer.trim_end(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_boxed_is_brace_matched_and_last() {
        assert_eq!(last_boxed(r"so $\boxed{1}$ and then $\boxed{\frac{1}{2}}$.").as_deref(), Some(r"\frac{1}{2}"));
        assert_eq!(last_boxed(r"\boxed{\{1,2\}}").as_deref(), Some(r"\{1,2\}"));
        assert_eq!(last_boxed(r"$\boxed 5$").as_deref(), Some("5"));
        assert_eq!(last_boxed(r"\fbox{7} then \boxed{8}").as_deref(), Some("8"));
        assert_eq!(last_boxed(r"\boxed{8} then \fbox{7}").as_deref(), Some("7"));
        assert_eq!(last_boxed(r"\boxed{unclosed"), None);
        assert_eq!(last_boxed("no box"), None);
    }

    #[test]
    fn gsm8k_final_strips_commas() {
        assert_eq!(gsm8k_final("a\nb\n#### 1,234").as_deref(), Some("1234"));
        assert_eq!(gsm8k_final("#### -5 ").as_deref(), Some("-5"));
        assert_eq!(gsm8k_final("no marker"), None);
        assert_eq!(gsm8k_rationale("step\n#### 5"), "step");
    }
}
