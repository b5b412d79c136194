//! Math recovery helpers for the HTML extractor: MathML → TeX, TeX from math images, and
//! counting the TeX fragments in extracted text.
//!
//! OpenWebMath (Paster et al. 2023, §3 "Extraction") keeps math as LaTeX whatever the page used
//! to render it. The facts used here (read from the paper, not copied from code):
//! * MathML: prefer a TeX `<annotation encoding="application/x-tex">`, then the `alttext`
//!   attribute, then a linearisation of the presentation MathML tree;
//! * math images from LaTeX renderers carry the TeX in their URL query (codecogs,
//!   WordPress `latex.php?latex=`, `mimetex.cgi?` / `mathtex.cgi?`, Google Chart `cht=tx&chl=`)
//!   and usually in their `alt` text too;
//! * Wikipedia wraps formulas as `{\displaystyle ...}`; the wrapper is removed.
use ego_tree::NodeRef;
use regex::Regex;
use scraper::Node;
use std::sync::OnceLock;

/// Encodings of `<annotation>` that hold TeX.
const TEX_ENCODINGS: [&str; 5] =
    ["application/x-tex", "tex", "text/x-tex", "application/x-latex", "latex"];

/// Remove a Wikipedia-style `{\displaystyle ...}` / `{\textstyle ...}` wrapper and trim.
pub fn clean_tex(tex: &str) -> String {
    let t = tex.trim();
    for prefix in ["{\\displaystyle", "{\\textstyle", "{\\scriptstyle"] {
        if let Some(rest) = t.strip_prefix(prefix) {
            if let Some(inner) = rest.strip_suffix('}') {
                if braces_balanced(inner) {
                    return inner.trim().to_string();
                }
            }
        }
    }
    t.to_string()
}

