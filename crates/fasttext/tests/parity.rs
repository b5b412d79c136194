//! Parity with fastText itself: models trained by fastText (scripts/make_fasttext_fixture.py,
//! committed in testdata/) must load here and give the same labels, in the same order, with
//! probabilities within 1e-5, for every loss, for char n-grams and for a quantized `.ftz`;
//! `test` must give the same N/P@k/R@k. A model written back by us must be byte-identical.
use mathforge_fasttext::{Model, PredictBuf};
use serde_json::Value;
use std::path::PathBuf;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn reference() -> Value {
    let text = std::fs::read_to_string(testdata("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("valid json")
}

fn check_predictions(model: &Model, probes: &[Value], expected: &[Value], k: i32, th: f32, what: &str) {
    let mut buf = PredictBuf::default();
    for (probe, exp) in probes.iter().zip(expected) {
        let text = probe.as_str().unwrap();
        let got = model.predict_line(text.as_bytes(), true, k, th, &mut buf).unwrap();
        let labels: Vec<String> = got.iter().map(|p| model.label(p.1)).collect();
        let want: Vec<String> =
            exp["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect();
        let want_p: Vec<f64> = exp["probs"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()).collect();
        assert_eq!(labels, want, "{what}: labels for {text:?}");
        for ((_, (s, _)), w) in labels.iter().zip(&got).zip(&want_p) {
            let p = s.exp() as f64;
            assert!((p - w).abs() < 1e-5, "{what}: prob for {text:?}: ours {p} fastText {w}");
        }
    }
}

#[test]
fn fasttext_models_predict_identically() {
    let r = reference();
    let probes = r["probes"].as_array().unwrap();
    let models = r["models"].as_object().unwrap();
    assert_eq!(models.len(), 6);
    for (name, exp) in models {
        let model = Model::load(testdata(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.dict.nwords() as u64, exp["nwords"].as_u64().unwrap(), "{name}: nwords");
        let labels: Vec<String> =
            exp["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect();
        assert_eq!(model.labels(), labels, "{name}: label order");
        assert_eq!(name.ends_with(".ftz"), model.is_quantized());
        check_predictions(&model, probes, exp["all"].as_array().unwrap(), -1, 0.0, name);
        check_predictions(&model, probes, exp["k2_t0.3"].as_array().unwrap(), 2, 0.3, name);
        for (key, k) in [("test_k1", 1), ("test_k2", 2)] {
            let t = &exp[key];
            let f = std::fs::File::open(testdata("test.txt")).unwrap();
            let m = model.test(std::io::BufReader::new(f), k, 0.0).unwrap();
            assert_eq!(m.nexamples, t[0].as_u64().unwrap(), "{name} {key}: N");
            assert!((m.precision() - t[1].as_f64().unwrap()).abs() < 1e-9, "{name} {key}: P");
            assert!((m.recall() - t[2].as_f64().unwrap()).abs() < 1e-9, "{name} {key}: R");
        }
    }
}

#[test]
fn rewriting_a_fasttext_file_is_byte_identical() {
    for name in ["softmax_ng2.bin", "hs.bin", "char.bin", "softmax_ng2.ftz"] {
        let original = std::fs::read(testdata(name)).unwrap();
        let model = Model::read(&original[..], name).unwrap();
        let mut ours = Vec::new();
        model.write(&mut ours).unwrap();
        assert!(ours == original, "{name}: rewritten file differs ({} vs {} bytes)", ours.len(), original.len());
    }
}

#[test]
fn truncated_and_foreign_files_are_errors_not_panics() {
    let original = std::fs::read(testdata("softmax_ng2.bin")).unwrap();
    for cut in [0, 3, 8, 40, 100, original.len() / 2, original.len() - 1] {
        let err = Model::read(&original[..cut], "cut.bin").unwrap_err().to_string();
        assert!(err.contains("cut.bin"), "{err}");
    }
    let mut bad = original.clone();
    bad[0] ^= 0xff;
    assert!(Model::read(&bad[..], "bad.bin").unwrap_err().to_string().contains("magic"));
}
