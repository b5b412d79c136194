//! WARC/WET reading and the extraction stage on WARC input: a hand-built Common Crawl-style
//! `.warc.gz` (one gzip member per record) with every kind of bad record, the same as `.warc.zst`,
//! and the real Common Crawl excerpts in `MATHFORGE_SHARED_DATA`.
use mathforge_corpus::extract::stage::{run, shard_output, ExtractJob};
use mathforge_corpus::extract::ExtractConfig;
use mathforge_corpus::formats::read_documents;
use mathforge_corpus::warc::{SkipReason, WarcOptions, WarcReader};
use mathforge_corpus::wet::read_wet;
use mathforge_corpus::Document;
use mathforge_io::shard::Shard;
use std::io::Write;
use std::path::Path;

fn record(kind: &str, uri: &str, id: &str, content_type: &str, block: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Date: 2024-05-18T01:58:10Z\r\nWARC-Record-ID: <urn:uuid:{id}>\r\nWARC-Target-URI: {uri}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        block.len()
    )
    .into_bytes();
    r.extend_from_slice(block);
    r.extend_from_slice(b"\r\n\r\n");
    r
}

fn http(status: &str, ct: &str, body: &[u8]) -> Vec<u8> {
    let mut b =
        format!("HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nServer: test\r\n\r\n").into_bytes();
    b.extend_from_slice(body);
    b
}

/// The records of the test file, in order, with what the stage must do with each.
fn records() -> Vec<Vec<u8>> {
    let (gbk, _, _) = encoding_rs::GBK.encode(
        "<html><head><title>数学</title></head><body><p>解方程 <script type=\"math/tex\">x^2=4</script>，得 $x=\\pm 2$。</p></body></html>",
    );
    let mut big = b"<html><body><p>".to_vec();
    big.extend(std::iter::repeat_n(b'a', 5000));
    vec![
        record("warcinfo", "", "0", "application/warc-fields", b"software: test\r\n"),
        record("request", "https://a.test/", "1", "application/http; msgtype=request", b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"),
        record("response", "https://a.test/", "2", "application/http; msgtype=response", &http("200 OK", "text/html; charset=UTF-8", b"<html><body><p>Area is <script type=\"math/tex\">\\pi r^2</script>.</p></body></html>")),
        record("response", "https://zh.test/", "3", "application/http; msgtype=response", &http("200 OK", "text/html; charset=gb2312", &gbk)),
        record("response", "https://img.test/a.png", "4", "application/http; msgtype=response", &http("200 OK", "image/png", b"\x89PNG....")),
        record("response", "https://gone.test/", "5", "application/http; msgtype=response", &http("404 Not Found", "text/html", b"<p>missing</p>")),
        record("response", "https://big.test/", "6", "application/http; msgtype=response", &http("200 OK", "text/html", &big)),
        b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: banana\r\n\r\n<p>x</p>\r\n\r\n".to_vec(),
        record("response", "https://bad.test/", "8", "application/http; msgtype=response", b"this is not HTTP at all"),
        record("resource", "file:///notes.html", "9", "text/html", b"<html><body><p>Resource page with $e^x$ inside.</p></body></html>"),
        record("response", "https://latin.test/", "10", "application/http; msgtype=response", &http("200 OK", "text/html", b"<html><body><p>Caf\xe9 and na\xefve text with many ASCII words around it.</p></body></html>")),
        record("response", "https://last.test/", "11", "application/http; msgtype=response", &http("200 OK", "text/html", b"<html><body><p>This record will be cut off by truncation.</p></body></html>")),
    ]
}

fn gzip_members(recs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in recs {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(r).unwrap();
        out.extend(enc.finish().unwrap());
    }
    out
}

fn write_test_warc(dir: &Path) -> std::path::PathBuf {
    let bytes = gzip_members(&records());
    // Cut the last member in half: a truncated download.
    let last_len = gzip_members(&records()[11..]).len();
    let cut = bytes.len() - last_len / 2;
    let p = dir.join("test.warc.gz");
    std::fs::write(&p, &bytes[..cut]).unwrap();
    p
}

fn cfg() -> ExtractConfig {
    ExtractConfig { max_bytes: 4096, ..ExtractConfig::default() }
}

#[test]
fn reader_yields_records_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_test_warc(dir.path());
    let items: Vec<_> =
        WarcReader::open(&p, WarcOptions { max_record_bytes: 4096 }).unwrap().collect();
    let summary: Vec<String> = items
        .iter()
        .map(|i| match i {
            Ok(r) => r.warc_type().to_string(),
            Err(s) => format!("skip:{}", s.reason.as_str()),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "warcinfo",
            "request",
            "response",
            "response",
            "response",
            "response",
            "skip:oversized",
            "skip:malformed_warc_header",
            "response",
            "resource",
            "response",
            "skip:truncated"
        ]
    );
    let r = items[2].as_ref().unwrap();
    assert_eq!(r.target_uri(), Some("https://a.test/"));
    assert_eq!(r.record_id(), Some("<urn:uuid:2>"));
    assert_eq!(items[11].as_ref().unwrap_err().reason, SkipReason::Truncated);
}

fn check_stage_output(out: &Path, docs: &[Document]) {
    let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["urn:uuid:2", "urn:uuid:3", "urn:uuid:9", "urn:uuid:10"], "{}", out.display());
    assert_eq!(docs[0].text, "Area is $\\pi r^2$.");
    assert_eq!(docs[0].url.as_deref(), Some("https://a.test/"));
    assert_eq!(docs[0].metadata["warc_date"], "2024-05-18T01:58:10Z");
    assert_eq!(docs[1].text, "解方程 $x^2=4$，得 $x=\\pm 2$。");
    assert_eq!(docs[1].metadata["charset"], "GBK");
    assert_eq!(docs[1].metadata["title"], "数学");
    assert!(docs[2].text.contains("$e^x$"));
    assert!(docs[3].text.starts_with("Café and naïve"), "{}", docs[3].text);
}

