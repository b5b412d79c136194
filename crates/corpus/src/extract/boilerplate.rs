//! Boilerplate removal: which elements to drop whole, and which extracted lines to drop.
//!
//! OpenWebMath (Paster et al. 2023, §3) removes boilerplate with element-level rules before
//! text extraction and line-level heuristics after it, and never removes content that holds
//! math. We follow that split:
//!
//! * **Elements** ([`is_boilerplate_element`]): structural chrome (`nav`, `footer`, `aside`,
//!   buttons, form controls, dialogs) and elements whose `class`/`id`/`role` names a known
//!   boilerplate region (cookie/consent banners, menus, breadcrumbs, share bars, sidebars, ads).
//!   The caller keeps such an element anyway when it contains math.
//! * **Lines** ([`filter_lines`]): short link-dense lines (menus, tag clouds, "related" lists)
//!   and short lines made of boilerplate phrases ("Accept all cookies", "Log in", "Share").
//!   A line with math or code is never removed.
use super::math::line_has_math;
use regex::Regex;
use std::sync::OnceLock;

/// Tags whose whole subtree is chrome, not content.
pub const CHROME_TAGS: &[&str] = &[
    "nav", "footer", "aside", "button", "select", "option", "textarea", "input", "dialog", "menu",
];

fn class_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // Matched against `class`, `id` and `role` tokens (lower-cased), whole-word-ish.
        Regex::new(
            r"(^|[\s_\-])(cookies?|consent|gdpr|cookie-?banner|navbar|nav|navigation|menu|menubar|breadcrumbs?|sidebar|side-bar|share|sharing|social|socials|advert|advertisement|ads|ad-slot|sponsored?|newsletter|subscribe|popup|modal|signup|sign-up|login|skip-link|site-footer|site-header|footer|masthead|banner|related|recommended|promo|toolbar|pagination|pager)($|[\s_\-])",
        )
        .expect("valid regex")
    })
}

/// Whether an element is boilerplate by its tag or its `class`/`id`/`role` names.
pub fn is_boilerplate_element(
    tag: &str,
    class: Option<&str>,
    id: Option<&str>,
    role: Option<&str>,
) -> bool {
    if CHROME_TAGS.contains(&tag) {
        return true;
    }
    if matches!(
        role,
        Some("navigation")
            | Some("banner")
            | Some("contentinfo")
            | Some("complementary")
            | Some("search")
    ) {
        return true;
    }
    // Containers that commonly carry these names but hold the whole page.
    if matches!(tag, "body" | "html" | "main" | "article") {
        return false;
    }
    let re = class_regex();
    class.is_some_and(|c| re.is_match(&c.to_ascii_lowercase()))
        || id.is_some_and(|i| re.is_match(&i.to_ascii_lowercase()))
}

fn phrase_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b(cookies?|accept all|privacy policy|terms of (service|use)|all rights reserved|copyright|sign up|sign in|log ?in|log ?out|register|subscribe|newsletter|share (this|on)|follow us|skip to (main )?content|enable javascript|javascript is disabled|loading\.\.\.|read more|click here|back to top|powered by|advertisement|cookie settings)\b|©|登录|注册|版权所有|首页",
        )
        .expect("valid regex")
    })
}

/// One extracted line with what the extractor knew about it.
#[derive(Debug, Clone, Default)]
pub struct Line {
    /// The text (no trailing newline).
    pub text: String,
    /// Characters that came from inside `<a>` elements.
    pub link_chars: usize,
    /// Contains math recovered from markup (script/KaTeX/MathML/img).
    pub math: bool,
    /// Inside `<pre>` / `<code>`.
    pub code: bool,
    /// A paragraph break (empty line) rather than text.
    pub blank: bool,
}

/// Why a line was dropped (for counting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineDrop {
    /// Mostly link text and short.
    LinkDense,
    /// A short boilerplate phrase.
    Phrase,
    /// Only punctuation / separators.
    Punctuation,
}

/// Keep the content lines. Returns the kept lines and the number dropped.
pub fn filter_lines(lines: Vec<Line>) -> (Vec<Line>, usize) {
    let mut dropped = 0;
    let kept = lines
        .into_iter()
        .filter(|l| {
            if l.blank || l.math || l.code || line_has_math(&l.text) {
                return true;
            }
            match classify(l) {
                Some(_) => {
                    dropped += 1;
                    false
                }
                None => true,
            }
        })
        .collect();
    (kept, dropped)
}

/// The reason a (math- and code-free) line is boilerplate, if it is.
pub fn classify(l: &Line) -> Option<LineDrop> {
    let chars = l.text.chars().filter(|c| !c.is_whitespace()).count();
    if chars == 0 || l.text.chars().all(|c| !c.is_alphanumeric()) {
        return Some(LineDrop::Punctuation);
    }
    // Words: whitespace-separated, but count CJK characters individually (no spaces there).
    let words =
        l.text.split_whitespace().count().max(l.text.chars().filter(|c| is_cjk(*c)).count() / 2);
    if words <= 15 && l.link_chars * 2 >= chars {
        return Some(LineDrop::LinkDense);
    }
    if words <= 8 && phrase_regex().is_match(&l.text) {
        return Some(LineDrop::Phrase);
    }
    None
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, link: usize) -> Line {
        Line { text: text.into(), link_chars: link, ..Default::default() }
    }

    #[test]
    fn elements() {
        assert!(is_boilerplate_element("nav", None, None, None));
        assert!(is_boilerplate_element("div", Some("cookie-banner"), None, None));
        assert!(is_boilerplate_element("div", Some("js-consent fixed"), None, None));
        assert!(!is_boilerplate_element("div", Some("post-text"), Some("answer-123"), None));
        assert!(!is_boilerplate_element("div", Some("navigational-aid-free content"), None, None));
    }

    #[test]
    fn lines() {
        assert_eq!(classify(&line("Home About Contact", 16)), Some(LineDrop::LinkDense));
        assert_eq!(classify(&line("Accept all cookies", 0)), Some(LineDrop::Phrase));
        assert_eq!(classify(&line("| · |", 0)), Some(LineDrop::Punctuation));
        assert_eq!(classify(&line("Let x be a real number such that the sum converges.", 0)), None);
        let (kept, dropped) = filter_lines(vec![line("Log in", 6), line("See $x^2$ here", 14)]);
        assert_eq!((kept.len(), dropped), (1, 1));
    }
}
