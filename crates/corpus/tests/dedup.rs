//! Integration tests of `mathforge_corpus::dedup` and `text` (issue #4 items 4, 7, 8): multilingual
//! near-duplicates, bad input, sharding, and idempotence (proptest).
use mathforge_corpus::dedup::{self, DedupConfig};
use mathforge_corpus::text::normalize;
use mathforge_io::jsonl::JsonlReader;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn no_progress(_: u64) {}

fn ids(path: &Path) -> Vec<String> {
    JsonlReader::open(path)
        .unwrap()
        .map(|r| r.value.unwrap()["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn chinese_and_japanese_near_duplicates_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let input = testdata("dedup_multilingual_pages.jsonl");
    let config = DedupConfig { url: false, exact: false, minhash: true, ..Default::default() };
    let s = dedup::run_all(&[input], 1, dir.path(), &config, &no_progress).unwrap();
    assert_eq!(s.docs_in, 6);
    assert_eq!(ids(&dir.path().join("output/00000.jsonl.gz")), vec!["zh-1", "zh-3", "ja-1", "en-1"]);
    let removed: Vec<serde_json::Value> =
        JsonlReader::open(dir.path().join("removed/00000.jsonl.gz")).unwrap().map(|r| r.value.unwrap()).collect();
    assert_eq!(removed.len(), 2);
    assert_eq!((removed[0]["id"].as_str(), removed[0]["duplicate_of"].as_str()), (Some("zh-2"), Some("zh-1")));
    assert_eq!((removed[1]["id"].as_str(), removed[1]["duplicate_of"].as_str()), (Some("ja-2"), Some("ja-1")));
    assert_eq!(removed[0]["dedup_reason"], "minhash");
    // Without segmentation a Chinese paragraph would be a handful of "words" and never match.
    assert!(normalize("当判别式大于零时").split(' ').count() == 8);
}

#[test]
fn truncated_and_invalid_input_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("t.jsonl.gz");
    let mut w = mathforge_io::jsonl::JsonlWriter::create(&gz).unwrap();
    for i in 0..3000 {
        w.write(&serde_json::json!({"id": format!("d{i}"), "text": format!("document {i} alpha {} beta {} gamma", i * 7, i * 13)})).unwrap();
    }
    w.finish().unwrap();
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\": \"x\", \"text\": \"fine text\"}\n{not json\n{\"id\": 7}\n").unwrap();
    let out = dir.path().join("out");
    let s = dedup::run_all(&[gz, bad], 1, &out, &DedupConfig::default(), &no_progress).unwrap();
    assert_eq!(s.bad_records.get("read_error"), Some(&1));
    assert_eq!(s.bad_records.get("invalid_json"), Some(&1));
    assert_eq!(s.bad_records.get("missing_text"), Some(&1));
    assert!(s.docs_in > 100 && s.docs_in == s.docs_out, "{s:?}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("skipped: read_error | 1"), "{md}");
}

#[test]
fn filter_with_other_inputs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = testdata("dedup_multilingual_pages.jsonl");
    let out = dir.path().join("o");
    let shard = mathforge_io::shard::Shard::default();
    dedup::signatures(&[a.clone()], shard, &out, &DedupConfig::default(), &no_progress).unwrap();
    dedup::cluster(&out, 1).unwrap();
    let err = dedup::filter(&[a.clone(), a], shard, &out, &no_progress).unwrap_err().to_string();
    assert!(err.contains("same --input"), "{err}");
}

fn doc_strategy() -> impl Strategy<Value = Vec<String>> {
    // Few distinct words so exact and near duplicates are common.
    let word = prop::sample::select(vec!["alpha", "beta", "gamma", "delta", "数", "学", "x", "y", "z", "sum"]);
    let text = prop::collection::vec(word, 0..30).prop_map(|w| w.join(" "));
    prop::collection::vec(text, 1..25)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn dedup_is_idempotent(texts in doc_strategy(), dup_every in 2usize..5) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        let mut lines = String::new();
        for (i, t) in texts.iter().enumerate() {
            // Force some exact copies and some URL copies.
            let t = if i % dup_every == 0 { texts[0].clone() } else { t.clone() };
            let url = format!("https://site{}.org/p", i % 7);
            lines += &serde_json::json!({"id": format!("d{i}"), "url": url, "text": t}).to_string();
            lines.push('\n');
        }
        std::fs::write(&input, lines).unwrap();
        let first = dir.path().join("first");
        let s1 = dedup::run_all(&[input], 1, &first, &DedupConfig::default(), &no_progress).unwrap();
        let kept = first.join("output/00000.jsonl.gz");
        let second = dir.path().join("second");
        let s2 = dedup::run_all(&[kept.clone()], 1, &second, &DedupConfig::default(), &no_progress).unwrap();
        prop_assert_eq!(s2.docs_in, s1.docs_out);
        prop_assert_eq!(s2.docs_out, s2.docs_in, "second pass removed {:?}", s2.removed);
        prop_assert_eq!(ids(&second.join("output/00000.jsonl.gz")), ids(&kept));
    }
}
