//! CLI tests for `mathforge eval`: real files in, real files out (responses backend, the arith
//! generator, config files, bad input), plus the shared-data run when `MATHFORGE_SHARED_DATA` is set.
use crate::util::{ok, run, shared_data};
use std::io::Write;

fn write(dir: &std::path::Path, name: &str, lines: &[&str]) -> String {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    p.to_string_lossy().into_owned()
}

#[test]
fn eval_help_has_an_example() {
    let out = ok(&["eval", "--help"]);
    assert!(out.contains("Examples:") && out.contains("--responses") && out.contains("--endpoint"), "{out}");
}

#[test]
fn eval_grades_a_responses_file_and_writes_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = write(d, "gsm.jsonl", &[
        r#####"{"question":"What is 2+3?","answer":"2+3=5\n#### 5"}"#####,
        r#####"{"question":"What is 1,000+1?","answer":"#### 1,001"}"#####,
    ]);
    let responses = write(d, "resp.jsonl", &[
        r#"{"id":"gsm8k-1","response":"The answer is $\\boxed{5}$."}"#,
        r#"{"id":"gsm8k-2","response":"The answer is 1000."}"#,
    ]);
    let out = d.join("out");
    let stdout = ok(&["eval", "--data", &data, "--responses", &responses, "--out", out.to_str().unwrap()]);
    assert!(stdout.contains("| greedy accuracy | 50.0 |"), "{stdout}");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["task"], "gsm8k");
    assert_eq!(summary["accuracy"], 0.5);
    let samples = std::fs::read_to_string(out.join("samples.jsonl")).unwrap();
    assert_eq!(samples.lines().count(), 2);
    assert!(samples.contains("\"extracted\":\"1000\""), "{samples}");
    assert!(std::fs::read_to_string(out.join("config.toml")).unwrap().contains("responses"));
}

#[test]
fn eval_bad_data_line_names_file_and_line_unless_skip_bad() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = write(d, "gsm.jsonl", &[r#####"{"question":"q","answer":"#### 1"}"#####, "{broken"]);
    let responses = write(d, "resp.jsonl", &[r#"{"id":"gsm8k-1","response":"\\boxed{1}"}"#]);
    let out = d.join("out");
    let o = run(&["eval", "--data", &data, "--responses", &responses, "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("gsm.jsonl:2:"), "{err}");
    let stdout = ok(&["eval", "--data", &data, "--responses", &responses, "--skip-bad", "--out", out.to_str().unwrap()]);
    assert!(stdout.contains("Skipped records (1)") && stdout.contains("| greedy accuracy | 100.0 |"), "{stdout}");
}

#[test]
fn eval_arith_spec_writes_gsm8k_format_and_config_file_supplies_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("heldout.jsonl");
    ok(&["eval", "--data", "arith:split=heldout,steps=3,n=5,seed=1", "--write-data", data.to_str().unwrap()]);
    let text = std::fs::read_to_string(&data).unwrap();
    assert_eq!(text.lines().count(), 5);
    // Reference solutions as responses: the generated problems grade 100% through the CLI.
    let mut resp = std::fs::File::create(d.join("resp.jsonl")).unwrap();
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        writeln!(resp, "{}", serde_json::json!({"id": v["id"], "response": v["answer"]})).unwrap();
    }
    let cfg = d.join("eval.toml");
    std::fs::write(&cfg, format!("data = {:?}\nresponses = {:?}\nlimit = 4\n", data.to_str().unwrap(), d.join("resp.jsonl").to_str().unwrap())).unwrap();
    let out = d.join("out");
    let stdout = ok(&["eval", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(stdout.contains("4 problems") && stdout.contains("| greedy accuracy | 100.0 |"), "{stdout}");
    std::fs::write(&cfg, "bogus-key = 1\n").unwrap();
    let o = run(&["eval", "--config", cfg.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("bogus-key"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn eval_without_backend_or_with_unknown_bench_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "gsm.jsonl", &[r#####"{"question":"q","answer":"#### 1"}"#####]);
    let o = run(&["eval", "--data", &data, "--out", "x"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("choose a backend"));
    let o = run(&["eval", "--data", &data, "--bench", "nope", "--responses", &data, "--out", "x"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown benchmark"));
}

/// The benchmark's own reference solutions, graded as responses, score 100% on GSM8K test
/// (the self-check of issue 3, through the whole eval path).
#[test]
fn eval_gsm8k_reference_solutions_score_100() {
    let Some(root) = shared_data("eval_gsm8k_reference_solutions_score_100") else { return };
    let data = root.join("benchmarks/gsm8k_test.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let resp = dir.path().join("resp.jsonl");
    let mut f = std::fs::File::create(&resp).unwrap();
    for (i, l) in std::fs::read_to_string(&data).unwrap().lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        writeln!(f, "{}", serde_json::json!({"id": format!("gsm8k-{}", i + 1), "response": v["answer"]})).unwrap();
    }
    let out = dir.path().join("out");
    let stdout = ok(&["eval", "--data", data.to_str().unwrap(), "--responses", resp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(stdout.contains("| greedy accuracy | 100.0 |"), "{stdout}");
}
