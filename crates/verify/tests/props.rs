//! Property tests (proptest): grading never panics on arbitrary text, every parseable answer is
//! equivalent to itself, and parse → print → parse gives the same tree.
use mathforge_verify::{equivalent, grade, parse_answer, parse_canonical, Config};
use proptest::prelude::*;

/// Answer-like strings built from LaTeX and plain-text pieces.
fn answer() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        "[0-9]{1,4}",
        "[0-9]{1,3}\\.[0-9]{1,3}",
        "[a-z]",
        Just("\\pi".to_string()),
        Just("e".to_string()),
        Just("i".to_string()),
        Just("\\infty".to_string()),
        "[0-9]{1,2}".prop_map(|n| format!("\\sqrt{{{n}}}")),
        ("[0-9]{1,2}", "[1-9]{1,2}").prop_map(|(a, b)| format!("\\frac{{{a}}}{{{b}}}")),
    ];
    atom.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}+{b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}-{b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}\\cdot {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("\\frac{{{a}}}{{{b}}}")),
            (inner.clone(), "[0-3]").prop_map(|(a, n)| format!("({a})^{{{n}}}")),
            inner.clone().prop_map(|a| format!("\\sqrt{{{a}}}")),
            inner.clone().prop_map(|a| format!("-({a})")),
            inner.clone().prop_map(|a| format!("\\sin({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("\\{{{a}, {b}\\}}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} = {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} \\le {b}")),
            inner.clone().prop_map(|a| format!("{a}\\%")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn grading_never_panics(reference in "\\PC{0,40}", response in "\\PC{0,80}") {
        let _ = grade(&reference, &response, &Config::default());
        let _ = grade(&reference, &response, &Config::strict());
    }

    #[test]
    fn grading_latexish_noise_never_panics(reference in "[-+*/^_{}()\\[\\]\\\\a-z0-9,.=<>|$ ]{0,40}", response in "[-+*/^_{}()\\[\\]\\\\a-z0-9,.=<>|$ ]{0,60}") {
        let _ = grade(&reference, &response, &Config::default());
    }

    #[test]
    fn every_answer_equals_itself(a in answer()) {
        // Parseable answers only: undefined values (1/0) are equal to nothing.
        if let Ok(e) = parse_answer(&a) {
            let _ = e;
            let printed = parse_answer(&a).map(|e| e.to_string()).unwrap_or_default();
            prop_assert!(equivalent(&a, &a, &Config::default()), "{a} not equal to itself");
            let _ = printed;
        }
    }

    #[test]
    fn parse_print_parse_round_trips(a in answer()) {
        if let Ok(e) = parse_answer(&a) {
            let printed = e.to_string();
            let again = parse_canonical(&printed);
            prop_assert_eq!(again.as_ref().ok(), Some(&e), "printed as {}", printed);
        }
    }
}
