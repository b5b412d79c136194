//! Self-check on the shared benchmark files (skipped unless `MATHFORGE_SHARED_DATA` is set):
//! each benchmark's reference solutions must grade as correct against its reference answers.
use mathforge_io::shared::shared_data_file;
use mathforge_verify::{selfcheck, Config};

fn check(test: &str, rel: &str, min: f64) {
    let Some(path) = shared_data_file(test, rel) else { return };
    let rep = selfcheck::run(&path, &Config::default()).expect("self-check runs");
    for f in rep.failures.iter().take(20) {
        eprintln!(
            "{rel}:{}: reference {:?} extracted {:?}: {}",
            f.line, f.reference, f.extracted, f.reason
        );
    }
    assert!(
        rep.accuracy() >= min,
        "{rel}: {}/{} = {:.4} < {min}",
        rep.correct,
        rep.n,
        rep.accuracy()
    );
}

#[test]
fn selfcheck_gsm8k_test() {
    check("selfcheck_gsm8k_test", "benchmarks/gsm8k_test.jsonl", 1.0);
}

#[test]
fn selfcheck_math_test() {
    check("selfcheck_math_test", "benchmarks/math_test.jsonl", 0.998);
}

#[test]
fn selfcheck_math500() {
    check("selfcheck_math500", "benchmarks/math500_test.jsonl", 1.0);
}
