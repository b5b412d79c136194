//! CLI tests for `mathforge verify`: single pair, JSONL batch (order, added fields, bad lines),
//! labelled-case report and the shared-data self-check.
use crate::util::{ok, run, shared_data};

#[test]
fn single_pair_prints_json_grade() {
    let out = ok(&["verify", "--reference", "\\frac{1}{2}", "--response", "The answer is $0.5$."]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["equivalent"], true);
    assert_eq!(v["extracted"], "0.5");
    let out = ok(&["verify", "--strict", "--reference", "12", "--response", "we get 12"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["equivalent"], false);
    assert!(v["extracted"].is_null());
}

#[test]
fn batch_keeps_order_and_adds_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    let mut text = String::new();
    for k in 0..300 {
        let (r, s) = if k % 3 == 0 {
            (k.to_string(), format!("\\boxed{{{k}}}"))
        } else {
            (k.to_string(), format!("The answer is {}.", k + 1))
        };
        text.push_str(&serde_json::json!({"id": k, "reference": r, "response": s}).to_string());
        text.push('\n');
    }
    std::fs::write(&input, text).expect("write");
    ok(&[
        "verify",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&output)
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 300);
    for (k, v) in lines.iter().enumerate() {
        assert_eq!(v["id"], k, "order kept");
        assert_eq!(v["equivalent"], k % 3 == 0, "line {k}");
        assert!(v["reason"].is_string() && v.get("extracted").is_some());
    }
}

#[test]
fn batch_bad_line_names_file_and_line_or_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    std::fs::write(
        &input,
        "{\"reference\": \"1\", \"response\": \"1\"}\n{not json\n{\"reference\": \"2\"}\n",
    )
    .expect("write");
    let out =
        run(&["verify", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in.jsonl") && err.contains('2'), "{err}");
    assert!(!output.exists(), "no partial output on error");
    let out = run(&[
        "verify",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--skip-bad",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("skipped 2 malformed"), "{err}");
    assert_eq!(std::fs::read_to_string(&output).expect("read").lines().count(), 1);
}

#[test]
fn cases_report_is_markdown() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../verify/testdata");
    let out = ok(&["verify", "--cases", dir]);
    assert!(out.contains("| **all** |"), "{out}");
}

#[test]
fn self_check_on_shared_data() {
    let Some(root) = shared_data("self_check_on_shared_data") else { return };
    let out = ok(&["verify", "--self-check", root.join("benchmarks").to_str().unwrap()]);
    assert!(out.contains("| gsm8k_test.jsonl | 1319 | 1319 | 100.00% |"), "{out}");
    assert!(out.contains("| math500_test.jsonl | 500 | 500 | 100.00% |"), "{out}");
}
