//! Python tool execution for program-of-thought and tool-integrated reasoning (DeepSeekMath §2.2.2
//! / §3.2.2 evaluate with a Python interpreter; the protocol follows DeepSeek-Math's
//! `evaluation/infer/run_tool_integrated_eval.py`, itself from ToRA, Gou et al. 2023).
//!
//! Each program runs as `python3 main.py` in a fresh temporary directory with:
//! * a wall-clock timeout (the whole process group is killed),
//! * `RLIMIT_CPU`, `RLIMIT_AS` (memory), `RLIMIT_FSIZE` and `RLIMIT_CORE=0` set in `pre_exec`,
//! * a cleared environment (only `PATH`, `HOME`=the temp dir, `LANG`), stdin from /dev/null,
//! * no network where the OS allows it: `unshare -n` (root) or `unshare -rn` (unprivileged user
//!   namespaces) when a probe shows it works, else the run goes on with network and
//!   [`Execution::network_isolated`] says so.
//!
//! Tool protocol (as DeepSeek-Math): generation stops at "```output"; the code is the last
//! ```python block with the earlier blocks prepended minus their `print(` lines; its stdout
//! (stripped) longer than 100 characters is cut to the first 50 + "..." + last 50; a program with
//! no output reports `Runtime errors: <last line of the traceback>` cut the same way; the
//! transcript gets "\n```output\n{result}\n```\n" and generation continues, for at most 2 rounds.
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Sandbox limits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PythonConfig {
    /// The interpreter.
    pub python: String,
    /// Wall-clock limit in seconds.
    pub timeout_s: f64,
    /// CPU-time limit in seconds (`RLIMIT_CPU`).
    pub cpu_s: u64,
    /// Address-space limit in bytes (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Largest file the program may write (`RLIMIT_FSIZE`).
    pub file_bytes: u64,
    /// At most this many bytes of stdout/stderr are kept.
    pub capture_bytes: usize,
    /// Try to cut network access with `unshare`.
    pub no_network: bool,
}

impl Default for PythonConfig {
    fn default() -> Self {
        PythonConfig {
            python: "python3".into(),
            // DeepSeek-Math gives an execution 15 s in its pool; we keep it a bit shorter.
            timeout_s: 10.0,
            cpu_s: 10,
            memory_bytes: 2 << 30,
            file_bytes: 16 << 20,
            capture_bytes: 1 << 20,
            no_network: true,
        }
    }
}

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum ExitKind {
    /// Exit status 0.
    Ok,
    /// Non-zero exit status or killed by a signal (e.g. `RLIMIT_CPU`'s SIGXCPU).
    Failed(String),
    /// Wall-clock timeout (process group killed).
    Timeout,
    /// The interpreter could not be started.
    SpawnFailed(String),
}

/// The result of one program.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Execution {
    /// Captured stdout (lossy UTF-8, at most `capture_bytes`).
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
    /// How it ended.
    pub exit: ExitKind,
    /// Whether the program ran without network access.
    pub network_isolated: bool,
}

