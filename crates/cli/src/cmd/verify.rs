//! `mathforge verify`: grade responses against reference answers with `mathforge-verify`
//! (issue #3 "Interfaces"). One pair from flags (JSON grade on stdout), a JSONL batch (input order
//! kept, all cores through rayon), the benchmark self-check, or the labelled-case report.
use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use mathforge_io::jsonl::{JsonlReader, JsonlWriter};
use mathforge_verify::{cases, grade, selfcheck, Config};
use rayon::prelude::*;
use std::path::PathBuf;

/// Flags of `mathforge verify`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  mathforge verify --reference '\\frac{1}{2}' --response 'The answer is $0.5$.'
  mathforge verify --input cases.jsonl --output graded.jsonl --skip-bad
  mathforge verify --self-check ../shared/data/benchmarks
  mathforge verify --cases crates/verify/testdata

Each input line is a JSON object with string fields `reference` (a final answer) and `response`
(a full model response); the output line is the same object plus `equivalent` (bool),
`extracted` (string or null) and `reason`.")]
pub struct Args {
    /// Reference final answer (with --response).
    #[arg(long, requires = "response")]
    reference: Option<String>,
    /// Model response to grade (with --reference).
    #[arg(long, requires = "reference")]
    response: Option<String>,
    /// JSONL file of {reference, response} objects (.jsonl, .jsonl.gz, .jsonl.zst).
    #[arg(long, requires = "output", conflicts_with_all = ["reference", "self_check", "cases"])]
    input: Option<PathBuf>,
    /// Where to write the graded JSONL (written atomically).
    #[arg(long, requires = "input")]
    output: Option<PathBuf>,
    /// Strict mode (RL rewards): an explicit final-answer marker is required.
    #[arg(long)]
    strict: bool,
    /// Skip malformed input lines (counted and reported) instead of stopping at the first.
    #[arg(long)]
    skip_bad: bool,
    /// Worker threads for --input (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Self-check: grade the reference solutions of gsm8k_test.jsonl, math_test.jsonl and
    /// math500_test.jsonl found in DIR against their reference answers.
    #[arg(long, value_name = "DIR")]
    self_check: Option<PathBuf>,
    /// Grade the labelled cases (*.toml) in DIR and print the accuracy report (markdown).
    #[arg(long, value_name = "DIR")]
    cases: Option<PathBuf>,
}

/// Run `mathforge verify`.
pub fn run(args: Args) -> Result<()> {
    let cfg = if args.strict { Config::strict() } else { Config::lenient() };
    if let (Some(r), Some(s)) = (&args.reference, &args.response) {
        let g = grade(r, s, &cfg);
        println!("{}", serde_json::to_string(&g)?);
        return Ok(());
    }
    if let (Some(input), Some(output)) = (&args.input, &args.output) {
        return batch(input, output, &cfg, args.skip_bad, args.threads);
    }
    if let Some(dir) = &args.self_check {
        return self_check(dir, &cfg);
    }
    if let Some(dir) = &args.cases {
        let cs =
            cases::load_dir(dir).with_context(|| format!("reading cases in {}", dir.display()))?;
        print!("{}", cases::markdown(&cases::run(&cs)));
        return Ok(());
    }
    bail!("nothing to do: give --reference and --response, --input and --output, --self-check DIR or --cases DIR (see --help)")
}

/// One input line: the parsed object, or why it is bad.
type Line = (u64, std::result::Result<serde_json::Map<String, serde_json::Value>, String>);

fn parse_line(path: &std::path::Path, rec: mathforge_io::jsonl::Record) -> Line {
    let line = rec.line;
    let obj = match rec.value {
        Err(e) => Err(format!("{e}")),
        Ok(serde_json::Value::Object(m)) => {
            let missing: Vec<&str> = ["reference", "response"]
                .into_iter()
                .filter(|f| !m.get(*f).is_some_and(|v| v.is_string()))
                .collect();
            if missing.is_empty() {
                Ok(m)
            } else {
                Err(format!(
                    "{}:{line}: missing string field(s) {}",
                    path.display(),
                    missing.join(", ")
                ))
            }
        }
        Ok(_) => Err(format!("{}:{line}: not a JSON object", path.display())),
    };
    (line, obj)
}

