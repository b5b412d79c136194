//! `mathforge fasttext ...`: the fastText command line (single-dash flags, same output format),
//! backed by `mathforge-fasttext`. Parsed by hand because fastText's flags are `-camelCase`
//! with values, which clap does not model; unknown flags are errors, as in fastText.
//!
//! Verbs: `supervised` (writes `<output>.bin` and `<output>.vec`), `predict`, `predict-prob`,
//! `test`. Prediction prints one line per input line: labels separated by spaces, each
//! followed by its probability for `predict-prob`; `test` prints `N`, `P@k`, `R@k`.
use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use mathforge_fasttext::{format::fmt_g, Args as FtArgs, LossName, Model, PredictBuf};
use rayon::prelude::*;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

const USAGE: &str = "\
usage: mathforge fasttext <command> <args>

The commands supported by mathforge fasttext are:

  supervised      train a supervised classifier
  test            evaluate a supervised classifier
  predict         predict most likely labels
  predict-prob    predict most likely labels with probabilities

Examples:
  mathforge fasttext supervised -input train.txt -output model -dim 256 -lr 0.1 \\
      -wordNgrams 3 -minCount 3 -epoch 3 -thread 8
  mathforge fasttext predict-prob model.bin pages.txt 2
  cat pages.txt | mathforge fasttext predict model.bin - 1 0.5
  mathforge fasttext test model.bin valid.txt 1
";

const SUPERVISED_USAGE: &str = "\
usage: mathforge fasttext supervised -input <path> -output <path> [flags]

  -input          training file path (lines like `__label__math some text`)
  -output         output file path (writes <output>.bin and <output>.vec)
  -lr             learning rate [0.1]
  -lrUpdateRate   change the rate of updates for the learning rate [100]
  -dim            size of word vectors [100]
  -ws             size of the context window [5]
  -epoch          number of epochs [5]
  -minCount       minimal number of word occurences [1]
  -minCountLabel  minimal number of label occurences [0]
  -neg            number of negatives sampled [5]
  -wordNgrams     max length of word ngram [1]
  -loss           loss function {ns, hs, softmax, ova} [softmax]
  -bucket         number of buckets [2000000]
  -minn           min length of char ngram [0]
  -maxn           max length of char ngram [0]
  -thread         number of threads [12]
  -t              sampling threshold [0.0001]
  -label          labels prefix [__label__]
  -verbose        verbosity level [2]
  -seed           random generator seed [0]

Example (the DeepSeekMath classifier):
  mathforge fasttext supervised -input train.txt -output model -dim 256 -lr 0.1 \\
      -wordNgrams 3 -minCount 3 -epoch 3 -thread 8
";

const PREDICT_USAGE: &str = "\
usage: mathforge fasttext predict[-prob] <model> <test-data> [<k>] [<th>]

  <model>      model filename (.bin or .ftz)
  <test-data>  test data filename (if -, read from stdin)
  <k>          (optional; 1 by default) predict top k labels (-1: all labels)
  <th>         (optional; 0.0 by default) probability threshold

Example:
  mathforge fasttext predict-prob model.bin pages.txt 2 0.1
";

const TEST_USAGE: &str = "\
usage: mathforge fasttext test <model> <test-data> [<k>] [<th>]

  <model>      model filename
  <test-data>  test data filename (if -, read from stdin)
  <k>          (optional; 1 by default) predict top k labels
  <th>         (optional; 0.0 by default) probability threshold

Example:
  mathforge fasttext test model.bin valid.txt 1
";

