//! Text normalization and word tokenization shared by deduplication, decontamination and the
//! fastText features.
//!
//! DeepSeekMath (§2.1) deduplicates and decontaminates on *normalized words*; datatrove's
//! `simplify_text` (lowercase, collapse whitespace, drop punctuation, strip diacritics) is the
//! reference for what "normalized" means. [`normalize`] turns a text into a string of tokens
//! joined by single ASCII spaces:
//!
//! 1. Unicode NFKC (full-width digits and letters, ligatures and compatibility forms fold to
//!    their plain forms; skipped for ASCII text, which is already NFKC).
//! 2. Lowercase; Latin/Greek/Cyrillic letters lose their diacritics (`é` -> `e`, as datatrove's
//!    NFD + drop-`Mn`); combining marks of other scripts (Devanagari vowel signs, Thai tone
//!    marks) stay attached to their letter, so those words are not torn apart.
//! 3. Apostrophes inside words are deleted (`don't` -> `dont`), as datatrove does.
//! 4. **Deviation from datatrove:** every other punctuation or symbol character *separates* tokens
//!    instead of being deleted. Datatrove's deletion would glue math together (`x+y=3` -> a single
//!    token `xy3` in some cases, `\frac{1}{2}` -> `frac12`); separating keeps the words of a
//!    formula comparable while dropping its punctuation.
//! 5. Scripts written without spaces (Han ideographs, Hiragana, Katakana, Thai, Lao, Khmer,
//!    Myanmar) are segmented **one character per token** (issue #4 item 8). Per-character
//!    segmentation is what n-gram dedup tools for Chinese commonly use; a dictionary segmenter
//!    (jieba-style) would add a large dictionary and make the tokens depend on its version,
//!    while per-character n-grams are deterministic and give Chinese pages a comparable number
//!    of tokens per sentence to English ones. Hangul is written with spaces and tokenized by words.
//!
//! [`ngram_hashes`] hashes word n-grams (the bytes of the n tokens joined by single spaces) with
//! 64-bit xxh3: 5-grams feed MinHash (datatrove's default) and 10-grams decontamination.
//! [`segment_spaceless`] only inserts spaces around spaceless-script characters, for tools that
//! split on whitespace themselves (fastText's word and word-n-gram features).
use std::borrow::Cow;
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// Whether `c` belongs to a script written without spaces between words, which we segment one
/// character per token.
pub fn is_spaceless(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF      // Thai, Lao
        | 0x1000..=0x109F    // Myanmar
        | 0x1780..=0x17FF    // Khmer
        | 0x2E80..=0x2FDF    // CJK radicals, Kangxi radicals
        | 0x3005..=0x3007    // 々 〆 〇
        | 0x3040..=0x30FF    // Hiragana, Katakana
        | 0x31F0..=0x31FF    // Katakana phonetic extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF66..=0xFF9F    // half-width Katakana (NFKC maps most of these anyway)
        | 0x20000..=0x3134F  // CJK extensions B..H and compatibility supplement
    )
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}')
}

/// Characters whose diacritics we strip (Latin, Greek, Cyrillic and their extensions).
fn strips_diacritics(c: char) -> bool {
    matches!(c as u32, 0x00C0..=0x052F | 0x1E00..=0x1FFF)
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    /// At the start, or after a separator.
    Gap,
    /// Inside a word of a spaced script.
    Word,
    /// Right after a spaceless-script character (its own token; marks may still attach).
    Spaceless,
}

/// Normalize `text` for dedup/decontamination (see the module docs): tokens joined by single
/// ASCII spaces, no leading or trailing space.
///
/// ```
/// use mathforge_corpus::text::normalize;
/// assert_eq!(normalize("  Héllo,  WORLD!\n x+y=3 "), "hello world x y 3");
/// assert_eq!(normalize("妈咪买了3盒茶叶"), "妈 咪 买 了 3 盒 茶 叶");
/// assert_eq!(normalize("Ｆｕｌｌ－ｗｉｄｔｈ ２０２４"), "full width 2024");
/// ```
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

/// [`normalize`] into a reusable buffer (cleared first).
pub fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    if text.is_ascii() {
        normalize_ascii(text.as_bytes(), out);
        return;
    }
    match is_nfkc_quick(text.chars()) {
        IsNormalized::Yes => normalize_chars(text.chars(), out),
        _ => normalize_chars(text.nfkc(), out),
    }
}

/// The common case (English pages): byte loop, no Unicode tables.
fn normalize_ascii(bytes: &[u8], out: &mut String) {
    // Work on a byte vector we know stays ASCII, then move it into `out` without re-validation.
    let mut buf = std::mem::take(out).into_bytes();
    let mut in_word = false;
    for &b in bytes {
        if b.is_ascii_alphanumeric() {
            if !in_word && !buf.is_empty() {
                buf.push(b' ');
            }
            buf.push(b.to_ascii_lowercase());
            in_word = true;
        } else if b == b'\'' && in_word {
            // apostrophe inside a word: deleted, the word continues
        } else {
            in_word = false;
        }
    }
    // Only ASCII bytes were pushed.
    *out = String::from_utf8(buf).unwrap_or_default();
}

