//! CLI tests for `mathforge corpus` (extract: flags, config file, shards, summary files).
use crate::util::{ok, run, shared_data};
use std::path::{Path, PathBuf};

fn corpus_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/testdata").join(name)
}

fn read_jsonl_gz(p: &Path) -> Vec<serde_json::Value> {
    let r = mathforge_io::jsonl::JsonlReader::open(p).unwrap();
    r.map(|rec| rec.value.unwrap()).collect()
}

#[test]
fn extract_help_has_an_example() {
    let out = ok(&["corpus", "extract", "--help"]);
    assert!(out.contains("mathforge corpus extract --input"), "{out}");
}

#[test]
fn extract_html_files_with_config_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("extract.toml");
    std::fs::write(&cfg, "min_chars = 10\nremove_boilerplate = true\n").unwrap();
    let out = dir.path().join("x/docs.jsonl.gz");
    let stdout = ok(&[
        "corpus", "extract",
        "--input", corpus_fixture("extract_mathjax.html").to_str().unwrap(), corpus_fixture("extract_zh.html").to_str().unwrap(),
        "--output", out.to_str().unwrap(),
        "--config", cfg.to_str().unwrap(),
        "--max-bytes", "100000",
    ]);
    assert!(stdout.contains("2 records in, 2 documents out"), "{stdout}");
    let docs = read_jsonl_gz(&out);
    assert_eq!(docs.len(), 2);
    assert!(docs[0]["text"].as_str().unwrap().contains("$$x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}$$"));
    assert!(dir.path().join("x/summary.json").is_file());
    assert!(dir.path().join("x/completions/00000").is_file());
    // Rerun: the shard is complete and is skipped.
    let again = ok(&["corpus", "extract", "--input", corpus_fixture("extract_zh.html").to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(again.contains("already complete"), "{again}");
}

#[test]
fn extract_bad_inputs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["corpus", "extract", "--input", "/nonexistent/a.warc.gz", "--output", dir.path().join("o.jsonl").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/a.warc.gz"), "{err}");
    let out = run(&["corpus", "extract", "--input", corpus_fixture("extract_zh.html").to_str().unwrap(), "--output", dir.path().join("o.csv").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown format"));
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "max_bites = 3\n").unwrap();
    let out = run(&["corpus", "extract", "--input", corpus_fixture("extract_zh.html").to_str().unwrap(), "--output", dir.path().join("o.jsonl").to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_bites"));
}

#[test]
fn extract_real_common_crawl_warc_in_two_shards() {
    let Some(root) = shared_data("extract_real_common_crawl_warc_in_two_shards") else {
        return;
    };
    let warc = root.join("web/commoncrawl/cc-main-2020-34_excerpt_resiliparse.warc.gz");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cc/docs.parquet");
    let mut total = 0;
    for shard in ["0", "1"] {
        let stdout = ok(&["corpus", "extract", "--input", warc.to_str().unwrap(), "--output", out.to_str().unwrap(), "--shard", shard, "--shards", "2"]);
        assert!(stdout.contains("documents out"), "{stdout}");
        let p = dir.path().join(format!("cc/docs-0000{shard}-of-00002.parquet"));
        total += mathforge_corpus::formats::read_documents(&p).count();
        assert!(dir.path().join(format!("cc/summary-0000{shard}.json")).is_file());
    }
    assert!(total >= 10, "{total}");
}
