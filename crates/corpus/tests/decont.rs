//! Integration tests of `mathforge_corpus::decont` (DeepSeekMath §2.1 decontamination): real GSM8K
//! questions from `MATHFORGE_SHARED_DATA`, and own fixtures for Chinese and short texts.
use mathforge_corpus::decont::{self, BenchmarkIndex, BenchmarkSpec, DecontConfig};
use mathforge_io::shard::Shard;
use std::path::Path;

fn no_progress(_: u64) {}

#[test]
fn gsm8k_question_10gram_is_removed() {
    let Some(gsm8k) = mathforge_io::shared::shared_data_file("gsm8k_question_10gram_is_removed", "benchmarks/gsm8k_test.jsonl")
    else {
        return;
    };
    let spec: BenchmarkSpec = format!("{}:question,answer", gsm8k.display()).parse().unwrap();
    let index = BenchmarkIndex::build(&[spec], DecontConfig::default()).unwrap();
    assert_eq!(index.stats().records.values().sum::<u64>(), 1319);
    // Line 5 of the file; take 10 words from the middle of its question.
    let rec: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&gsm8k).unwrap().lines().nth(4).unwrap()).unwrap();
    let q = rec["question"].as_str().unwrap();
    let words: Vec<&str> = q.split_whitespace().collect();
    let snippet = words[2..12].join(" ");
    let m = index.find(&format!("Homework help!! {snippet} ... can anyone explain?")).expect("10-gram found");
    assert_eq!(m.item.line, 5);
    assert_eq!(m.item.field, "question");
    // Nine of those words are not enough.
    let nine = words[2..11].join(" ");
    assert!(index.find(&format!("zzz {nine} qqq")).is_none());
}

#[test]
fn chinese_benchmarks_match_per_character_and_files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("cmath.jsonl");
    std::fs::write(
        &bench,
        concat!(
            "{\"grade\": 2, \"question\": \"小明有12个苹果，分给4个小朋友，每人分到几个？\", \"golden\": \"3\"}\n",
            "{\"id\": \"s1\", \"question\": \"长方形的周长\"}\n",
        ),
    )
    .unwrap();
    let index = BenchmarkIndex::build(&[bench.to_str().unwrap().parse().unwrap()], DecontConfig::default()).unwrap();
    assert_eq!(index.stats().short_texts, 1);
    let pages = dir.path().join("pages.jsonl");
    std::fs::write(
        &pages,
        concat!(
            "{\"id\": \"a\", \"text\": \"今天的作业：小明有12个苹果，分给4个小朋友。\"}\n",
            "{\"id\": \"b\", \"text\": \"如何计算长方形的周长和面积\"}\n",
            "{\"id\": \"c\", \"text\": \"小明有苹果\"}\n",
        ),
    )
    .unwrap();
    let out = dir.path().join("clean.jsonl.zst");
    let removed = dir.path().join("removed.jsonl");
    let s = decont::decontaminate(&[pages.clone()], &index, &out, Some(&removed), Shard::default(), &no_progress).unwrap();
    assert_eq!((s.docs_in, s.docs_out), (3, 1));
    assert_eq!(s.removed.get("cmath.jsonl"), Some(&2));
    let rem: Vec<serde_json::Value> = mathforge_io::jsonl::JsonlReader::open(&removed).unwrap().map(|r| r.value.unwrap()).collect();
    assert_eq!(rem[0]["decont_match"]["ngram"], "小 明 有 12 个 苹 果 分 给 4");
    assert_eq!(rem[1]["decont_match"]["id"], "s1");
    assert_eq!(rem[1]["decont_match"]["ngram"], "长 方 形 的 周 长");
    let kept: Vec<serde_json::Value> = mathforge_io::jsonl::JsonlReader::open(&out).unwrap().map(|r| r.value.unwrap()).collect();
    assert_eq!(kept[0]["id"], "c");
    // Rerun: the marker makes it a no-op that returns the same summary.
    let again = decont::decontaminate(&[pages], &index, &out, Some(&removed), Shard::default(), &no_progress).unwrap();
    assert_eq!(again, s);
    assert!(Path::new(&decont::marker_dir(&out)).join("completions/00000").is_file());
}

#[test]
fn bad_benchmark_file_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("b.jsonl");
    std::fs::write(&bench, "{\"question\": \"fine\"}\n[1, 2]\n").unwrap();
    let err = BenchmarkIndex::build(&[bench.to_str().unwrap().parse().unwrap()], DecontConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("b.jsonl:2") && err.contains("not a JSON object"), "{err}");
}
