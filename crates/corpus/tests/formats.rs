//! Document IO: JSONL(.gz/.zst) and Parquet round trips, schema inference with late metadata keys,
//! bad lines skipped in place, and real Dolma CC JSONL converted to Parquet and back.
use mathforge_corpus::formats::{
    read_documents, DocumentReader, DocumentWriter, EXTRA_COLUMN, PARQUET_ROW_GROUP,
};
use mathforge_corpus::Document;
use serde_json::json;
use std::io::Write;

fn sample(n: usize) -> Vec<Document> {
    (0..n)
        .map(|i| {
            let mut d = Document::new(
                format!("doc-{i}"),
                (i % 3 != 0).then(|| format!("https://ex.test/{i}")),
                format!("text {i} with $x^{i}$ 数学"),
            )
            .with_meta("score", 0.5 + i as f64)
            .with_meta("round", i as i64)
            .with_meta("is_math", i % 2 == 0)
            .with_meta("domain", "ex.test");
            if i % 5 == 0 {
                d = d.with_meta("nested", json!({"a": [1, 2], "b": "c"}));
            }
            d
        })
        .collect()
}

fn roundtrip(name: &str, docs: &[Document]) -> Vec<Document> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let mut w = DocumentWriter::create(&path).unwrap();
    for d in docs {
        w.write(d).unwrap();
    }
    assert!(!path.exists(), "{name}: file must not appear before finish");
    assert_eq!(w.finish().unwrap(), docs.len() as u64);
    read_documents(&path).map(|d| d.unwrap()).collect()
}

#[test]
fn jsonl_and_parquet_roundtrip_exactly() {
    let docs = sample(50);
    for name in ["a.jsonl", "a.jsonl.gz", "a.jsonl.zst", "a.parquet"] {
        let back = roundtrip(name, &docs);
        assert_eq!(back, docs, "{name}");
    }
}

#[test]
fn parquet_keeps_keys_that_appear_after_the_schema_is_fixed() {
    let mut docs = sample(PARQUET_ROW_GROUP + 10);
    let last = docs.len() - 1;
    docs[last].metadata.insert("late_key".into(), json!("only here"));
    // A value whose type does not fit the inferred int64 column.
    docs[last - 1].metadata.insert("round".into(), json!("not a number"));
    let back = roundtrip("late.parquet", &docs);
    assert_eq!(back.len(), docs.len());
    assert_eq!(back[last].metadata["late_key"], "only here");
    assert_eq!(back[last - 1].metadata["round"], "not a number");
    assert!(!back[0].metadata.contains_key(EXTRA_COLUMN));
    assert_eq!(back, docs);
}

#[test]
fn bad_jsonl_lines_are_errors_in_place_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.jsonl");
    let mut f = std::fs::File::create(&p).unwrap();
    writeln!(f, r#"{{"id": "a", "text": "one"}}"#).unwrap();
    writeln!(f, r#"{{"id": "b", "txt": "no text field"}}"#).unwrap();
    writeln!(f, "{{not json").unwrap();
    writeln!(f, r#"{{"text": "no id", "url": "https://x.test/"}}"#).unwrap();
    drop(f);
    let items: Vec<_> = read_documents(&p).collect();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0].as_ref().unwrap().text, "one");
    let e = items[1].as_ref().unwrap_err().to_string();
    assert!(e.contains("bad.jsonl:2") && e.contains("text"), "{e}");
    assert!(items[2].as_ref().unwrap_err().to_string().contains("bad.jsonl:3"));
    let d = items[3].as_ref().unwrap();
    assert_eq!(d.id, "bad.jsonl:4");
    assert_eq!(d.url.as_deref(), Some("https://x.test/"));
}

#[test]
fn unknown_and_missing_files_are_clear_errors() {
    let e = DocumentReader::open("x.csv").err().unwrap().to_string();
    assert!(e.contains("x.csv") && e.contains("unknown format"), "{e}");
    let items: Vec<_> = read_documents("/nonexistent/y.jsonl").collect();
    assert_eq!(items.len(), 1);
    assert!(items[0].as_ref().unwrap_err().to_string().contains("/nonexistent/y.jsonl"));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk.parquet");
    std::fs::write(&p, b"definitely not parquet").unwrap();
    let e = DocumentReader::open(&p).err().unwrap().to_string();
    assert!(e.contains("junk.parquet"), "{e}");
}

#[test]
fn real_dolma_cc_jsonl_to_parquet_and_back() {
    let Some(src) = mathforge_io::shared::shared_data_file(
        "real_dolma_cc_jsonl_to_parquet_and_back",
        "web/commoncrawl/dolma_cc_en_head-0091.jsonl.gz",
    ) else {
        return;
    };
    let docs: Vec<Document> = read_documents(&src).map(|d| d.unwrap()).collect();
    assert_eq!(docs.len(), 10);
    assert!(docs.iter().all(|d| d.text.len() > 100 && d.metadata.contains_key("metadata")));
    let back = roundtrip("dolma.parquet", &docs);
    assert_eq!(back, docs);
}
