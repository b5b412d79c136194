//! CLI tests for `mathforge corpus mine` (issue #4 item 6, with Chinese pages for item 8).
use crate::util::{ok, run};
use serde_json::json;
use std::io::Read;
use std::path::Path;

fn write_lines(path: &Path, lines: &[serde_json::Value]) {
    let s: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, s).unwrap();
}

fn read_gz(path: &Path) -> Vec<serde_json::Value> {
    let mut s = String::new();
    mathforge_io::jsonl::open_read(path).unwrap().read_to_string(&mut s).unwrap();
    s.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn math_en(i: usize, host: &str) -> serde_json::Value {
    json!({"id": format!("en{i}-{host}"), "url": format!("https://{host}/questions/{i}"),
        "text": format!("Let $x^{i}$ be an integer. Prove that the sum of the roots equals {i}.\nTheorem: the integral of f over [0,1] is finite. Lemma, proof, equation.")})
}

fn math_zh(i: usize, host: &str) -> serde_json::Value {
    json!({"id": format!("zh{i}-{host}"), "url": format!("https://{host}/tiku/{i}"),
        "text": format!("已知函数 f(x)=x^{i}，求方程的解。证明：三角形内角和等于一百八十度。因为 a={i}，所以答案是 {i}。")})
}

fn shop(i: usize) -> serde_json::Value {
    json!({"id": format!("shop{i}"), "url": format!("https://shop{}.test/item/{i}", i % 5),
        "text": format!("Buy cheap shoes today, item {i}. Free shipping on every order; 包邮 优惠 购物 鞋子 评论.")})
}

#[test]
fn mine_two_rounds_keeps_english_and_chinese_math_and_plots_the_histogram() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut seed: Vec<_> = (0..30).map(|i| math_en(i, "seed.test")).collect();
    seed.extend((0..30).map(|i| math_zh(i, "seed-zh.test")));
    let mut pool: Vec<_> = (0..30).map(|i| math_en(100 + i, "mathsite.test")).collect();
    pool.extend((0..30).map(|i| math_zh(100 + i, "shuxue.test")));
    pool.extend((0..240).map(shop));
    write_lines(&d.join("seed.jsonl"), &seed);
    write_lines(&d.join("pool.jsonl"), &pool);
    let out = d.join("mine");
    let args = |rounds: &str| {
        vec![
            "corpus".to_string(), "mine".into(), "--seed".into(), d.join("seed.jsonl").display().to_string(),
            "--pool".into(), d.join("pool.jsonl").display().to_string(), "--out".into(), out.display().to_string(),
            "--rounds".into(), rounds.into(), "--dim".into(), "16".into(), "--epoch".into(), "10".into(),
            "--min-count".into(), "1".into(), "--word-ngrams".into(), "2".into(), "--threads".into(), "1".into(),
            "--keep-fraction".into(), "0.2".into(), "--stop-overlap".into(), "2".into(),
        ]
    };
    let a1 = args("1");
    let stdout = ok(&a1.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(stdout.contains("| 1 | 60 | 60/"), "{stdout}");
    let kept = read_gz(&out.join("round-1/kept/kept-00000-of-00001.jsonl.gz"));
    assert_eq!(kept.len(), 60);
    let zh = kept.iter().filter(|k| k["id"].as_str().unwrap().starts_with("zh")).count();
    let en = kept.iter().filter(|k| k["id"].as_str().unwrap().starts_with("en")).count();
    assert!(zh >= 25 && en >= 25, "kept {en} English and {zh} Chinese math pages of 30 each");
    assert_eq!(kept[0]["round"], 1);
    let png = std::fs::read(out.join("round-1/histogram.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let domains = std::fs::read_to_string(out.join("round-1/domains.tsv")).unwrap();
    assert!(domains.lines().any(|l| l.starts_with("shuxue.test\t30\t") && l.ends_with("\ttrue")), "{domains}");

    // Second invocation with one more round: round 1 is reused, round 2 reports its overlap.
    let a2 = args("2");
    let stdout = ok(&a2.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(stdout.lines().any(|l| l.starts_with("| 2 |") && l.contains('%')), "{stdout}");
    assert!(out.join("round-2/histogram.png").is_file());
}

#[test]
fn mine_bad_config_and_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mine.toml");
    std::fs::write(&cfg, "seed = [\"s.jsonl\"]\npool = [\"p.jsonl\"]\nkeep-fractoin = 0.1\n").unwrap();
    let out = run(&["corpus", "mine", "--config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("keep-fractoin") && err.contains("mine.toml"), "{err}");

    std::fs::write(&cfg, "seed = [\"nope-seed.jsonl\"]\npool = [\"nope-pool.jsonl\"]\n").unwrap();
    let out = run(&["corpus", "mine", "--config", cfg.to_str().unwrap(), "--out", dir.path().join("m").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("nope-seed.jsonl"), "{err}");

    let out = run(&["corpus", "mine", "--pool", "p.jsonl"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no seed pages"));
}
