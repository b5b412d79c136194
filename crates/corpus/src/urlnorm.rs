//! URL normalization for exact-URL deduplication (issue #4 item 4).
//!
//! Common Crawl holds the same page under many spellings. [`normalize_url`] canonicalizes
//! following RFC 3986 §6 (syntax- and scheme-based normalization) plus the usual crawler
//! conventions:
//!
//! * scheme and host lowercased, IDNA hosts to punycode, percent-encoding normalized
//!   (the WHATWG URL parser of the `url` crate does these);
//! * the scheme's default port dropped (`:80` for http, `:443` for https);
//! * the fragment dropped (`#section` never changes the document);
//! * tracking parameters dropped: `utm_*`, `fbclid`, `gclid`, `dclid`, `msclkid`, `yclid`,
//!   `mc_cid`, `mc_eid`, `_ga`, `_gl`, `igshid`; the remaining query parameters are sorted
//!   (stable on equal keys) and an empty query is removed;
//! * a trailing slash of a non-root path dropped (`/a/b/` -> `/a/b`);
//! * **`www.` policy:** a leading `www.` label is removed from the host. Sites serve the same
//!   pages on both names far more often than different ones, and a false merge here only
//!   loses one copy of a page that near-dedup would likely remove anyway.
//!
//! [`url_key`] is the dedup key: the normalized URL without its scheme, because `http` and
//! `https` copies of a page are the same document. URLs that do not parse fall back to the
//! trimmed, lowercased input so that identical garbage still deduplicates.
use url::Url;

fn is_tracking_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("utm_")
        || matches!(
            k.as_str(),
            "fbclid" | "gclid" | "dclid" | "msclkid" | "yclid" | "mc_cid" | "mc_eid" | "_ga" | "_gl" | "igshid"
        )
}

/// Canonical form of `raw` (see the module docs), or `None` when it is not an absolute URL.
///
/// ```
/// use mathforge_corpus::urlnorm::normalize_url;
/// assert_eq!(
///     normalize_url("HTTPS://WWW.Example.com:443/a/b/?utm_source=x&b=2&a=1#top").as_deref(),
///     Some("https://example.com/a/b?a=1&b=2"),
/// );
/// ```
pub fn normalize_url(raw: &str) -> Option<String> {
    let mut url = Url::parse(raw.trim()).ok()?;
    if url.cannot_be_a_base() {
        return Some(url.to_string());
    }
    url.set_fragment(None);
    if let Some(host) = url.host_str() {
        if let Some(stripped) = host.strip_prefix("www.") {
            if stripped.contains('.') {
                let stripped = stripped.to_string();
                // A host that parsed once stays valid without its first label.
                let _ = url.set_host(Some(&stripped));
            }
        }
    }
    // `url` already drops default ports on parse; keep it explicit for odd inputs.
    if url.port().is_some() && url.port() == default_port(url.scheme()) {
        let _ = url.set_port(None);
    }
    if url.query().is_some() {
        let mut pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !is_tracking_param(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        if pairs.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(pairs.iter());
        }
    }
    let path = url.path().to_string();
    if path.len() > 1 && path.ends_with('/') {
        url.set_path(path.trim_end_matches('/'));
        if url.path().is_empty() {
            url.set_path("/");
        }
    }
    Some(url.to_string())
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        _ => None,
    }
}

/// The exact-URL dedup key of `raw`: [`normalize_url`] without the scheme, or the trimmed,
/// lowercased input when it does not parse.
///
/// ```
/// use mathforge_corpus::urlnorm::url_key;
/// assert_eq!(url_key("http://www.example.com/x/"), url_key("https://example.com/x#y"));
/// ```
pub fn url_key(raw: &str) -> String {
    match normalize_url(raw) {
        Some(n) => match n.split_once("://") {
            Some((_, rest)) => rest.to_string(),
            None => n,
        },
        None => raw.trim().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_rules() {
        let n = |s: &str| normalize_url(s).unwrap();
        assert_eq!(n("http://Example.COM:80/"), "http://example.com/");
        assert_eq!(n("http://example.com:8080/a/"), "http://example.com:8080/a");
        assert_eq!(n("https://example.com/?utm_medium=a&UTM_campaign=b"), "https://example.com/");
        assert_eq!(n("https://example.com/p?fbclid=1&q=a%20b"), "https://example.com/p?q=a+b");
        assert_eq!(n("https://www.example.com"), "https://example.com/");
        // `www.com` itself is a registrable name, not a prefix.
        assert_eq!(n("https://www.com/x"), "https://www.com/x");
        assert_eq!(n("https://math.stackexchange.com/q/1#answer-2"), "https://math.stackexchange.com/q/1");
        assert!(normalize_url("not a url").is_none());
        assert_eq!(url_key("  Not A URL "), "not a url");
        assert_eq!(url_key("mailto:someone@example.com"), "mailto:someone@example.com");
    }
}
