//! A tiny OpenAI-compatible HTTP/1.1 server for tests: one thread, `Connection: close`, JSON
//! bodies shaped like vLLM's `/v1/completions` and `/v1/chat/completions` answers.
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A parsed request.
pub struct Request {
    pub path: String,
    pub body: Value,
}

/// What to answer.
pub enum Reply {
    /// `choices[i].text`.
    Texts(Vec<String>),
    /// `choices[i].message.content`.
    Chat(Vec<String>),
    /// An error status with a body.
    Status(u16, String),
}

pub struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &*handler);
                });
            }
        });
        Server { port, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_one(stream: std::net::TcpStream, handler: &(dyn Fn(&Request) -> Reply + Send + Sync)) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = body["model"].clone();
    let (status, text) = match handler(&Request { path, body }) {
        Reply::Texts(t) => (200, json!({
            "id": "cmpl-test", "object": "text_completion", "created": 0, "model": model,
            "choices": t.iter().enumerate().rev().map(|(i, x)| json!({"index": i, "text": x, "logprobs": null, "finish_reason": "stop"})).collect::<Vec<_>>(),
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        }).to_string()),
        Reply::Chat(t) => (200, json!({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
            "choices": t.iter().enumerate().map(|(i, x)| json!({"index": i, "message": {"role": "assistant", "content": x}, "finish_reason": "stop"})).collect::<Vec<_>>(),
        }).to_string()),
        Reply::Status(code, b) => (code, b),
    };
    let reason = if status == 200 { "OK" } else { "Error" };
    let mut s = stream;
    write!(s, "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len())?;
    s.flush()
}
