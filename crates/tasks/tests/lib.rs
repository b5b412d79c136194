//! Integration tests on the real benchmark files in `shared/data/benchmarks` (skipped with a
//! printed reason when `MATHFORGE_SHARED_DATA` is unset; run with
//! `MATHFORGE_SHARED_DATA=/work/shared/data cargo test --release -p mathforge-tasks`).
use mathforge_io::shared::shared_data_file;
use mathforge_tasks::{read_bench, Bench};

/// Every benchmark file parses with no skipped record, is detected as the right benchmark, and
/// has the record count of the data README.
#[test]
fn every_shared_benchmark_reads_completely() {
    let files: [(&str, Bench, usize); 12] = [
        ("benchmarks/gsm8k_test.jsonl", Bench::Gsm8k, 1319),
        ("benchmarks/gsm8k_train.jsonl", Bench::Gsm8k, 7473),
        ("benchmarks/math_test.jsonl", Bench::Math, 5000),
        ("benchmarks/math500_test.jsonl", Bench::Math500, 500),
        ("benchmarks/deepseek_math_eval/gsm8k_test.jsonl", Bench::Gsm8k, 1319),
        ("benchmarks/deepseek_math_eval/cmath_test.jsonl", Bench::Cmath, 1098),
        ("benchmarks/deepseek_math_eval/mgsm_zh.jsonl", Bench::MgsmZh, 250),
        ("benchmarks/deepseek_math_eval/gaokao-mathcloze.jsonl", Bench::GaokaoMathcloze, 118),
        ("benchmarks/deepseek_math_eval/gaokao-mathqa.jsonl", Bench::GaokaoMathqa, 351),
        ("benchmarks/deepseek_math_eval/mmlu_stem_test.jsonl", Bench::MmluStem, 3018),
        ("benchmarks/deepseek_math_eval/sat_test.jsonl", Bench::Sat, 32),
        ("benchmarks/deepseek_math_eval/ocw_test.jsonl", Bench::Ocw, 272),
    ];
    for (rel, bench, count) in files {
        let Some(path) = shared_data_file("every_shared_benchmark_reads_completely", rel) else { return };
        let loaded = read_bench(&path, None, false).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(loaded.bench, bench, "{rel}");
        assert_eq!(loaded.examples.len(), count, "{rel}");
        assert!(loaded.examples.iter().all(|e| !e.reference.trim().is_empty()), "{rel}");
    }
}

/// The two GSM8K copies agree on every reference answer (same questions, same order).
#[test]
fn gsm8k_copies_agree() {
    let Some(a) = shared_data_file("gsm8k_copies_agree", "benchmarks/gsm8k_test.jsonl") else { return };
    let Some(b) = shared_data_file("gsm8k_copies_agree", "benchmarks/deepseek_math_eval/gsm8k_test.jsonl") else {
        return;
    };
    let a = read_bench(&a, None, false).unwrap().examples;
    let b = read_bench(&b, None, false).unwrap().examples;
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.reference, y.reference, "{}", x.question);
    }
}

/// MATH-500's `answer` field equals the last `\boxed{}` of its own solution for (nearly) every
/// record: the MATH reader's rule matches the curated answers.
#[test]
fn math500_answer_matches_last_boxed() {
    let Some(p) = shared_data_file("math500_answer_matches_last_boxed", "benchmarks/math500_test.jsonl") else { return };
    let ex = read_bench(&p, None, false).unwrap().examples;
    let same = ex
        .iter()
        .filter(|e| mathforge_tasks::answer::last_boxed(e.solution.as_deref().unwrap_or("")).as_deref() == Some(e.reference.as_str()))
        .count();
    // PRM800K normalised a few answers (spacing, `\dfrac`); string equality is a lower bound.
    assert!(same >= 450, "only {same}/500 equal");
}
