//! An OpenAI-compatible HTTP backend (vLLM, llama.cpp server, SGLang, TGI, hosted APIs), so models
//! served elsewhere are graded by the same harness.
//!
//! * `completions`: `POST {base}/completions` with `prompt`; the answer is `choices[i].text`.
//! * `chat`: `POST {base}/chat/completions` with `messages`; the answer is
//!   `choices[i].message.content`. A tool round continues the assistant message with vLLM's
//!   `continue_final_message` / `add_generation_prompt: false` extension.
//!
//! `--endpoint` may be the server root (`http://host:8000`, `/v1` is added), the `/v1` base, or
//! the full `.../completions` URL. Requests run on `concurrency` threads. A transport error,
//! timeout, 408, 429 or 5xx is retried `max_retries` times with exponential backoff
//! (`backoff_ms * 2^attempt`, capped at 30 s); after that, or on any other 4xx, the request's
//! samples are recorded as failed and the run goes on.
use crate::backend::{Backend, GenOutcome, GenRequest};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Which OpenAI API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `/v1/completions` (raw text prompt; base models, few-shot).
    Completions,
    /// `/v1/chat/completions` (messages; the server applies the chat template).
    Chat,
}

/// HTTP backend settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Server URL (root, `/v1` base or full endpoint URL).
    pub endpoint: String,
    /// The `model` field of requests.
    pub model: String,
    /// Completions or chat completions.
    pub api: Api,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Per-request timeout in seconds.
    pub timeout_s: f64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay in milliseconds.
    pub backoff_ms: u64,
    /// Sent as `Authorization: Bearer ...` when set.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
}

impl HttpConfig {
    /// Defaults for `endpoint` and `model`: completions, 8 in flight, 600 s, 4 retries from 500 ms.
    pub fn new(endpoint: impl Into<String>, model: impl Into<String>) -> Self {
        HttpConfig {
            endpoint: endpoint.into(),
            model: model.into(),
            api: Api::Completions,
            concurrency: 8,
            timeout_s: 600.0,
            max_retries: 4,
            backoff_ms: 500,
            api_key: None,
        }
    }

    /// The full URL requests go to.
    pub fn url(&self) -> String {
        let base = self.endpoint.trim_end_matches('/');
        let suffix = match self.api {
            Api::Completions => "/completions",
            Api::Chat => "/chat/completions",
        };
        if base.ends_with("/completions") {
            return base.to_string();
        }
        // A bare `http://host:port` gets the conventional `/v1`.
        let after_scheme = base.split_once("://").map_or(base, |(_, r)| r);
        if !after_scheme.contains('/') {
            return format!("{base}/v1{suffix}");
        }
        format!("{base}{suffix}")
    }
}

/// The HTTP backend.
pub struct HttpBackend {
    cfg: HttpConfig,
    agent: ureq::Agent,
    url: String,
    /// Failed attempts that were retried (for the summary).
    retries: AtomicUsize,
}

