//! CLI tests for `mathforge fasttext`: fastText's flags in, fastText's output format out.
use crate::util::{ok, run};
use std::path::PathBuf;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fasttext/testdata").join(name)
}

#[test]
fn fasttext_train_predict_test_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let train = testdata("train.txt");
    ok(&[
        "fasttext", "supervised", "-input", train.to_str().unwrap(), "-output", out.to_str().unwrap(),
        "-dim", "16", "-wordNgrams", "2", "-bucket", "5000", "-epoch", "10", "-lr", "0.5", "-thread", "2",
        "-verbose", "0",
    ]);
    let bin = dir.path().join("m.bin");
    assert!(bin.exists() && dir.path().join("m.vec").exists());
    let vec = std::fs::read_to_string(dir.path().join("m.vec")).unwrap();
    let header: Vec<&str> = vec.lines().next().unwrap().split(' ').collect();
    assert_eq!(header[1], "16");
    assert_eq!(vec.lines().count() as u64, header[0].parse::<u64>().unwrap() + 1);

    let test = testdata("test.txt");
    let report = ok(&["fasttext", "test", bin.to_str().unwrap(), test.to_str().unwrap()]);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 3, "{report}");
    assert_eq!(lines[0], "N\t120");
    let p1: f64 = lines[1].strip_prefix("P@1\t").unwrap().parse().unwrap();
    assert!(p1 > 0.9, "P@1 {p1}");
    assert!(lines[2].starts_with("R@1\t"));

    // predict: one output line per input line, in order, labels only.
    let probe = dir.path().join("probe.txt");
    std::fs::write(&probe, "compute the integral of x squared\nthe weather was sunny and the team won\n\n").unwrap();
    let pred = ok(&["fasttext", "predict", bin.to_str().unwrap(), probe.to_str().unwrap()]);
    let pl: Vec<&str> = pred.lines().collect();
    assert_eq!(pl.len(), 3);
    assert_eq!(pl[0], "__label__math");
    assert_eq!(pl[1], "__label__other");

    // predict-prob with k = -1: every label with a probability; they sum to ~1 (+1e-5 each).
    let pp = ok(&["fasttext", "predict-prob", bin.to_str().unwrap(), probe.to_str().unwrap(), "-1"]);
    let first: Vec<&str> = pp.lines().next().unwrap().split(' ').collect();
    assert_eq!(first.len(), 6, "{pp}");
    let total: f64 = first.iter().skip(1).step_by(2).map(|p| p.parse::<f64>().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-3, "{total}");

    // A high threshold filters labels out (the line stays, empty).
    let th = ok(&["fasttext", "predict", bin.to_str().unwrap(), probe.to_str().unwrap(), "3", "1.01"]);
    assert_eq!(th, "\n\n\n");
}

#[test]
fn fasttext_predicts_a_model_made_by_fasttext_from_stdin() {
    use std::io::Write;
    let bin = testdata("softmax_ng2.bin");
    let mut child = crate::util::bin()
        .args(["fasttext", "predict-prob", bin.to_str().unwrap(), "-", "1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all("求解方程 3x+1=7 的解\n".as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.starts_with("__label__math 0."), "{s}");
}

#[test]
fn fasttext_bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.bin");
    std::fs::write(&fake, b"not a model").unwrap();
    let out = run(&["fasttext", "predict", fake.to_str().unwrap(), "-"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fake.bin") && err.contains("magic"), "{err}");

    let out = run(&["fasttext", "supervised", "-input", "x.txt", "-output", "m", "-bogus", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument: -bogus"));

    let nolabels = dir.path().join("nolabels.txt");
    std::fs::write(&nolabels, "just words\nno labels here\n").unwrap();
    let m = dir.path().join("m");
    let out = run(&["fasttext", "supervised", "-input", nolabels.to_str().unwrap(), "-output", m.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no labels"));
}
