//! Every labelled case in `testdata/*.toml` gets its labelled verdict (see `cases.rs` for the
//! format). To look at one case: `cargo test -p mathforge-verify --test lib cases -- --nocapture`
//! prints the wrong ones with the grader's reason.
use mathforge_verify::cases::{load_dir, markdown, run, tally};
use std::path::Path;

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

#[test]
fn labelled_cases() {
    let cases = load_dir(&dir()).expect("load testdata");
    let mut names = std::collections::HashSet::new();
    for c in &cases {
        assert!(names.insert(c.name.clone()), "duplicate case name {}", c.name);
    }
    let out = run(&cases);
    let mut bad = Vec::new();
    for o in &out {
        match (&o.case.xfail, o.correct()) {
            (None, false) => bad.push(format!(
                "{}: ref {:?} resp {:?} -> extracted {:?}, equivalent {} ({}), expected {}",
                o.case.name,
                o.case.reference,
                o.case.response,
                o.grade.extracted,
                o.grade.equivalent,
                o.grade.reason,
                o.case.expected
            )),
            (Some(_), true) => {
                bad.push(format!("{}: marked xfail but now correct: remove the mark", o.case.name))
            }
            _ => {}
        }
    }
    eprintln!("{}", markdown(&out));
    assert!(bad.is_empty(), "{} wrong verdicts:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn labelled_set_is_large_and_balanced() {
    let cases = load_dir(&dir()).expect("load testdata");
    let t = tally(&run(&cases));
    let all = &t["all"];
    assert!(all.n >= 400, "only {} cases", all.n);
    assert!(all.negatives * 10 >= all.n * 3, "only {} of {} not equivalent", all.negatives, all.n);
}
