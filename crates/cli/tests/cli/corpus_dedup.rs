//! CLI tests for `mathforge corpus dedup` and `mathforge corpus decont` (issue #4 items 4, 5, 8).
use crate::util::{ok, run};
use std::io::Read;
use std::path::Path;

fn write_lines(path: &Path, lines: &[serde_json::Value]) {
    let s: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, s).unwrap();
}

fn read_gz_lines(path: &Path) -> Vec<serde_json::Value> {
    let mut s = String::new();
    flate2_read(path).read_to_string(&mut s).unwrap();
    s.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn flate2_read(path: &Path) -> Box<dyn Read> {
    mathforge_io::jsonl::open_read(path).map(|r| Box::new(r) as Box<dyn Read>).unwrap()
}

fn page(words: usize, salt: &str) -> String {
    (0..words).map(|i| format!("{salt}{}", i * 7 % 101)).collect::<Vec<_>>().join(" ")
}

#[test]
fn dedup_all_stages_and_sharded_agree() {
    let dir = tempfile::tempdir().unwrap();
    let base = page(200, "w");
    let near = base.replacen("w7", "changed", 1);
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    write_lines(&a, &[
        serde_json::json!({"id": "a0", "url": "https://www.example.com/p/?utm_source=x", "text": base}),
        serde_json::json!({"id": "a1", "url": "https://other.org/q", "text": page(200, "z")}),
        serde_json::json!({"broken": true}),
    ]);
    write_lines(&b, &[
        serde_json::json!({"id": "b0", "url": "http://example.com/p", "text": "short different text"}),
        serde_json::json!({"id": "b1", "url": "https://third.net/", "text": near}),
        serde_json::json!({"id": "b2", "url": "https://fourth.net/", "text": page(200, "z").to_uppercase()}),
    ]);
    let out = dir.path().join("one");
    let stdout = ok(&["corpus", "dedup", "--input", a.to_str().unwrap(), b.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(stdout.contains("docs in      5"), "{stdout}");
    assert!(stdout.contains("docs out     2"), "{stdout}");
    assert!(stdout.contains("url: 1") && stdout.contains("exact: 1") && stdout.contains("minhash: 1"), "{stdout}");
    assert!(stdout.contains("missing_text: 1"), "{stdout}");
    let removed = read_gz_lines(&out.join("removed/00000.jsonl.gz"));
    let by_id: std::collections::HashMap<_, _> =
        removed.iter().map(|r| (r["id"].as_str().unwrap().to_string(), r["duplicate_of"].as_str().unwrap().to_string())).collect();
    assert_eq!(by_id["b0"], "a0");
    assert_eq!(by_id["b1"], "a0");
    assert_eq!(by_id["b2"], "a1");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["docs_out"], 2);

    // Same data as two shards run stage by stage: same kept documents.
    let out2 = dir.path().join("two");
    let o = out2.to_str().unwrap();
    let (ia, ib) = (a.to_str().unwrap(), b.to_str().unwrap());
    for shard in ["0", "1"] {
        ok(&["corpus", "dedup", "--input", ia, ib, "--output", o, "--stage", "signatures", "--shard", shard, "--shards", "2"]);
    }
    ok(&["corpus", "dedup", "--input", ia, ib, "--output", o, "--stage", "cluster", "--shards", "2"]);
    for shard in ["0", "1"] {
        ok(&["corpus", "dedup", "--input", ia, ib, "--output", o, "--stage", "filter", "--shard", shard, "--shards", "2"]);
    }
    let kept: Vec<String> = ["00000", "00001"]
        .iter()
        .flat_map(|s| read_gz_lines(&out2.join(format!("output/{s}.jsonl.gz"))))
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, vec!["a0", "a1"]);
    // A rerun skips finished shards and still reports.
    let again = ok(&["corpus", "dedup", "--input", ia, ib, "--output", o, "--stage", "filter", "--shard", "1", "--shards", "2"]);
    assert!(again.contains("docs out     2"), "{again}");
}

#[test]
fn dedup_cluster_before_signatures_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.jsonl");
    write_lines(&a, &[serde_json::json!({"text": "x"})]);
    let out = run(&["corpus", "dedup", "--input", a.to_str().unwrap(), "--output", dir.path().join("o").to_str().unwrap(), "--stage", "cluster", "--shards", "3"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signature stage not finished") && err.contains("[0, 1, 2]"), "{err}");
}

#[test]
fn decont_removes_benchmark_matches_and_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench.jsonl");
    write_lines(&bench, &[
        serde_json::json!({"question": "Janet has 16 ducks that lay eggs every day and she sells the rest at the market", "answer": "#### 18", "id": "q1"}),
        serde_json::json!({"question": "妈咪买了3盒茶叶，一盒茶叶有6小包，一共买了多少小包茶叶？", "golden": "18"}),
        serde_json::json!({"question": "Compute the area of the unit disk."}),
    ]);
    let pages = dir.path().join("pages.jsonl");
    write_lines(&pages, &[
        serde_json::json!({"id": "p0", "text": "Forum post: JANET has 16 ducks that lay eggs every day and she sells them. Help!"}),
        serde_json::json!({"id": "p1", "text": "今天的题目：一盒茶叶有6小包，一共买了多少小包？"}),
        serde_json::json!({"id": "p2", "text": "Exercise: compute the area of the unit disk, then the sphere."}),
        serde_json::json!({"id": "p3", "text": "Nothing to see here, just ducks and eggs and tea."}),
    ]);
    let out = dir.path().join("clean.jsonl");
    let removed = dir.path().join("removed.jsonl");
    let stdout = ok(&[
        "corpus", "decont", "--input", pages.to_str().unwrap(), "--benchmark", bench.to_str().unwrap(),
        "--output", out.to_str().unwrap(), "--removed", removed.to_str().unwrap(),
    ]);
    assert!(stdout.contains("docs in      4") && stdout.contains("docs out     1"), "{stdout}");
    let kept = std::fs::read_to_string(&out).unwrap();
    assert!(kept.contains("\"p3\"") && !kept.contains("\"p0\""));
    let rem: Vec<serde_json::Value> = std::fs::read_to_string(&removed).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rem[0]["decont_match"]["id"], "q1");
    assert_eq!(rem[0]["decont_match"]["line"], 1);
    assert_eq!(rem[0]["decont_match"]["ngram"], "janet has 16 ducks that lay eggs every day and");
    assert_eq!(rem[1]["decont_match"]["line"], 2);
    assert_eq!(rem[2]["decont_match"]["ngram"], "compute the area of the unit disk");
}
