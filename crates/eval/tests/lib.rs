//! Integration tests of the harness against real backends: a tiny OpenAI-compatible HTTP server
//! on 127.0.0.1 (std `TcpListener`, answering like vLLM, including a 500 before a success), a
//! responses file, and real `python3` for tool rounds and program-of-thought.
mod server;

use mathforge_eval::http::{Api, HttpBackend, HttpConfig};
use mathforge_eval::responses::ResponsesBackend;
use mathforge_eval::{evaluate, write_run, EvalConfig, Progress};
use mathforge_tasks::{Example, PromptFormat, Task};
use server::{Reply, Server};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Three sums; `What is 4+4?` has subject "hard", the others "easy".
struct Sums(Vec<Example>);

fn sums() -> Sums {
    let mk = |id: &str, q: &str, r: &str, subj: &str| {
        let mut e = Example::new(id, q, r);
        e.subject = Some(subj.into());
        e.level = Some(if subj == "hard" { "2" } else { "1" }.into());
        e
    };
    Sums(vec![
        mk("a", "What is 2+3?", "5", "easy"),
        mk("b", "What is 1+1?", "2", "easy"),
        mk("c", "What is 4+4?", "8", "hard"),
    ])
}

impl Task for Sums {
    fn name(&self) -> &str {
        "sums"
    }
    fn examples(&self) -> &[Example] {
        &self.0
    }
}

fn no_progress(_: Progress) {}

fn fast_http(url: &str, api: Api) -> HttpConfig {
    let mut c = HttpConfig::new(url, "tiny");
    c.api = api;
    c.backoff_ms = 10;
    c.max_retries = 2;
    c.timeout_s = 5.0;
    c.concurrency = 2;
    c
}

/// Answers `What is A+B?` correctly except for `4+4` (answers 9).
fn adder(prompt: &str) -> String {
    let q = prompt.rsplit("What is ").next().unwrap_or("");
    let expr: String = q.chars().take_while(|c| c.is_ascii_digit() || *c == '+').collect();
    let sum: u32 = expr.split('+').filter_map(|x| x.parse::<u32>().ok()).sum();
    let sum = if expr == "4+4" { 9 } else { sum };
    format!(" We add the numbers. The answer is $\\boxed{{{sum}}}$.")
}

#[test]
fn completions_endpoint_with_a_500_then_success() {
    let first_b = AtomicUsize::new(0);
    let server = Server::start(move |req| {
        let prompt = req.body["prompt"].as_str().unwrap_or("").to_string();
        assert!(prompt.starts_with("User: What is"), "instruct format: {prompt}");
        assert_eq!(req.path, "/v1/completions");
        if prompt.contains("1+1") && first_b.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::Status(500, "{\"error\":\"overloaded\"}".into());
        }
        Reply::Texts(vec![adder(&prompt)])
    });
    let backend = HttpBackend::new(fast_http(&server.url(), Api::Completions));
    let task = sums();
    let calls = AtomicUsize::new(0);
    let run = evaluate(&task, &backend, &EvalConfig::default(), &|p: Progress| {
        calls.fetch_add(1, Ordering::SeqCst);
        assert!(p.done <= p.total);
    })
    .unwrap();
    assert!(calls.load(Ordering::SeqCst) >= 2);
    assert_eq!(backend.retries(), 1, "the 500 was retried once");
    assert_eq!(run.summary.failed_samples, 0);
    assert!((run.summary.accuracy - 2.0 / 3.0).abs() < 1e-9);
    let by: Vec<_> = run.summary.by_subject.iter().map(|r| (r.name.as_str(), r.accuracy)).collect();
    assert_eq!(by, vec![("easy", 1.0), ("hard", 0.0)]);
    let c = run.samples.iter().find(|s| s.id == "c").unwrap();
    assert_eq!((c.extracted.as_deref(), c.correct), (Some("9"), false));
}

#[test]
fn endpoint_that_keeps_failing_is_recorded_and_the_run_goes_on() {
    let server = Server::start(|req| {
        let prompt = req.body["prompt"].as_str().unwrap_or("").to_string();
        if prompt.contains("2+3") {
            Reply::Status(503, "down".into())
        } else {
            Reply::Texts(vec![adder(&prompt)])
        }
    });
    let backend = HttpBackend::new(fast_http(&server.url(), Api::Completions));
    let run = evaluate(&sums(), &backend, &EvalConfig::default(), &no_progress).unwrap();
    assert_eq!(run.summary.failed_samples, 1);
    let a = run.samples.iter().find(|s| s.id == "a").unwrap();
    assert!(!a.correct && a.failed.as_deref().unwrap().contains("HTTP 503"), "{a:?}");
    assert_eq!(backend.retries(), 2);
    assert_eq!(run.samples.iter().filter(|s| s.correct).count(), 1);
}