/// Which `unshare` invocation cuts the network here (probed once per process).
fn unshare_prefix() -> Option<&'static [&'static str]> {
    static PROBE: OnceLock<Option<&'static [&'static str]>> = OnceLock::new();
    *PROBE.get_or_init(|| {
        const CANDIDATES: [&[&str]; 2] = [&["unshare", "-n"], &["unshare", "-r", "-n"]];
        CANDIDATES.into_iter().find(|c| {
            Command::new(c[0])
                .args(&c[1..])
                .arg("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    })
}

/// Whether [`run_python`] can isolate the network on this machine.
pub fn network_isolation_available() -> bool {
    unshare_prefix().is_some()
}

fn read_capped(mut r: impl Read, cap: usize) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            // Keep draining past the cap so the child never blocks on a full pipe.
            Ok(n) => {
                if buf.len() < cap {
                    let take = n.min(cap - buf.len());
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Run `code` with `python3` in a sandboxed subprocess.
pub fn run_python(code: &str, cfg: &PythonConfig) -> Execution {
    let fail = |msg: String| Execution {
        stdout: String::new(),
        stderr: msg.clone(),
        exit: ExitKind::SpawnFailed(msg),
        network_isolated: false,
    };
    let dir = match tempfile::Builder::new().prefix("mathforge-py-").tempdir() {
        Ok(d) => d,
        Err(e) => return fail(format!("cannot create a temp dir: {e}")),
    };
    let script = dir.path().join("main.py");
    if let Err(e) = std::fs::write(&script, code) {
        return fail(format!("cannot write {}: {e}", script.display()));
    }
    let prefix = if cfg.no_network { unshare_prefix() } else { None };
    let mut cmd = match prefix {
        Some(p) => {
            let mut c = Command::new(p[0]);
            c.args(&p[1..]).arg(&cfg.python);
            c
        }
        None => Command::new(&cfg.python),
    };
    cmd.arg("main.py")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()))
        .env("HOME", dir.path())
        .env("LANG", "C.UTF-8")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let limits = (cfg.cpu_s, cfg.memory_bytes, cfg.file_bytes);
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // libc calls (setpgid, setrlimit) on stack values.
    unsafe {
        cmd.pre_exec(move || {
            // Own process group, so a timeout kills everything the program spawned.
            libc::setpgid(0, 0);
            let set = |res, v: u64| {
                let lim = libc::rlimit { rlim_cur: v as libc::rlim_t, rlim_max: v as libc::rlim_t };
                libc::setrlimit(res, &lim)
            };
            set(libc::RLIMIT_CPU, limits.0);
            set(libc::RLIMIT_AS, limits.1);
            set(libc::RLIMIT_FSIZE, limits.2);
            set(libc::RLIMIT_CORE, 0);
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start {}: {e}", cfg.python)),
    };
    let cap = cfg.capture_bytes;
    let out = child.stdout.take().map(|s| std::thread::spawn(move || read_capped(s, cap)));
    let err = child.stderr.take().map(|s| std::thread::spawn(move || read_capped(s, cap)));
    let deadline = Instant::now() + Duration::from_secs_f64(cfg.timeout_s.max(0.01));
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                // SAFETY: plain syscall; the pid is our child's and its group id equals it.
                unsafe {
                    libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
                }
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    let exit = if timed_out {
        ExitKind::Timeout
    } else {
        match status {
            Some(st) if st.success() => ExitKind::Ok,
            Some(st) => ExitKind::Failed(match (st.code(), std::os::unix::process::ExitStatusExt::signal(&st)) {
                (Some(c), _) => format!("exit status {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => "unknown exit".into(),
            }),
            None => ExitKind::Failed("lost the child process".into()),
        }
    };
    Execution { stdout, stderr, exit, network_isolated: prefix.is_some() }
}

/// Cut `s` to the first 50 and last 50 characters around "..." when longer than 100
/// characters (DeepSeek-Math's tool-output rule; counted in characters, not bytes).
pub fn truncate_middle(s: &str) -> String {
    let n = s.chars().count();
    if n <= 100 {
        return s.to_string();
    }
    let head: String = s.chars().take(50).collect();
    let tail: String = s.chars().skip(n - 50).collect();
    format!("{head}...{tail}")
}

/// The text that goes inside the ```output block for an execution.
pub fn tool_output(exec: &Execution) -> String {
    let out = exec.stdout.trim();
    if !out.is_empty() {
        return truncate_middle(out);
    }
    let msg = match &exec.exit {
        ExitKind::Ok => return String::new(),
        ExitKind::Timeout => "TimeoutError: execution timed out".to_string(),
        ExitKind::SpawnFailed(m) => m.clone(),
        // The concise form: the last line of the traceback (`NameError: name 'x' is ...`).
        ExitKind::Failed(why) => {
            exec.stderr.lines().rev().find(|l| !l.trim().is_empty()).map(str::trim).unwrap_or(why).to_string()
        }
    };
    format!("Runtime errors: {}", truncate_middle(&msg))
}

/// The program to run for a transcript that ends with a closed ```python block: earlier blocks
/// (without their `print(` lines, keeping indented lines, imports and defs) followed by the last
/// block in full, so variables defined in earlier rounds exist. `None` when the transcript does
/// not end with a code block.
pub fn extract_tool_code(transcript: &str) -> Option<String> {
    if !transcript.trim_end().ends_with("```") {
        return None;
    }
    let blocks = python_blocks(transcript);
    let (last, earlier) = blocks.split_last()?;
    let mut code = Vec::new();
    for block in earlier {
        for line in block.lines() {
            let keep = line.starts_with("    ") || line.starts_with("import") || line.starts_with("def ") || !line.contains("print(");
            if keep {
                code.push(line);
            }
        }
    }
    let mut program = code.join("\n");
    program.push('\n');
    program.push_str(last);
    Some(program.trim().to_string())
}

/// The contents of every closed ```python block, in order (empty blocks dropped).
pub fn python_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("```python") {
        let body = &rest[i + "```python".len()..];
        let Some(end) = body.find("```") else { break };
        let code = body[..end].trim();
        if !code.is_empty() {
            out.push(code.to_string());
        }
        rest = &body[end + 3..];
    }
    out
}

/// The program of a program-of-thought response: its last ```python block, or the whole
/// response when it has no fences (base models prompted with code often answer bare code).
pub fn pot_program(response: &str) -> String {
    python_blocks(response).pop().unwrap_or_else(|| response.trim().to_string())
}

/// Whether a tool-integrated transcript has committed to a final answer (a `\boxed{...}`),
/// after which no more code is run.
pub fn has_final_answer(text: &str) -> bool {
    text.find("\\boxed{").is_some_and(|i| text[i..].contains('}'))
}

/// Check that `python` starts (for a clear error before a long run).
pub fn python_available(python: &str) -> bool {
    Command::new(python).arg("-c").arg("pass").stdin(Stdio::null()).status().is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PythonConfig {
        PythonConfig { timeout_s: 5.0, ..Default::default() }
    }

    #[test]
    fn runs_real_python_and_captures_stdout() {
        let e = run_python("print(sum(range(101)))", &cfg());
        assert_eq!(e.exit, ExitKind::Ok, "{e:?}");
        assert_eq!(e.stdout.trim(), "5050");
        assert_eq!(tool_output(&e), "5050");
    }

    #[test]
    fn errors_report_the_last_traceback_line() {
        let e = run_python("x = 1\nprint(y)", &cfg());
        assert!(matches!(e.exit, ExitKind::Failed(_)), "{e:?}");
        assert_eq!(tool_output(&e), "Runtime errors: NameError: name 'y' is not defined");
    }

    #[test]
    fn wall_clock_timeout_kills_the_program() {
        let t = Instant::now();
        let e = run_python("import time\nwhile True: time.sleep(0.01)", &PythonConfig { timeout_s: 0.5, ..cfg() });
        assert_eq!(e.exit, ExitKind::Timeout);
        assert!(t.elapsed() < Duration::from_secs(4));
        assert!(tool_output(&e).starts_with("Runtime errors: TimeoutError"));
    }

    #[test]
    fn cpu_limit_stops_a_busy_loop() {
        let e = run_python("while True: pass", &PythonConfig { cpu_s: 1, timeout_s: 8.0, ..cfg() });
        assert!(matches!(e.exit, ExitKind::Failed(_)), "{e:?}");
    }

    #[test]
    fn memory_limit_stops_a_big_allocation() {
        let e = run_python("x = bytearray(3 * 1024**3)\nprint('allocated')", &PythonConfig { memory_bytes: 512 << 20, ..cfg() });
        assert!(matches!(e.exit, ExitKind::Failed(_)), "{e:?}");
        assert!(e.stderr.contains("MemoryError"), "{}", e.stderr);
    }

    #[test]
    fn runs_in_a_temp_dir_and_without_network_when_possible() {
        let e = run_python("import os\nprint(os.getcwd())", &cfg());
        assert!(e.stdout.contains("mathforge-py-"), "{}", e.stdout);
        let code = "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\n    print('net')\nexcept OSError as e:\n    print('no-net')";
        let e = run_python(code, &cfg());
        if network_isolation_available() {
            assert!(e.network_isolated);
            assert_eq!(e.stdout.trim(), "no-net");
        } else {
            eprintln!("unshare is not usable here: network isolation not tested");
        }
    }

    #[test]
    fn long_output_is_cut_in_the_middle() {
        let e = run_python("print('a' * 60 + 'b' * 60)", &cfg());
        let o = tool_output(&e);
        assert_eq!(o, format!("{}...{}", "a".repeat(50), "b".repeat(50)));
        assert_eq!(truncate_middle("é".repeat(101).as_str()).chars().count(), 103);
    }

    #[test]
    fn tool_code_keeps_earlier_definitions_without_their_prints() {
        let t = "Let me compute.\n```python\nx = 6\nprint(x)\n```\n```output\n6\n```\nNow double it.\n```python\nprint(x * 2)\n```";
        assert_eq!(extract_tool_code(t).unwrap(), "x = 6\nprint(x * 2)");
        assert_eq!(extract_tool_code("no code here"), None);
        assert_eq!(pot_program("```python\nprint(1)\n```"), "print(1)");
        assert!(has_final_answer("so \\boxed{3}."));
        assert!(!has_final_answer("```python\nprint(1)\n```"));
    }
}
