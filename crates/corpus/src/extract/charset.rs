//! Bytes of a web page → UTF-8 text, following the order the HTML standard uses to pick an
//! encoding (WHATWG HTML §13.2.3.2 "determining the character encoding", simplified): a byte
//! order mark, then the HTTP `Content-Type` charset, then a `<meta charset>` /
//! `<meta http-equiv="Content-Type">` declaration in the first 4 KiB, then UTF-8 if the bytes
//! are valid UTF-8, else Windows-1252 for pages that are mostly ASCII and lossy UTF-8 otherwise.
//!
//! Labels are resolved with `encoding_rs` (the WHATWG Encoding Standard), so `gb2312` decodes as
//! GBK, `shift_jis`, `euc-kr`, `windows-1251` etc. work. A page whose declared charset produces
//! decoding errors while the bytes are valid UTF-8 is decoded as UTF-8 (a frequent mislabel in
//! Common Crawl). Any replacement character inserted makes `lossy` true, which the extraction
//! stage counts.
use encoding_rs::Encoding;
use regex::bytes::Regex;
use std::sync::OnceLock;

/// Result of decoding a page.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The page as UTF-8.
    pub text: String,
    /// The encoding used (WHATWG name, e.g. `UTF-8`, `GBK`).
    pub charset: &'static str,
    /// Whether undecodable bytes were replaced with U+FFFD.
    pub lossy: bool,
}

/// The `charset=` parameter of a `Content-Type` header value.
pub fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(|c| c == '"' || c == '\''))
    })
}

fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r#"(?i)<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)"#)
            .expect("valid regex")
    });
    let caps = re.captures(head)?;
    Encoding::for_label(caps.get(1)?.as_bytes())
}

/// Decode `bytes` (an HTML page) given the HTTP `Content-Type` header, if any.
pub fn decode_html(bytes: &[u8], content_type: Option<&str>) -> Decoded {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        return decode_with(enc, &bytes[bom_len..]);
    }
    let declared = content_type
        .and_then(charset_param)
        .and_then(|l| Encoding::for_label(l.as_bytes()))
        .or_else(|| meta_charset(&bytes[..bytes.len().min(4096)]));
    if let Some(enc) = declared {
        // A page cannot really be UTF-16 once it has no BOM and came through an ASCII prescan.
        let enc = if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
            encoding_rs::UTF_8
        } else {
            enc
        };
        let d = decode_with(enc, bytes);
        if d.lossy && enc != encoding_rs::UTF_8 {
            if let Ok(s) = std::str::from_utf8(bytes) {
                return Decoded { text: s.to_string(), charset: "UTF-8", lossy: false };
            }
        }
        return d;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Decoded { text: s.to_string(), charset: "UTF-8", lossy: false },
        Err(_) => {
            let non_ascii = bytes.iter().filter(|b| **b >= 0x80).count();
            if non_ascii * 20 < bytes.len() {
                // Mostly ASCII with a few high bytes: the classic undeclared Latin-1 page.
                decode_with(encoding_rs::WINDOWS_1252, bytes)
            } else {
                let text = String::from_utf8_lossy(bytes).into_owned();
                Decoded { text, charset: "UTF-8", lossy: true }
            }
        }
    }
}

fn decode_with(enc: &'static Encoding, bytes: &[u8]) -> Decoded {
    let (text, had_errors) = enc.decode_without_bom_handling(bytes);
    Decoded { text: text.into_owned(), charset: enc.name(), lossy: had_errors }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_meta_and_fallbacks() {
        let (gbk, _, _) = encoding_rs::GBK.encode("数学 题目");
        let d = decode_html(&gbk, Some("text/html; charset=gb2312"));
        assert_eq!(d.text, "数学 题目");
        assert_eq!(d.charset, "GBK");
        let mut page = b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=GBK\"></head><body>".to_vec();
        page.extend_from_slice(&gbk);
        assert!(decode_html(&page, Some("text/html")).text.ends_with("数学 题目"));
        // Declared GBK but really UTF-8 (decoding errors under GBK): UTF-8 wins.
        let d = decode_html("x² ≤ ∑ 数学".as_bytes(), Some("text/html; charset=gbk"));
        assert_eq!(d.text, "x² ≤ ∑ 数学");
        let d = decode_html(b"ok \xff bad", Some("text/html; charset=utf-8"));
        assert!(d.lossy);
        assert!(d.text.contains('\u{FFFD}'));
        let d = decode_html(b"caf\xe9 au lait and more ascii text here", None);
        assert_eq!(d.text, "café au lait and more ascii text here");
        assert!(!d.lossy);
        let d = decode_html(b"\xff\xfe\xfd\xfc\xfb", None);
        assert!(d.lossy);
    }
}
