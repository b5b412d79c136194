//! Text normalisation before parsing: LaTeX spacing and sizing commands, `\dfrac`/`\tfrac`,
//! degree signs, currency, `\text{}` wrappers, and units.
//!
//! Units are removed only when they cannot be part of the answer: a word from the unit list, or
//! any trailing word when the reference is a plain number (GSM8K "18 dollars"), but never a single
//! letter that occurs as a variable in the reference (issue #3: "never a single letter that is a
//! variable in the reference"; `5m` stays `5m` when the reference is `2m+3m`).
use crate::extract::{brace_group, strip_dollars};

/// Unit words (singular, lowercase; a plural `s`/`es` is also accepted).
const UNITS: &[&str] = &[
    "cm",
    "mm",
    "km",
    "m",
    "meter",
    "metre",
    "centimeter",
    "centimetre",
    "millimeter",
    "kilometer",
    "inch",
    "inche",
    "in",
    "ft",
    "foot",
    "feet",
    "yard",
    "yd",
    "mile",
    "mi",
    "g",
    "kg",
    "mg",
    "gram",
    "kilogram",
    "lb",
    "pound",
    "oz",
    "ounce",
    "ton",
    "tonne",
    "second",
    "sec",
    "s",
    "minute",
    "min",
    "hour",
    "hr",
    "h",
    "day",
    "week",
    "month",
    "year",
    "dollar",
    "cent",
    "unit",
    "square",
    "sq",
    "cubic",
    "degree",
    "deg",
    "radian",
    "rad",
    "mph",
    "kph",
    "liter",
    "litre",
    "l",
    "ml",
    "gallon",
    "gal",
    "quart",
    "pint",
    "cup",
    "mps",
    "euro",
    "yuan",
    "元",
    "米",
    "厘米",
    "个",
    "度",
];

/// Function and constant words that are mathematics, not units or text.
pub const MATH_WORDS: &[&str] = &[
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "ln", "log", "exp", "sqrt", "pi", "infty", "inf", "oo", "or", "and", "i", "e",
];

fn is_unit(word: &str) -> bool {
    let w = word.trim_matches(|c: char| c == '.' || c == ',').to_lowercase();
    if w.is_empty() {
        return false;
    }
    let singular = |w: &str| UNITS.contains(&w);
    singular(&w)
        || w.strip_suffix("es").is_some_and(singular)
        || w.strip_suffix('s').is_some_and(singular)
}

/// Letters used as variables in a reference answer: these are never stripped as units.
pub fn protected_letters(reference: &str) -> Vec<char> {
    let mut out = Vec::new();
    let b = reference.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            // Text arguments are words, not variables.
            let name = &reference[start..i];
            if matches!(name, "text" | "mbox" | "textrm" | "textbf" | "mathrm") {
                if let Some((_, end)) = brace_group(reference, i) {
                    i = end;
                }
            }
            if i == start {
                i += 1;
            }
            continue;
        }
        if b[i].is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let word = &reference[start..i];
            // A word of several letters is a product of variables only if it is short.
            if word.len() <= 3 && !MATH_WORDS.contains(&word) {
                for c in word.chars() {
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
            }
            continue;
        }
        i += 1;
    }
    out
}