fn braces_balanced(s: &str) -> bool {
    let mut depth = 0i64;
    let mut prev_backslash = false;
    for c in s.chars() {
        match c {
            '{' if !prev_backslash => depth += 1,
            '}' if !prev_backslash => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
        prev_backslash = c == '\\' && !prev_backslash;
    }
    depth == 0
}

fn local_name(n: &NodeRef<'_, Node>) -> Option<String> {
    n.value().as_element().map(|e| e.name().to_ascii_lowercase())
}

fn text_of(n: NodeRef<'_, Node>) -> String {
    let mut s = String::new();
    for d in n.descendants() {
        if let Node::Text(t) = d.value() {
            s.push_str(t);
        }
    }
    s
}

/// TeX for a `<math>` element: annotation, else `alttext`, else linearised MathML.
pub fn mathml_to_tex(math: NodeRef<'_, Node>) -> String {
    for d in math.descendants() {
        if local_name(&d).as_deref() == Some("annotation") {
            if let Some(el) = d.value().as_element() {
                let enc = el.attr("encoding").unwrap_or("").trim().to_ascii_lowercase();
                if TEX_ENCODINGS.contains(&enc.as_str()) {
                    let t = clean_tex(&text_of(d));
                    if !t.is_empty() {
                        return t;
                    }
                }
            }
        }
    }
    if let Some(alt) = math.value().as_element().and_then(|e| e.attr("alttext")) {
        let t = clean_tex(alt);
        if !t.is_empty() {
            return t;
        }
    }
    let mut out = String::new();
    linearize(math, &mut out);
    collapse_spaces(&out)
}

fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn children_tex(n: NodeRef<'_, Node>) -> Vec<String> {
    n.children()
        .filter(|c| c.value().is_element())
        .map(|c| {
            let mut s = String::new();
            linearize(c, &mut s);
            s.trim().to_string()
        })
        .collect()
}

fn group(s: &str) -> String {
    if s.chars().count() == 1 {
        s.to_string()
    } else {
        format!("{{{s}}}")
    }
}

/// Presentation MathML → TeX, best effort (MathML 3 §3): the common layout elements become
/// their TeX commands, token elements their (mapped) text.
fn linearize(n: NodeRef<'_, Node>, out: &mut String) {
    let Some(name) = local_name(&n) else {
        if let Node::Text(t) = n.value() {
            out.push_str(&map_symbols(t));
        }
        return;
    };
    let kids = || children_tex(n);
    match name.as_str() {
        "annotation" | "annotation-xml" | "none" | "mprescripts" => {}
        "semantics" => {
            if let Some(first) = n.children().find(|c| c.value().is_element()) {
                linearize(first, out);
            }
        }
        "mi" | "mn" | "mtext" | "ms" => {
            let t = text_of(n);
            let t = t.trim();
            if name == "mtext" && !t.is_empty() {
                out.push_str(&format!("\\text{{{t}}}"));
            } else {
                let mapped = map_symbols(t);
                out.push_str(&mapped);
                if mapped.starts_with('\\') {
                    out.push(' ');
                }
            }
        }
        "mo" => {
            let t = map_symbols(text_of(n).trim());
            out.push_str(&t);
            if t.starts_with('\\') {
                out.push(' ');
            }
        }
        "mspace" => out.push(' '),
        "mfrac" => {
            let k = kids();
            if k.len() == 2 {
                out.push_str(&format!("\\frac{{{}}}{{{}}}", k[0], k[1]));
            } else {
                out.push_str(&k.join(" "));
            }
        }
        "msqrt" => out.push_str(&format!("\\sqrt{{{}}}", kids().join(""))),
        "mroot" => {
            let k = kids();
            if k.len() == 2 {
                out.push_str(&format!("\\sqrt[{}]{{{}}}", k[1], k[0]));
            }
        }
        "msup" | "mover" => {
            let k = kids();
            if k.len() == 2 {
                out.push_str(&format!("{}^{}", group(&k[0]), group(&k[1])));
            }
        }
        "msub" | "munder" => {
            let k = kids();
            if k.len() == 2 {
                out.push_str(&format!("{}_{}", group(&k[0]), group(&k[1])));
            }
        }
        "msubsup" | "munderover" => {
            let k = kids();
            if k.len() == 3 {
                out.push_str(&format!("{}_{}^{}", group(&k[0]), group(&k[1]), group(&k[2])));
            }
        }
        "mfenced" => {
            let el = n.value().as_element();
            let open = el.and_then(|e| e.attr("open")).unwrap_or("(");
            let close = el.and_then(|e| e.attr("close")).unwrap_or(")");
            let sep = el.and_then(|e| e.attr("separators")).unwrap_or(",");
            let sep = sep.trim().chars().next().map(|c| c.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "\\left{}{}\\right{}",
                fence(open),
                kids().join(&sep),
                fence(close)
            ));
        }
        "mtable" => {
            let rows: Vec<String> = n
                .children()
                .filter(|r| matches!(local_name(r).as_deref(), Some("mtr") | Some("mlabeledtr")))
                .map(|r| children_tex(r).join(" & "))
                .collect();
            out.push_str(&format!("\\begin{{matrix}}{}\\end{{matrix}}", rows.join(" \\\\ ")));
        }
        _ => {
            for c in n.children() {
                linearize(c, out);
            }
        }
    }
}

fn fence(f: &str) -> &str {
    match f {
        "{" => "\\{",
        "}" => "\\}",
        "" => ".",
        other => other,
    }
}

