//! Exact-duplicate keys: the normalized URL ([`crate::urlnorm::url_key`]) and the normalized
//! text ([`crate::text::normalize`]), each reduced to a 64-bit xxh3 hash.
//!
//! Hashing the *normalized* text makes copies that differ only in case, whitespace, punctuation
//! or diacritics exact duplicates (DeepSeekMath §2.1 deduplicates on normalized text; CCNet and
//! datatrove's exact dedup normalize the same way). With 64-bit keys two distinct texts collide
//! with probability about n^2 / 2^65 over n documents (under 3% at a billion pages).

/// Key of a document's normalized text (`normalized` as produced by [`crate::text::normalize`]).
pub fn text_key(normalized: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(normalized.as_bytes())
}

/// Key of a URL (scheme-less normalized form, see [`crate::urlnorm::url_key`]).
pub fn url_key(url: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(crate::urlnorm::url_key(url).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::normalize;

    #[test]
    fn normalized_copies_share_a_key() {
        assert_eq!(text_key(&normalize("Hello,   World!")), text_key(&normalize("hello world")));
        assert_ne!(text_key(&normalize("hello world")), text_key(&normalize("hello there world")));
        assert_eq!(url_key("https://www.a.org/x/?utm_source=t"), url_key("http://a.org/x"));
    }
}