impl HttpBackend {
    /// Build a client (no request is sent yet).
    pub fn new(cfg: HttpConfig) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs_f64(cfg.timeout_s.max(0.001))).build();
        let url = cfg.url();
        HttpBackend { cfg, agent, url, retries: AtomicUsize::new(0) }
    }

    /// Attempts that failed and were retried so far.
    pub fn retries(&self) -> usize {
        self.retries.load(Ordering::Relaxed)
    }

    fn body(&self, r: &GenRequest) -> Value {
        let mut body = json!({
            "model": self.cfg.model,
            "max_tokens": r.max_tokens,
            "temperature": r.temperature,
            "n": r.n,
            "stop": r.prompt.stop,
            "seed": r.seed,
        });
        if r.top_p < 1.0 {
            body["top_p"] = json!(r.top_p);
        }
        match self.cfg.api {
            Api::Completions => body["prompt"] = json!(format!("{}{}", r.prompt.text, r.continuation)),
            Api::Chat => {
                let mut messages = serde_json::to_value(&r.prompt.messages).unwrap_or(Value::Array(vec![]));
                if !r.continuation.is_empty() {
                    if let Value::Array(a) = &mut messages {
                        a.push(json!({"role": "assistant", "content": r.continuation}));
                    }
                    body["continue_final_message"] = json!(true);
                    body["add_generation_prompt"] = json!(false);
                }
                body["messages"] = messages;
            }
        }
        body
    }

    fn parse(&self, v: &Value, n: usize) -> GenOutcome {
        let choices = v.get("choices").and_then(Value::as_array).ok_or_else(|| {
            format!("{}: response has no \"choices\" array: {}", self.url, truncate(&v.to_string(), 200))
        })?;
        let mut texts: Vec<(u64, String)> = Vec::with_capacity(choices.len());
        for (pos, c) in choices.iter().enumerate() {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
            let text = match self.cfg.api {
                Api::Completions => c.get("text").and_then(Value::as_str),
                Api::Chat => c.get("message").and_then(|m| m.get("content")).and_then(Value::as_str),
            };
            let field = match self.cfg.api {
                Api::Completions => "text",
                Api::Chat => "message.content",
            };
            let text = text.ok_or_else(|| format!("{}: choices[{pos}] has no string \"{field}\"", self.url))?;
            texts.push((index, text.to_string()));
        }
        texts.sort_by_key(|(i, _)| *i);
        if texts.len() < n {
            return Err(format!("{}: asked for n={n} choices, got {}", self.url, texts.len()));
        }
        Ok(texts.into_iter().take(n).map(|(_, t)| t).collect())
    }

    fn one(&self, r: &GenRequest) -> GenOutcome {
        let body = self.body(r);
        let mut last_err = String::new();
        for attempt in 0..=self.cfg.max_retries {
            if attempt > 0 {
                self.retries.fetch_add(1, Ordering::Relaxed);
                let ms = self.cfg.backoff_ms.saturating_mul(1u64 << (attempt - 1).min(16)).min(30_000);
                std::thread::sleep(Duration::from_millis(ms));
            }
            let mut req = self.agent.post(&self.url).set("Content-Type", "application/json");
            if let Some(key) = &self.cfg.api_key {
                req = req.set("Authorization", &format!("Bearer {key}"));
            }
            match req.send_json(&body) {
                Ok(resp) => {
                    return match resp.into_json::<Value>() {
                        Ok(v) => self.parse(&v, r.n),
                        Err(e) => Err(format!("{}: response is not JSON: {e}", self.url)),
                    }
                }
                Err(ureq::Error::Status(code, resp)) => {
                    let text = resp.into_string().unwrap_or_default();
                    last_err = format!("{}: HTTP {code}: {}", self.url, truncate(&text, 300));
                    let retriable = code >= 500 || code == 429 || code == 408;
                    tracing::warn!(attempt, code, "eval http: {last_err}");
                    if !retriable {
                        return Err(last_err);
                    }
                }
                Err(ureq::Error::Transport(t)) => {
                    last_err = format!("{}: {t}", self.url);
                    tracing::warn!(attempt, "eval http: {last_err}");
                }
            }
        }
        Err(format!("gave up after {} attempts: {last_err}", self.cfg.max_retries + 1))
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max).collect::<String>() + "..."
    }
}

impl Backend for HttpBackend {
    fn describe(&self) -> String {
        format!("http:{} model={}", self.url, self.cfg.model)
    }
    fn batch_size(&self) -> usize {
        (self.cfg.concurrency * 4).max(1)
    }
    fn generate(&self, requests: &[GenRequest]) -> Vec<GenOutcome> {
        let results: Vec<Mutex<Option<GenOutcome>>> = requests.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let workers = self.cfg.concurrency.clamp(1, requests.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(r) = requests.get(i) else { break };
                    let out = self.one(r);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(out);
                    }
                });
            }
        });
        results
            .into_iter()
            .map(|m| m.into_inner().ok().flatten().unwrap_or_else(|| Err("worker thread panicked".into())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let mut c = HttpConfig::new("http://127.0.0.1:8000", "m");
        assert_eq!(c.url(), "http://127.0.0.1:8000/v1/completions");
        c.endpoint = "http://h:1/v1/".into();
        assert_eq!(c.url(), "http://h:1/v1/completions");
        c.api = Api::Chat;
        assert_eq!(c.url(), "http://h:1/v1/chat/completions");
        c.endpoint = "http://h:1/v1/chat/completions".into();
        assert_eq!(c.url(), "http://h:1/v1/chat/completions");
    }
}