/// Map common Unicode math symbols to TeX commands (letters and digits pass through).
pub fn map_symbols(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let m = match c {
            'α' => "\\alpha",
            'β' => "\\beta",
            'γ' => "\\gamma",
            'δ' => "\\delta",
            'ε' | 'ϵ' => "\\epsilon",
            'ζ' => "\\zeta",
            'η' => "\\eta",
            'θ' => "\\theta",
            'ι' => "\\iota",
            'κ' => "\\kappa",
            'λ' => "\\lambda",
            'μ' => "\\mu",
            'ν' => "\\nu",
            'ξ' => "\\xi",
            'π' => "\\pi",
            'ρ' => "\\rho",
            'σ' => "\\sigma",
            'τ' => "\\tau",
            'υ' => "\\upsilon",
            'φ' | 'ϕ' => "\\phi",
            'χ' => "\\chi",
            'ψ' => "\\psi",
            'ω' => "\\omega",
            'Γ' => "\\Gamma",
            'Δ' => "\\Delta",
            'Θ' => "\\Theta",
            'Λ' => "\\Lambda",
            'Ξ' => "\\Xi",
            'Π' => "\\Pi",
            'Σ' => "\\Sigma",
            'Φ' => "\\Phi",
            'Ψ' => "\\Psi",
            'Ω' => "\\Omega",
            '∑' => "\\sum",
            '∏' => "\\prod",
            '∫' => "\\int",
            '∮' => "\\oint",
            '∞' => "\\infty",
            '±' => "\\pm",
            '∓' => "\\mp",
            '×' => "\\times",
            '÷' => "\\div",
            '⋅' | '·' => "\\cdot",
            '≤' => "\\leq",
            '≥' => "\\geq",
            '≠' => "\\neq",
            '≈' => "\\approx",
            '≡' => "\\equiv",
            '∼' => "\\sim",
            '→' => "\\to",
            '←' => "\\leftarrow",
            '⇒' => "\\Rightarrow",
            '⇔' => "\\Leftrightarrow",
            '↦' => "\\mapsto",
            '∈' => "\\in",
            '∉' => "\\notin",
            '⊂' => "\\subset",
            '⊆' => "\\subseteq",
            '∪' => "\\cup",
            '∩' => "\\cap",
            '∅' => "\\emptyset",
            '∀' => "\\forall",
            '∃' => "\\exists",
            '∂' => "\\partial",
            '∇' => "\\nabla",
            '√' => "\\sqrt",
            '−' => "-",
            '\u{2061}' | '\u{2062}' | '\u{2063}' => "",
            'ℝ' => "\\mathbb{R}",
            'ℕ' => "\\mathbb{N}",
            'ℤ' => "\\mathbb{Z}",
            'ℚ' => "\\mathbb{Q}",
            'ℂ' => "\\mathbb{C}",
            '…' | '⋯' => "\\cdots",
            '⟨' => "\\langle",
            '⟩' => "\\rangle",
            '∘' => "\\circ",
            '¬' => "\\neg",
            '∧' => "\\wedge",
            '∨' => "\\vee",
            '′' => "'",
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push_str(m);
    }
    out
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then_some(v)
    })
}

fn url_decode(s: &str, plus_is_space: bool) -> String {
    let s = if plus_is_space { s.replace('+', " ") } else { s.to_string() };
    percent_encoding::percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

/// TeX of a math image, from its `src` (renderer URL) or `alt`, or `None` for ordinary images.
pub fn tex_from_img(src: &str, alt: Option<&str>, class: Option<&str>) -> Option<String> {
    let lower = src.to_ascii_lowercase();
    let query = src.split_once('?').map(|(_, q)| q);
    let from_url: Option<String> = if lower.contains("codecogs.com")
        || lower.contains("mimetex.cgi")
        || lower.contains("mathtex.cgi")
        || lower.contains("/cgi-bin/mimetex")
    {
        query.map(|q| url_decode(q, false))
    } else if lower.contains("latex.php") || lower.contains("/latex?") {
        query
            .and_then(|q| query_param(q, "latex").or_else(|| query_param(q, "tex")))
            .map(|v| url_decode(v, true))
    } else if lower.contains("chart.apis.google.com/chart")
        || lower.contains("chart.googleapis.com/chart")
    {
        query
            .filter(|q| query_param(q, "cht") == Some("tx"))
            .and_then(|q| query_param(q, "chl"))
            .map(|v| url_decode(v, true))
    } else {
        None
    };
    let alt = alt.map(str::trim).filter(|a| !a.is_empty());
    let class_says_math = class.is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        c.contains("latex") || c.contains("tex") || c.contains("math") || c.contains("equation")
    });
    let renderer = from_url.is_some() || lower.contains("/math/render/") || lower.contains("latex");
    let tex = if renderer || class_says_math {
        // The alt text is the author's TeX without URL damage (line breaks, encodings) when set.
        match (alt, from_url) {
            (Some(a), _) if looks_like_tex(a) => Some(a.to_string()),
            (_, Some(u)) => Some(u),
            (Some(a), None) => Some(a.to_string()),
            (None, None) => None,
        }
    } else {
        None
    }?;
    let tex = strip_renderer_options(&clean_tex(&tex));
    (!tex.is_empty()).then_some(tex)
}

/// Codecogs-style URLs start with rendering options (`\dpi{120}`, `\bg_white`, `\inline`).
fn strip_renderer_options(tex: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"^(\s*(\\dpi\{\d+\}|\\bg_\w+|\\bg\{\w+\}|\\inline|\\fn_\w+|\\large|\\small|\\normalsize|\\huge|\\Large|\\LARGE))+\s*").expect("valid regex")
    });
    re.replace(tex, "").trim().to_string()
}

/// Whether a string looks like TeX rather than prose (a command, or sub/superscript syntax).
pub fn looks_like_tex(s: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"\\[A-Za-z]+|[\^_]\{?[A-Za-z0-9]|[=<>+\-*/]").expect("valid regex")
    });
    re.is_match(s)
}