fn normalize_chars(chars: impl Iterator<Item = char>, out: &mut String) {
    let mut state = State::Gap;
    for c in chars {
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                if state != State::Word && !out.is_empty() {
                    out.push(' ');
                }
                out.push(c.to_ascii_lowercase());
                state = State::Word;
            } else if !(c == '\'' && state == State::Word) {
                state = State::Gap;
            }
            continue;
        }
        if is_spaceless(c) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push(c);
            state = State::Spaceless;
        } else if c.is_alphanumeric() {
            if state != State::Word && !out.is_empty() {
                out.push(' ');
            }
            if strips_diacritics(c) {
                unicode_normalization::char::decompose_canonical(c, |d| {
                    if !unicode_normalization::char::is_combining_mark(d) {
                        out.extend(d.to_lowercase());
                    }
                });
            } else {
                out.extend(c.to_lowercase());
            }
            state = State::Word;
        } else if unicode_normalization::char::is_combining_mark(c) {
            // Marks belong to the preceding letter; a stray one at a gap is dropped.
            if state != State::Gap {
                out.push(c);
            }
        } else if is_apostrophe(c) && state == State::Word {
            // deleted inside a word
        } else {
            state = State::Gap;
        }
    }
}

/// The tokens of a normalized string.
pub fn words(normalized: &str) -> impl Iterator<Item = &str> {
    normalized.split(' ').filter(|w| !w.is_empty())
}

/// Byte offsets where each token of a normalized string starts, plus `len + 1` at the end, so
/// that token `i` spans `starts[i]..starts[i + 1] - 1` and the n-gram `i..i+n` spans
/// `starts[i]..starts[i + n] - 1`.
pub fn token_starts(normalized: &str, starts: &mut Vec<usize>) {
    starts.clear();
    if normalized.is_empty() {
        return;
    }
    starts.push(0);
    starts.extend(memchr::memchr_iter(b' ', normalized.as_bytes()).map(|p| p + 1));
    starts.push(normalized.len() + 1);
}

/// Number of tokens of a normalized string.
pub fn count_words(normalized: &str) -> usize {
    if normalized.is_empty() {
        0
    } else {
        memchr::memchr_iter(b' ', normalized.as_bytes()).count() + 1
    }
}

/// Hash every word `n`-gram of a normalized string (xxh3-64 of the tokens joined by single
/// spaces) into `out` (cleared first). Fewer than `n` tokens give no n-grams, as nltk's `ngrams`
/// in datatrove. `starts` is scratch space.
pub fn ngram_hashes(normalized: &str, n: usize, starts: &mut Vec<usize>, out: &mut Vec<u64>) {
    out.clear();
    token_starts(normalized, starts);
    let tokens = starts.len().saturating_sub(1);
    if n == 0 || tokens < n {
        return;
    }
    let bytes = normalized.as_bytes();
    out.extend(
        (0..=tokens - n).map(|i| xxhash_rust::xxh3::xxh3_64(&bytes[starts[i]..starts[i + n] - 1])),
    );
}

/// The text of n-gram `i` (tokens `i..i+n`) of a normalized string, for reports.
pub fn ngram_text<'a>(normalized: &'a str, starts: &[usize], i: usize, n: usize) -> &'a str {
    &normalized[starts[i]..starts[i + n] - 1]
}

/// Insert spaces around characters of spaceless scripts and leave everything else alone, so a
/// whitespace tokenizer (fastText) sees one token per Chinese/Japanese character.
///
/// ```
/// use mathforge_corpus::text::segment_spaceless;
/// assert_eq!(segment_spaceless("求x的值"), "求 x 的 值");
/// assert_eq!(segment_spaceless("plain text"), "plain text");
/// ```
pub fn segment_spaceless(text: &str) -> Cow<'_, str> {
    if text.is_ascii() || !text.chars().any(is_spaceless) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    let mut prev_space = true;
    let mut prev_spaceless = false;
    for c in text.chars() {
        let sl = is_spaceless(c);
        let ws = c.is_whitespace();
        if !ws && !prev_space && (sl || prev_spaceless) {
            out.push(' ');
        }
        out.push(c);
        prev_space = ws;
        prev_spaceless = sl;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_unicode_paths_agree_on_ascii() {
        let s = "It's 3.14, isn't it? \\frac{1}{2} -- x_i^2 ";
        let mut a = String::new();
        normalize_ascii(s.as_bytes(), &mut a);
        let mut b = String::new();
        normalize_chars(s.chars(), &mut b);
        assert_eq!(a, b);
        assert_eq!(a, "its 3 14 isnt it frac 1 2 x i 2");
    }

    #[test]
    fn diacritics_cyrillic_greek_and_marks() {
        assert_eq!(normalize("Ça ÉTÉ naïve Ångström"), "ca ete naive angstrom");
        assert_eq!(normalize("Привет, мир"), "привет мир");
        assert_eq!(normalize("ΑΒΓ άλφα"), "αβγ αλφα");
        // Devanagari vowel signs stay inside the word.
        assert_eq!(normalize("हिन्दी भाषा"), "हिन्दी भाषा");
    }

    #[test]
    fn japanese_and_mixed_scripts() {
        assert_eq!(normalize("東京タワーは333m"), "東 京 タ ワ ー は 333m");
        assert_eq!(normalize("한국어 문장"), "한국어 문장");
        assert_eq!(normalize("“Quoted” — dash"), "quoted dash");
    }

    #[test]
    fn ngrams_cover_windows() {
        let n = normalize("a b c d e f");
        let mut starts = Vec::new();
        let mut h = Vec::new();
        ngram_hashes(&n, 5, &mut starts, &mut h);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0], xxhash_rust::xxh3::xxh3_64(b"a b c d e"));
        assert_eq!(ngram_text(&n, &starts, 1, 5), "b c d e f");
        ngram_hashes("a b c", 5, &mut starts, &mut h);
        assert!(h.is_empty());
        ngram_hashes("", 1, &mut starts, &mut h);
        assert!(h.is_empty());
        assert_eq!(count_words(&n), 6);
        assert_eq!(words(&n).count(), 6);
    }
}