#[test]
fn chat_endpoint_with_n_samples_gives_maj_and_pass_at_k() {
    let server = Server::start(|req| {
        assert_eq!(req.path, "/v1/chat/completions");
        let content = req.body["messages"][0]["content"].as_str().unwrap_or("").to_string();
        let n = req.body["n"].as_u64().unwrap_or(1) as usize;
        assert_eq!(n, 4);
        // Per question: 2+3 -> [5, 5.0, 6, none] ; 1+1 -> [3, 2, 3, 2] ; 4+4 -> all wrong.
        let texts: Vec<String> = if content.contains("2+3") {
            vec!["\\boxed{5}", "\\boxed{5.0}", "\\boxed{6}", "I do not know."]
        } else if content.contains("1+1") {
            vec!["\\boxed{3}", "\\boxed{2}", "\\boxed{3}", "\\boxed{2}"]
        } else {
            vec!["\\boxed{9}"; 4]
        }
        .into_iter()
        .map(String::from)
        .collect();
        Reply::Chat(texts)
    });
    let backend = HttpBackend::new(fast_http(&server.url(), Api::Chat));
    let cfg = EvalConfig { n: 4, temperature: 0.7, ..Default::default() };
    let run = evaluate(&sums(), &backend, &cfg, &no_progress).unwrap();
    let s = &run.summary;
    assert_eq!(s.samples, 12);
    // maj@4: a -> 5 (5 and 5.0 are one class), b -> tie 3 vs 2, 3 came first -> wrong, c -> wrong.
    assert!((s.maj_at_k.unwrap() - 1.0 / 3.0).abs() < 1e-9, "{s:?}");
    // pass@1 = mean c/n = (2/4 + 2/4 + 0) / 3; pass@4 = (1 + 1 + 0) / 3.
    assert!((s.pass_at_k["pass@1"] - 1.0 / 3.0).abs() < 1e-9);
    assert!((s.pass_at_k["pass@4"] - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(s.no_answer_samples, 1);
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &run).unwrap();
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(md.contains("| maj@4 | 33.3 |") && md.contains("## By subject"), "{md}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["samples"], 12);
    let lines = std::fs::read_to_string(dir.path().join("samples.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 12);
    assert!(lines.lines().next().unwrap().contains("\"extracted\""));
}

#[test]
fn tool_integrated_round_runs_python_and_continues() {
    let server = Server::start(|req| {
        let prompt = req.body["prompt"].as_str().unwrap_or("").to_string();
        assert!(req.body["stop"].as_array().unwrap().iter().any(|s| s == "```output"));
        if let Some(i) = prompt.find("```output\n") {
            // Continuation: the output block is in the prompt; answer from it.
            let out: String = prompt[i + 10..].lines().next().unwrap_or("").to_string();
            Reply::Texts(vec![format!("The program printed {out}, so the answer is $\\boxed{{{out}}}$.")])
        } else {
            let q = prompt.rsplit("What is ").next().unwrap_or("");
            let expr: String = q.chars().take_while(|c| c.is_ascii_digit() || *c == '+').collect();
            Reply::Texts(vec![format!("Let me compute it.\n```python\nprint({expr})\n```")])
        }
    });
    let backend = HttpBackend::new(fast_http(&server.url(), Api::Completions));
    let cfg = EvalConfig { prompt_format: PromptFormat::Tir, ..Default::default() };
    let run = evaluate(&sums(), &backend, &cfg, &no_progress).unwrap();
    assert_eq!(run.summary.accuracy, 1.0, "{:#?}", run.samples);
    assert_eq!(run.summary.tool_calls, 3);
    let a = &run.samples[0];
    assert!(a.response.contains("```python\nprint(2+3)\n```\n```output\n5\n```\nThe program printed 5"), "{}", a.response);
}

fn responses_file(lines: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("responses.jsonl");
    let mut f = std::fs::File::create(&p).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    (dir, p)
}

#[test]
fn responses_file_backend_grades_and_reports_bad_lines() {
    let (_d, p) = responses_file(&[
        r#"{"id":"a","response":"The answer is \\boxed{5}."}"#,
        r#"{"id":"b","responses":["so 2"]}"#,
        r#"{"id":"c","response":"\\boxed{8}"}"#,
    ]);
    let backend = ResponsesBackend::open(&p, false).unwrap();
    let run = evaluate(&sums(), &backend, &EvalConfig::default(), &no_progress).unwrap();
    assert_eq!(run.summary.accuracy, 1.0);

    let (_d, p) = responses_file(&[r#"{"id":"a","response":"\\boxed{5}"}"#, "{not json", r#"{"id":"b"}"#]);
    let err = ResponsesBackend::open(&p, false).err().unwrap().to_string();
    assert!(err.contains("responses.jsonl:2:"), "{err}");
    let backend = ResponsesBackend::open(&p, true).unwrap();
    assert_eq!(backend.skipped.len(), 2);
    assert!(backend.skipped[1].contains(":3:") && backend.skipped[1].contains("\"response\""), "{:?}", backend.skipped);
    // Missing responses are failed samples, not a stopped run.
    let run = evaluate(&sums(), &backend, &EvalConfig::default(), &no_progress).unwrap();
    assert_eq!((run.summary.failed_samples, run.samples.iter().filter(|s| s.correct).count()), (2, 1));
}

#[test]
fn program_of_thought_runs_the_program_and_grades_its_output() {
    let (_d, p) = responses_file(&[
        r#"{"id":"a","response":"```python\nprint(2+3)\n```"}"#,
        r#"{"id":"b","response":"```python\nx = 1 +\n```"}"#,
        r#"{"id":"c","response":"print(4*2)"}"#,
    ]);
    let backend = ResponsesBackend::open(&p, false).unwrap();
    let cfg = EvalConfig { prompt_format: PromptFormat::Pot, ..Default::default() };
    let run = evaluate(&sums(), &backend, &cfg, &no_progress).unwrap();
    let got: Vec<_> = run.samples.iter().map(|s| (s.correct, s.program_output.clone())).collect();
    assert_eq!(got, vec![(true, Some("5".into())), (false, None), (true, Some("8".into()))]);
    assert!(run.samples[1].reason.contains("SyntaxError"), "{}", run.samples[1].reason);
}

/// The local backend end to end on a tiny random checkpoint (HF layout + a BPE tokenizer trained
/// here): every problem gets `n` samples, sampling is reproducible, and grading runs (a random
/// model's answers are wrong, which is not what is tested).
#[test]
fn local_checkpoint_backend_generates_n_samples_reproducibly() {
    use mathforge_model::candle_core::{DType, Device};
    use mathforge_model::checkpoint::{init_model, save, SaveOptions};
    use mathforge_model::tokenizer::{train_bpe, BpeTrainConfig};
    let dir = tempfile::tempdir().unwrap();
    let texts = ["What is 2+3? The answer is 5.", "User: Please reason step by step.\n\nAssistant:", "boxed 1 2 3 4 5 6 7 8 9 0"];
    let tok = train_bpe(texts.iter().cycle().take(30), &BpeTrainConfig { vocab_size: 300, min_frequency: 1, max_token_length: Some(8) }).unwrap();
    tok.save_dir(dir.path(), Some(256)).unwrap();
    let cfg_json = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../model/testdata/hf_llama/config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg_json).unwrap();
    v["vocab_size"] = serde_json::json!(300);
    v["max_position_embeddings"] = serde_json::json!(256);
    v["bos_token_id"] = serde_json::json!(0);
    v["eos_token_id"] = serde_json::json!(1);
    let cfg = mathforge_model::Config::from_json_str(&v.to_string()).unwrap();
    let (model, _vars) = init_model(&cfg, 7, DType::F32, &Device::Cpu).unwrap();
    save(&model, dir.path(), &SaveOptions::default()).unwrap();

    let backend = mathforge_eval::local::LocalBackend::open(dir.path(), "cpu", 16).unwrap();
    let ecfg = EvalConfig { n: 2, temperature: 1.0, max_tokens: 6, ..Default::default() };
    let a = evaluate(&sums(), &backend, &ecfg, &no_progress).unwrap();
    assert_eq!(a.samples.len(), 6);
    assert_eq!(a.summary.failed_samples, 0, "{:?}", a.samples);
    let b = evaluate(&sums(), &backend, &ecfg, &no_progress).unwrap();
    let texts = |r: &mathforge_eval::EvalRun| r.samples.iter().map(|s| s.response.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&a), texts(&b));
    assert!(a.samples.iter().any(|s| !s.response.is_empty()));
}
