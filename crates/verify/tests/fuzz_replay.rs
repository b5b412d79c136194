//! Replays the committed fuzz inputs (`testdata/fuzz/*`, one file per input: reference, a NUL
//! byte, response) through the same checks as the `grade` fuzz target (`fuzz/`), so a crash
//! found once stays fixed on stable Rust without cargo-fuzz.
use mathforge_verify::{grade, parse_answer, parse_canonical, Config};
use std::path::Path;

#[test]
fn replay_fuzz_inputs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("testdata/fuzz exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let data = std::fs::read(&path).expect("read input");
        let text = String::from_utf8_lossy(&data);
        let (reference, response) = text.split_once('\0').unwrap_or((&text, &text));
        let _ = grade(reference, response, &Config::lenient());
        let _ = grade(reference, response, &Config::strict());
        if let Ok(e) = parse_answer(reference) {
            let printed = e.to_string();
            assert_eq!(
                parse_canonical(&printed).ok(),
                Some(e),
                "{}: round trip via {printed:?}",
                path.display()
            );
        }
        n += 1;
    }
    assert!(n > 0, "no fuzz inputs in {}", dir.display());
}