/// Raw arguments after `mathforge fasttext`, e.g. `supervised -input F -output M`.
#[derive(ClapArgs)]
#[command(after_help = USAGE, disable_help_flag = true)]
pub struct Args {
    /// The fastText command and its flags (run `mathforge fasttext` for the list).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Run `mathforge fasttext`.
pub fn run(args: Args) -> Result<()> {
    let a = args.args;
    let Some(cmd) = a.first() else {
        eprint!("{USAGE}");
        bail!("missing command");
    };
    match cmd.as_str() {
        "supervised" => supervised(&a[1..]),
        "predict" | "predict-prob" => predict(&a[1..], cmd == "predict-prob"),
        "test" => test(&a[1..]),
        "help" | "-h" | "--help" | "-help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T> {
    v.parse().map_err(|_| anyhow::anyhow!("{flag}: `{v}` is not a valid number"))
}

/// Parse `-flag value` pairs into fastText args plus the input/output paths.
fn parse_supervised(rest: &[String]) -> Result<(FtArgs, PathBuf, PathBuf)> {
    let mut a = FtArgs::supervised();
    let (mut input, mut output) = (None, None);
    let mut i = 0;
    while i < rest.len() {
        let flag = rest[i].as_str();
        if matches!(flag, "-h" | "-help" | "--help") {
            print!("{SUPERVISED_USAGE}");
            std::process::exit(0);
        }
        let Some(v) = rest.get(i + 1) else {
            bail!("{flag}: missing value\n\n{SUPERVISED_USAGE}");
        };
        match flag {
            "-input" => input = Some(PathBuf::from(v)),
            "-output" => output = Some(PathBuf::from(v)),
            "-lr" => a.lr = num(flag, v)?,
            "-lrUpdateRate" => a.lr_update_rate = num(flag, v)?,
            "-dim" => a.dim = num(flag, v)?,
            "-ws" => a.ws = num(flag, v)?,
            "-epoch" => a.epoch = num(flag, v)?,
            "-minCount" => a.min_count = num(flag, v)?,
            "-minCountLabel" => a.min_count_label = num(flag, v)?,
            "-neg" => a.neg = num(flag, v)?,
            "-wordNgrams" => a.word_ngrams = num(flag, v)?,
            "-loss" => {
                a.loss = LossName::parse(v)
                    .with_context(|| format!("-loss: unknown loss `{v}` (softmax, hs, ns, ova)"))?
            }
            "-bucket" => a.bucket = num(flag, v)?,
            "-minn" => a.minn = num(flag, v)?,
            "-maxn" => a.maxn = num(flag, v)?,
            "-thread" => a.thread = num(flag, v)?,
            "-t" => a.t = num(flag, v)?,
            "-label" => a.label = v.clone(),
            "-verbose" => a.verbose = num(flag, v)?,
            "-seed" => a.seed = num(flag, v)?,
            _ => bail!("unknown argument: {flag}\n\n{SUPERVISED_USAGE}"),
        }
        i += 2;
    }
    let input = input.with_context(|| format!("-input is required\n\n{SUPERVISED_USAGE}"))?;
    let output = output.with_context(|| format!("-output is required\n\n{SUPERVISED_USAGE}"))?;
    if input.as_os_str() == "-" {
        bail!("cannot use stdin for training (fastText reads the file once per thread)");
    }
    Ok((a, input, output))
}

/// fastText's progress line (`printInfo`).
fn info_line(p: &mathforge_fasttext::TrainProgress) -> String {
    let eta = p.eta_secs as i64;
    format!(
        "Progress: {:5.1}% words/sec/thread: {:7} lr: {:9.6} avg.loss: {:9.6} ETA: {:3}h{:2}m",
        p.progress * 100.0,
        p.words_per_sec_per_thread as i64,
        p.lr,
        p.loss,
        eta / 3600,
        (eta % 3600) / 60
    )
}

fn supervised(rest: &[String]) -> Result<()> {
    if rest.is_empty() {
        print!("{SUPERVISED_USAGE}");
        bail!("missing -input and -output");
    }
    let (args, input, output) = parse_supervised(rest)?;
    let verbose = args.verbose;
    let on_dict = |d: &mathforge_fasttext::DictStats| {
        if verbose > 1 {
            eprintln!("Read {}M words", d.ntokens / 1_000_000);
            eprintln!("Number of words:  {}", d.nwords);
            eprintln!("Number of labels: {}", d.nlabels);
        }
    };
    let on_progress = |p: &mathforge_fasttext::TrainProgress| {
        if verbose > 1 && p.progress < 1.0 {
            eprint!("\r{}", info_line(p));
        }
    };
    let trained = mathforge_fasttext::train(&args, &input, &on_dict, &on_progress)
        .with_context(|| format!("training on {}", input.display()))?;
    if verbose > 0 {
        eprintln!("\r{}", info_line(&trained.last));
    }
    let bin = with_suffix(&output, ".bin");
    trained.model.save(&bin).with_context(|| format!("saving {}", bin.display()))?;
    let vec = with_suffix(&output, ".vec");
    trained.model.save_vectors(&vec).with_context(|| format!("saving {}", vec.display()))?;
    Ok(())
}

fn with_suffix(p: &std::path::Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// `<model> <data> [k] [th]`.
fn parse_eval(rest: &[String], usage: &str) -> Result<(PathBuf, String, i32, f32)> {
    if rest.len() < 2 || rest.len() > 4 {
        eprint!("{usage}");
        bail!("expected <model> <test-data> [<k>] [<th>]");
    }
    let k = match rest.get(2) {
        Some(v) => num("k", v)?,
        None => 1,
    };
    if k <= 0 && k != -1 {
        bail!("k needs to be 1 or higher (or -1 for all labels)");
    }
    let th = match rest.get(3) {
        Some(v) => num("threshold", v)?,
        None => 0.0,
    };
    Ok((PathBuf::from(&rest[0]), rest[1].clone(), k, th))
}

fn open_input(name: &str) -> Result<Box<dyn BufRead>> {
    if name == "-" {
        Ok(Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())))
    } else {
        let f = std::fs::File::open(name).with_context(|| format!("input file {name} cannot be opened"))?;
        Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
    }
}

fn predict(rest: &[String], with_prob: bool) -> Result<()> {
    let (model_path, data, k, th) = parse_eval(rest, PREDICT_USAGE)?;
    let model = Model::load(&model_path).with_context(|| format!("loading {}", model_path.display()))?;
    if model.args.model != mathforge_fasttext::ModelName::Sup {
        bail!("{}: model needs to be supervised for prediction", model_path.display());
    }
    let mut reader = open_input(&data)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    // Lines are predicted in batches across all cores; output order follows input order.
    const BATCH: usize = 8192;
    let mut batch: Vec<(Vec<u8>, bool)> = Vec::with_capacity(BATCH);
    let mut done = false;
    while !done {
        batch.clear();
        while batch.len() < BATCH {
            let mut line = Vec::new();
            let n = reader.read_until(b'\n', &mut line).with_context(|| format!("reading {data}"))?;
            if n == 0 {
                done = true;
                break;
            }
            let eos = line.last() == Some(&b'\n');
            if eos {
                line.pop();
            }
            batch.push((line, eos));
        }
        let rendered: Vec<Vec<u8>> = batch
            .par_iter()
            .map_init(PredictBuf::default, |buf, (line, eos)| {
                let preds = model.predict_line(line, *eos, k, th, buf).unwrap_or_default();
                let mut s = Vec::with_capacity(32 * preds.len() + 1);
                for (j, (score, id)) in preds.iter().enumerate() {
                    if j > 0 {
                        s.push(b' ');
                    }
                    s.extend_from_slice(model.dict.label(*id));
                    if with_prob {
                        s.push(b' ');
                        s.extend_from_slice(fmt_g(score.exp() as f64, 6).as_bytes());
                    }
                }
                s.push(b'\n');
                s
            })
            .collect();
        for r in &rendered {
            out.write_all(r)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn test(rest: &[String]) -> Result<()> {
    let (model_path, data, k, th) = parse_eval(rest, TEST_USAGE)?;
    let model = Model::load(&model_path).with_context(|| format!("loading {}", model_path.display()))?;
    let reader = open_input(&data)?;
    let meter = model.test(reader, k, th).with_context(|| format!("testing on {data}"))?;
    print!("{}", meter.report(k));
    Ok(())
}
