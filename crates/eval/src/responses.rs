//! The responses-file backend: grade completions produced elsewhere (another harness, a vLLM
//! batch job, an earlier `samples.jsonl`).
//!
//! Format: JSONL, one record per line, `id` (string or number, matching the benchmark example
//! id) and `response` (a string) or `responses` (an array of strings). Several lines with the
//! same id add samples in file order, so an earlier run's `samples.jsonl` (which has `id` and
//! `response`) can be re-graded as is. A malformed line is an error with file:line (or skipped
//! and counted with `skip_bad`); a missing field is named.
use crate::backend::{Backend, GenOutcome, GenRequest};
use crate::{Error, Result};
use mathforge_io::jsonl::JsonlReader;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Responses read from a file, by example id.
pub struct ResponsesBackend {
    path: PathBuf,
    by_id: HashMap<String, Vec<String>>,
    /// Lines skipped with `skip_bad`, with their reasons.
    pub skipped: Vec<String>,
}

impl ResponsesBackend {
    /// Read `path` (`.jsonl`, `.gz`, `.zst`).
    pub fn open(path: &Path, skip_bad: bool) -> Result<Self> {
        let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
        let mut skipped = Vec::new();
        for rec in JsonlReader::open(path)? {
            let line = rec.line;
            let parsed = rec.value.map_err(Error::from).and_then(|v| parse_line(path, line, &v));
            match parsed {
                Ok((id, texts)) => by_id.entry(id).or_default().extend(texts),
                Err(e) if skip_bad => skipped.push(e.to_string()),
                Err(e) => return Err(e),
            }
        }
        Ok(ResponsesBackend { path: path.to_path_buf(), by_id, skipped })
    }

    /// Number of distinct ids.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when the file held no response.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

fn parse_line(path: &Path, line: u64, v: &Value) -> Result<(String, Vec<String>)> {
    let err = |message: String| Error::BadRecord { path: path.to_path_buf(), line, message };
    let id = match v.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(err("field \"id\" must be a string or number".into())),
        None => return Err(err("missing field \"id\"".into())),
    };
    let texts = match (v.get("response"), v.get("responses")) {
        (Some(Value::String(s)), _) => vec![s.clone()],
        (Some(_), _) => return Err(err("field \"response\" must be a string".into())),
        (None, Some(Value::Array(a))) => a
            .iter()
            .enumerate()
            .map(|(i, x)| x.as_str().map(str::to_string).ok_or_else(|| err(format!("field \"responses\"[{i}] must be a string"))))
            .collect::<Result<Vec<_>>>()?,
        (None, Some(_)) => return Err(err("field \"responses\" must be an array of strings".into())),
        (None, None) => return Err(err("missing field \"response\" (or \"responses\")".into())),
    };
    Ok((id, texts))
}

impl Backend for ResponsesBackend {
    fn describe(&self) -> String {
        format!("responses:{}", self.path.display())
    }
    fn batch_size(&self) -> usize {
        4096
    }
    fn supports_continuation(&self) -> bool {
        false
    }
    fn generate(&self, requests: &[GenRequest]) -> Vec<GenOutcome> {
        requests
            .iter()
            .map(|r| match self.by_id.get(&r.id) {
                None => Err(format!("{}: no response for id {:?}", self.path.display(), r.id)),
                Some(t) if t.len() < r.n => {
                    Err(format!("{}: id {:?} has {} responses, {} asked (--n)", self.path.display(), r.id, t.len(), r.n))
                }
                Some(t) => Ok(t[..r.n].to_vec()),
            })
            .collect()
    }
}
