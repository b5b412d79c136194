//! Turning a document into one fastText input line.
//!
//! fastText splits on ASCII whitespace only, so a Chinese or Japanese page would be one giant
//! token per sentence. Issue 4 (item 8) asks that such scripts be segmented before n-gram
//! hashing: [`to_line`] puts spaces around every CJK character (per-character segmentation,
//! the usual fastText practice for Chinese) and flattens newlines, so the same function feeds
//! both training files and prediction. It is *our* preprocessing, applied by the callers (the
//! corpus miner); the classifier itself stays byte-compatible with fastText.

/// Whether `c` belongs to a script written without spaces (CJK ideographs, kana, Hangul
/// syllables, CJK punctuation and full-width forms).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3000..=0x303F | 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF |
        0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF | 0x20000..=0x2FA1F)
}

/// One line for fastText: whitespace runs (newlines included) become single spaces, CJK
/// characters become separate tokens, and the result has no leading/trailing space.
pub fn to_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || c == '\0' {
            pending_space = true;
            continue;
        }
        let cjk = is_cjk(c);
        if !out.is_empty() && (pending_space || cjk || out.ends_with(is_cjk)) {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_chinese_and_flattens_lines() {
        assert_eq!(to_line("求解方程 x^2=4\n的根。"), "求 解 方 程 x^2=4 的 根 。");
        assert_eq!(to_line("  a\tb\n\nc "), "a b c");
    }
}