fn fragment_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?s)\$\$.+?\$\$|\$[^$\n]+?\$|\\\(.+?\\\)|\\\[.+?\\\]|\\begin\{[a-zA-Z*]+\}")
            .expect("valid regex")
    })
}

/// Number of TeX fragments in `text`: `$$..$$`, `$..$`, `\(..\)`, `\[..\]` and `\begin{env}`.
/// Used by the benchmark and the tests to measure how much math survives extraction.
pub fn count_tex_fragments(text: &str) -> usize {
    fragment_regex().find_iter(text).count()
}

/// Whether a line of extracted text contains math (delimited TeX or TeX commands).
pub fn line_has_math(line: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"\$[^$]+\$|\\\(|\\\[|\\begin\{|\\(frac|sqrt|sum|int|alpha|beta|theta|pi|infty|mathbb|cdot|leq|geq)\b|`[^`]+`").expect("valid regex")
    });
    re.is_match(line)
}

/// Rewrite forum BBCode math (`[tex]..[/tex]`, `[itex]..[/itex]`, `[math]..[/math]`, `[latex]`)
/// into `$$..$$` / `$..$`, as phpBB/vBulletin math forums (e.g. Physics Forums) write it.
pub fn bbcode_math_to_tex(s: &str) -> std::borrow::Cow<'_, str> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"(?is)\[(tex|itex|math|latex)\](.*?)\[/(tex|itex|math|latex)\]")
            .expect("valid regex")
    });
    if !s.contains('[') {
        return std::borrow::Cow::Borrowed(s);
    }
    re.replace_all(s, |c: &regex::Captures<'_>| {
        let tag = c[1].to_ascii_lowercase();
        let body = c[2].trim();
        if tag == "tex" {
            format!("$${body}$$")
        } else {
            format!("${body}$")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrappers_and_images() {
        assert_eq!(clean_tex("{\\displaystyle \\sigma ^{2}}"), "\\sigma ^{2}");
        assert_eq!(clean_tex("{a}{b}"), "{a}{b}");
        assert_eq!(
            tex_from_img("/cgi-bin/mimetex.cgi?f(z)=\\exp(z)-1", None, None).as_deref(),
            Some("f(z)=\\exp(z)-1")
        );
        assert_eq!(
            tex_from_img("https://latex.codecogs.com/gif.latex?\\dpi{120}%20x%5E2", None, None)
                .as_deref(),
            Some("x^2")
        );
        assert_eq!(
            tex_from_img("https://s0.wp.com/latex.php?latex=a%2Bb+%3D+c&bg=ffffff", None, None)
                .as_deref(),
            Some("a+b = c")
        );
        assert_eq!(
            tex_from_img("http://latex.codecogs.com/png.latex?<br />x", Some("\\lim x^n"), None)
                .as_deref(),
            Some("\\lim x^n")
        );
        assert_eq!(tex_from_img("/images/logo.png", Some("Logo"), None), None);
    }

    #[test]
    fn fragments_and_bbcode() {
        assert_eq!(count_tex_fragments("a $x$ b $$y$$ \\(z\\) \\[w\\] \\begin{align} c"), 5);
        assert_eq!(count_tex_fragments("costs $5 and $6"), 1);
        assert_eq!(
            bbcode_math_to_tex("so [itex]x^2[/itex] and [tex]\\int f[/tex]"),
            "so $x^2$ and $$\\int f$$"
        );
        assert!(line_has_math("we have $x$"));
        assert!(!line_has_math("Home | About"));
    }

    #[test]
    fn mathml_linearization() {
        let html = scraper::Html::parse_fragment(
            "<math><mrow><mi>x</mi><mo>=</mo><mfrac><mrow><mo>−</mo><mi>b</mi><mo>±</mo><msqrt><msup><mi>b</mi><mn>2</mn></msup><mo>−</mo><mn>4</mn><mi>a</mi><mi>c</mi></msqrt></mrow><mrow><mn>2</mn><mi>a</mi></mrow></mfrac></mrow></math>",
        );
        let math = html
            .tree
            .root()
            .descendants()
            .find(|n| local_name(n).as_deref() == Some("math"))
            .unwrap();
        assert_eq!(mathml_to_tex(math), "x=\\frac{-b\\pm \\sqrt{b^2-4ac}}{2a}");
    }
}