fn batch(
    input: &std::path::Path,
    output: &std::path::Path,
    cfg: &Config,
    skip_bad: bool,
    threads: Option<usize>,
) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.unwrap_or(0)).build()?;
    let reader =
        JsonlReader::open(input).with_context(|| format!("opening {}", input.display()))?;
    let mut writer =
        JsonlWriter::create(output).with_context(|| format!("creating {}", output.display()))?;
    let pb = crate::util::progress(0, "verify");
    let started = std::time::Instant::now();
    let (mut n, mut bad, mut correct) = (0u64, 0u64, 0u64);
    let mut lines = reader.map(|r| parse_line(input, r));
    // Chunks keep memory bounded and let rayon grade a chunk in parallel while the order of
    // lines is preserved.
    loop {
        let chunk: Vec<Line> = lines.by_ref().take(8192).collect();
        if chunk.is_empty() {
            break;
        }
        let graded: Vec<_> = pool.install(|| {
            chunk
                .into_par_iter()
                .map(|(line, obj)| {
                    obj.map(|mut m| {
                        let r = m.get("reference").and_then(|v| v.as_str()).unwrap_or_default();
                        let s = m.get("response").and_then(|v| v.as_str()).unwrap_or_default();
                        let g = grade(r, s, cfg);
                        m.insert("equivalent".into(), g.equivalent.into());
                        m.insert(
                            "extracted".into(),
                            g.extracted.map_or(serde_json::Value::Null, Into::into),
                        );
                        m.insert("reason".into(), g.reason.into());
                        m
                    })
                    .map_err(|e| (line, e))
                })
                .collect()
        });
        for g in graded {
            match g {
                Ok(m) => {
                    n += 1;
                    correct +=
                        u64::from(m.get("equivalent").and_then(|v| v.as_bool()).unwrap_or(false));
                    writer.write(&serde_json::Value::Object(m))?;
                }
                Err((line, e)) => {
                    if !skip_bad {
                        bail!("{e} (line {line}; use --skip-bad to skip malformed lines)");
                    }
                    bad += 1;
                    tracing::warn!("skipping {}:{line}: {e}", input.display());
                }
            }
            pb.inc(1);
        }
    }
    writer.finish()?;
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "graded {n} lines ({correct} equivalent, {:.2}%) in {secs:.2} s ({:.0} lines/s), skipped {bad} malformed; wrote {}",
        100.0 * correct as f64 / n.max(1) as f64,
        n as f64 / secs.max(1e-9),
        output.display()
    );
    Ok(())
}

fn self_check(dir: &std::path::Path, cfg: &Config) -> Result<()> {
    let targets =
        [("gsm8k_test.jsonl", 1.0), ("math_test.jsonl", 0.998), ("math500_test.jsonl", 1.0)];
    let mut found = 0;
    println!("| file | records | graded correct | accuracy | target |\n|---|---:|---:|---:|---:|");
    let mut misses = Vec::new();
    for (name, target) in targets {
        let path = dir.join(name);
        if !path.exists() {
            eprintln!("skipping {}: not found", path.display());
            continue;
        }
        found += 1;
        let rep = selfcheck::run(&path, cfg)
            .with_context(|| format!("self-check of {}", path.display()))?;
        println!(
            "| {name} | {} | {} | {:.2}% | {:.1}% |",
            rep.n,
            rep.correct,
            100.0 * rep.accuracy(),
            100.0 * target
        );
        for f in &rep.failures {
            misses.push(format!(
                "{name}:{}: reference `{}`, extracted `{}`: {}",
                f.line,
                f.reference,
                f.extracted.as_deref().unwrap_or("-"),
                f.reason
            ));
        }
    }
    if found == 0 {
        bail!(
            "no benchmark files (gsm8k_test.jsonl, math_test.jsonl, math500_test.jsonl) in {}",
            dir.display()
        );
    }
    if !misses.is_empty() {
        println!("\nNot recognised as correct:\n");
        for m in misses {
            println!("- {m}");
        }
    }
    Ok(())
}
