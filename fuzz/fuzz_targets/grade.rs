//! Fuzz target `grade`: any bytes, split at the first NUL into (reference, response), must grade
//! without panicking in both modes, and any answer that parses must print to text that parses
//! back (with `parse_canonical`: printed text is not human input to normalise) to the same tree
//! (the invariant the proptests check on generated answers).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mathforge_verify::{grade, parse_answer, parse_canonical, Config};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (reference, response) = text.split_once('\0').unwrap_or((&text, &text));
    let _ = grade(reference, response, &Config::lenient());
    let _ = grade(reference, response, &Config::strict());
    if let Ok(e) = parse_answer(reference) {
        let printed = e.to_string();
        assert_eq!(
            parse_canonical(&printed).ok(),
            Some(e),
            "round trip of {reference:?} via {printed:?}"
        );
    }
});