#[test]
fn stage_extracts_good_records_and_counts_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_test_warc(dir.path());
    for name in ["out.jsonl.gz", "out.parquet"] {
        let out_dir = dir.path().join(name.replace('.', "_"));
        let job = ExtractJob {
            inputs: vec![input.clone()],
            output: out_dir.join(name),
            shard: Shard::default(),
            config: cfg(),
        };
        let mut calls = 0;
        let report = run(&job, &mut |_| calls += 1).unwrap();
        assert!(calls >= 1);
        let docs: Vec<Document> = read_documents(&report.output).map(|d| d.unwrap()).collect();
        check_stage_output(&report.output, &docs);
        let s = &report.stats;
        assert_eq!((s.docs_in, s.docs_out), (10, 4), "{s:?}");
        for (reason, n) in [
            ("not_html", 1),
            ("http_status", 1),
            ("oversized", 1),
            ("malformed_warc_header", 1),
            ("bad_http", 1),
            ("truncated", 1),
        ] {
            assert_eq!(s.rejects.get(reason).copied(), Some(n), "{reason}: {s:?}");
        }
        assert_eq!(s.notes["warc_request"], 1);
        assert_eq!(s.notes["warc_warcinfo"], 1);
        let md = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
        assert!(md.contains("| not_html | 1 |"), "{md}");
        assert!(Shard::default().is_done(&out_dir));
        // A rerun finds the marker and skips.
        let again = run(&job, &mut |_| {}).unwrap();
        assert!(again.skipped_done);
        assert_eq!(again.stats.docs_out, 4);
    }
}

#[test]
fn zstd_warc_and_record_sharding() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records();
    let plain: Vec<u8> = recs[..11].concat();
    let p = dir.path().join("test.warc.zst");
    std::fs::write(&p, zstd::encode_all(&plain[..], 3).unwrap()).unwrap();
    let mut all: Vec<Document> = Vec::new();
    for i in 0..2 {
        let job = ExtractJob {
            inputs: vec![p.clone()],
            output: dir.path().join("o/out.jsonl"),
            shard: Shard::new(i, 2).unwrap(),
            config: cfg(),
        };
        let report = run(&job, &mut |_| {}).unwrap();
        assert_eq!(report.output, shard_output(&job.output, job.shard));
        assert!(report.output.to_string_lossy().ends_with(&format!("out-0000{i}-of-00002.jsonl")));
        all.extend(read_documents(&report.output).map(|d| d.unwrap()));
    }
    all.sort_by(|a, b| a.id.len().cmp(&b.id.len()).then(a.id.cmp(&b.id)));
    check_stage_output(&dir.path().join("o"), &all);
    assert!(Shard::all_done(&dir.path().join("o"), 2));
}

#[test]
fn real_common_crawl_warc_excerpt() {
    let Some(p) = mathforge_io::shared::shared_data_file(
        "real_common_crawl_warc_excerpt",
        "web/commoncrawl/cc-main-2020-34_excerpt_resiliparse.warc.gz",
    ) else {
        return;
    };
    let items: Vec<_> = WarcReader::open(&p, WarcOptions::default()).unwrap().collect();
    assert_eq!(items.len(), 50);
    let count =
        |t: &str| items.iter().filter(|i| i.as_ref().is_ok_and(|r| r.warc_type() == t)).count();
    assert_eq!(
        (count("warcinfo"), count("request"), count("response"), count("metadata")),
        (1, 17, 16, 16)
    );
    let dir = tempfile::tempdir().unwrap();
    let job = ExtractJob {
        inputs: vec![p],
        output: dir.path().join("cc.parquet"),
        shard: Shard::default(),
        config: ExtractConfig::default(),
    };
    let report = run(&job, &mut |_| {}).unwrap();
    let s = &report.stats;
    assert_eq!(s.docs_in, 16, "{s:?}");
    assert!(s.docs_out >= 10, "{s:?}");
    let docs: Vec<Document> = read_documents(&report.output).map(|d| d.unwrap()).collect();
    // Mostly Chinese pages: decoded text must contain CJK, not mojibake.
    let cjk = docs
        .iter()
        .filter(|d| d.text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)))
        .count();
    assert!(cjk >= 5, "only {cjk} documents with CJK text");
    assert!(docs.iter().all(|d| !d.text.contains("<script") && !d.text.contains("</div>")));
}

#[test]
fn real_wet_files() {
    let Some(p) = mathforge_io::shared::shared_data_file(
        "real_wet_files",
        "web/commoncrawl/whirlwind_cc-main-2024-22.warc.wet.gz",
    ) else {
        return;
    };
    let docs: Vec<Document> =
        read_wet(&p, WarcOptions::default()).unwrap().map(|d| d.unwrap()).collect();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].url.as_deref(), Some("https://an.wikipedia.org/wiki/Escopete"));
    assert_eq!(docs[0].metadata["language"], "spa");
    assert!(docs[0].text.contains("Escopete"));
    let fixture = p.with_file_name("ccnet_fixture_sample.wet.txt");
    let r = WarcReader::open(&fixture, WarcOptions::default()).unwrap();
    let conv = r.filter(|i| i.as_ref().is_ok_and(|r| r.warc_type() == "conversion")).count();
    assert!(conv >= 3, "{conv}");
}