/// Replace a command `\name` (not followed by a letter) everywhere.
fn replace_cmd(s: &str, name: &str, with: &str) -> String {
    let pat = format!("\\{name}");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find(&pat) {
        let after = &rest[p + pat.len()..];
        out.push_str(&rest[..p]);
        if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(&pat);
        } else {
            out.push_str(with);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Replace `\cmd{X}` by `f(X)` for every occurrence.
fn map_cmd_arg(s: &str, name: &str, f: &dyn Fn(&str, &str) -> String) -> String {
    let pat = format!("\\{name}");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find(&pat) {
        let after_name = p + pat.len();
        if rest[after_name..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(&rest[..after_name]);
            rest = &rest[after_name..];
            continue;
        }
        let mut open = after_name;
        while rest[open..].starts_with(' ') {
            open += 1;
        }
        match brace_group(rest, open) {
            Some((inner, end)) => {
                out.push_str(&rest[..p]);
                out.push_str(&f(inner, &rest[end..]));
                rest = &rest[end..];
            }
            None => {
                out.push_str(&rest[..after_name]);
                rest = &rest[after_name..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Give `\frac`, `\sqrt`, `\binom` single-token arguments braces: `\frac12` → `\frac{1}{2}`.
pub fn brace_args(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_ascii_alphabetic() {
                j += 1;
            }
            if j == i + 1 {
                // An escaped symbol (`\{`, `\,`): copy it verbatim.
                out.push('\\');
                if j < chars.len() {
                    out.push(chars[j]);
                    i = j + 1;
                } else {
                    i = j;
                }
                continue;
            }
            let name: String = chars[i + 1..j].iter().collect();
            let nargs = match name.as_str() {
                "frac" | "binom" => 2,
                "sqrt" => 1,
                _ => 0,
            };
            out.extend(&chars[i..j]);
            i = j;
            let mut k = 0;
            while k < nargs {
                while i < chars.len() && chars[i] == ' ' {
                    i += 1;
                }
                if name == "sqrt" && i < chars.len() && chars[i] == '[' {
                    // Optional index: copy through the closing bracket.
                    while i < chars.len() && chars[i] != ']' {
                        out.push(chars[i]);
                        i += 1;
                    }
                    if i < chars.len() {
                        out.push(']');
                        i += 1;
                    }
                    continue;
                }
                if i >= chars.len() || chars[i] == '{' {
                    // Braced arguments are copied by the main loop; only count them.
                    if i < chars.len() {
                        let rest: String = chars[i..].iter().collect();
                        if let Some((inner, _)) = brace_group(&rest, 0) {
                            out.push('{');
                            out.push_str(&brace_args(inner));
                            out.push('}');
                            i += inner.chars().count() + 2;
                            k += 1;
                            continue;
                        }
                    }
                    break;
                }
                if chars[i] == '\\' {
                    let mut e = i + 1;
                    while e < chars.len() && chars[e].is_ascii_alphabetic() {
                        e += 1;
                    }
                    if e == i + 1 && e < chars.len() {
                        e += 1;
                    }
                    out.push('{');
                    out.extend(&chars[i..e]);
                    out.push('}');
                    i = e;
                } else {
                    out.push('{');
                    out.push(chars[i]);
                    out.push('}');
                    i += 1;
                }
                k += 1;
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Normalise an answer string for parsing. `protected` are the reference's variables;
/// `numeric_ref` says that the reference is a plain number, so any trailing words are units.
pub fn prepare(s: &str, protected: &[char], numeric_ref: bool) -> String {
    // Matrix row breaks `\\` become a command so that the spacing rules below (`\ `) cannot
    // eat half of them.
    let mut t = strip_dollars(&s.replace("\\$", "").replace("\\\\", " \\cr "));
    for (from, to) in [
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\cfrac", "\\frac"),
        ("\\dbinom", "\\binom"),
        ("\\tbinom", "\\binom"),
        ("{,}", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("^{\\prime}", "'"),
        ("°", ""),
        ("\\%", "%"),
        ("\\$", ""),
        ("\\{", "\\lbrace "),
        ("\\}", "\\rbrace "),
        ("$", ""),
    ] {
        if t.contains(from) {
            t = t.replace(from, to);
        }
    }
    for (name, with) in [
        ("left", ""),
        ("right", ""),
        ("bigl", ""),
        ("bigr", ""),
        ("big", ""),
        ("Big", ""),
        ("displaystyle", ""),
        ("!", ""),
        (",", ""),
        (";", ""),
        (":", ""),
        ("quad", " "),
        ("qquad", " "),
        (" ", " "),
        ("circ", ""),
        ("degree", ""),
        ("lt", "<"),
        ("gt", ">"),
        ("leqslant", "\\le"),
        ("geqslant", "\\ge"),
        ("leq", "\\le"),
        ("geq", "\\ge"),
        ("neq", "\\ne"),
        ("lbrace", "\\{"),
        ("rbrace", "\\}"),
        ("dots", ""),
        ("ldots", ""),
        ("cdots", ""),
    ] {
        if t.contains(&format!("\\{name}")) {
            t = replace_cmd(&t, name, with);
        }
    }
    t = t.replace('~', " ");
    for (from, to) in [(" percent", "%"), ("percent", "%"), (" per cent", "%")] {
        t = t.replace(from, to);
    }
    // Connectives between values ("2 and 3", "x=2 or x=3"): hedges were rejected before
    // comparison, so what is left lists the members of an answer set.
    for w in [" or ", " and "] {
        t = t.replace(w, ", ");
    }
    for w in ["mathrm", "mathbf", "textbf", "mathit", "boldsymbol", "mathsf", "mathnormal", "bf"] {
        if t.contains(w) {
            t = map_cmd_arg(&t, w, &|inner, _| inner.to_string());
        }
    }
    // `\text{...}`: units go, connectives become separators, other text stays text.
    let whole_text = |t: &str| {
        ["\\text{", "\\mbox{", "\\textrm{", "\\textnormal{"].iter().any(|p| {
            t.strip_prefix(p).is_some_and(|r| {
                brace_group(t, p.len() - 1).is_some_and(|(_, e)| e == t.len()) && !r.is_empty()
            })
        })
    };
    if !whole_text(&t) {
        for w in ["text", "mbox", "textrm", "textnormal", "operatorname"] {
            if t.contains(w) {
                t = map_cmd_arg(&t, w, &|inner, after| {
                    let words: Vec<&str> = inner.split_whitespace().collect();
                    let lw = inner.trim().to_lowercase();
                    if words.is_empty() {
                        return String::new();
                    }
                    if words.iter().all(|w| is_unit(w))
                        && !words.iter().any(|w| one_protected(w, protected))
                    {
                        let _ = after;
                        return " ".to_string();
                    }
                    match lw.as_str() {
                        "and" | "," => ",".into(),
                        "or" => ",".into(),
                        _ => format!(" {inner} "),
                    }
                });
            }
        }
        t = t.replace("^2", "^{2}").replace("^3", "^{3}");
        // A removed `\text{ cm}` leaves its power behind.
        t = t.replace(" ^{2}", " ").replace(" ^{3}", " ");
        t = strip_unit_words(&t, protected, numeric_ref);
    } else {
        let inner = t.find('{').map_or("", |p| &t[p + 1..t.len() - 1]).trim().to_string();
        // `\text{(B)}` or `\text{5 apples}` are not text answers.
        let has_word =
            inner.split_whitespace().any(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2);
        if !has_word || inner.chars().any(|c| c.is_ascii_digit()) {
            t = strip_unit_words(&inner, protected, numeric_ref);
        }
    }
    brace_args(t.trim())
}

fn one_protected(w: &str, protected: &[char]) -> bool {
    let mut cs = w.chars();
    matches!((cs.next(), cs.next()), (Some(c), None) if protected.contains(&c))
}

/// Remove unit words (and `^{2}` after them), keeping math words and protected letters.
fn strip_unit_words(t: &str, protected: &[char], numeric_ref: bool) -> String {
    let has_digit = t.chars().any(|c| c.is_ascii_digit());
    if !has_digit {
        return t.to_string();
    }
    let mut out = String::with_capacity(t.len());
    let b: Vec<char> = t.chars().collect();
    let mut i = 0;
    let mut saw_digit = false;
    while i < b.len() {
        let c = b[i];
        if c == '\\' {
            // Copy a command name whole.
            out.push(c);
            i += 1;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                out.push(b[i]);
                i += 1;
            }
            continue;
        }
        let cjk = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
        // Scientific notation `3E3`, `1e-7`: not a unit.
        let sci = (c == 'e' || c == 'E')
            && i > 0
            && b[i - 1].is_ascii_digit()
            && (b.get(i + 1).is_some_and(|d| d.is_ascii_digit())
                || (matches!(b.get(i + 1), Some('-') | Some('+'))
                    && b.get(i + 2).is_some_and(|d| d.is_ascii_digit())));
        if sci {
            out.push(c);
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || cjk(c) {
            let start = i;
            let kind = cjk(c);
            while i < b.len() && (if kind { cjk(b[i]) } else { b[i].is_ascii_alphabetic() }) {
                i += 1;
            }
            let word: String = b[start..i].iter().collect();
            let single_protected = word.chars().count() == 1 && protected.contains(&b[start]);
            let math = MATH_WORDS.contains(&word.as_str());
            let after_space_or_num = start > 0 && (b[start - 1] == ' ' || saw_digit);
            let drop = !single_protected
                && !math
                && saw_digit
                && after_space_or_num
                && (is_unit(&word) || (numeric_ref && word.chars().count() >= 2));
            if drop {
                // Also drop a power right after the unit (`cm^{2}`).
                if t_starts(&b, i, "^{") {
                    while i < b.len() && b[i] != '}' {
                        i += 1;
                    }
                    i = (i + 1).min(b.len());
                }
                out.push(' ');
            } else {
                out.push_str(&word);
            }
            continue;
        }
        if c.is_ascii_digit() {
            saw_digit = true;
        }
        out.push(c);
        i += 1;
    }
    out.trim().to_string()
}

fn t_starts(b: &[char], i: usize, pat: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    b.len() >= i + p.len() && b[i..i + p.len()] == p[..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_text() {
        assert_eq!(prepare("18 dollars", &[], true), "18");
        assert_eq!(prepare("5\\text{ cm}^2", &[], true), "5");
        assert_eq!(prepare("\\$1{,}000", &[], true), "1000");
        assert_eq!(prepare("30^\\circ", &[], true), "30");
        assert_eq!(prepare("5m", &['m'], false), "5m");
        assert_eq!(prepare("\\dfrac14", &[], true), "\\frac{1}{4}");
        assert_eq!(prepare("\\sqrt2", &[], true), "\\sqrt{2}");
        assert_eq!(prepare("\\text{Monday}", &[], false), "\\text{Monday}");
        assert_eq!(
            prepare("\\left( 3, \\frac{\\pi}{2} \\right)", &[], false),
            "( 3, \\frac{\\pi}{2} )"
        );
        assert_eq!(protected_letters("2x + \\text{cm} + \\sqrt{y}"), vec!['x', 'y']);
    }
}
