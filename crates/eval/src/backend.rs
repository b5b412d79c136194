//! The one interface every generation backend implements (local model, OpenAI-compatible HTTP,
//! a file of responses produced elsewhere), so metrics and reports never know where text came
//! from.
//!
//! A backend gets a batch of [`GenRequest`]s and returns one outcome per request: `n` texts, or
//! an error string. A failed request does not stop the run: the harness records its samples as
//! failed (wrong) and goes on, as the issue asks of endpoints that time out or answer 5xx.
use mathforge_tasks::Prompt;
use serde::Serialize;

/// One generation request: `n` samples for one prompt.
#[derive(Debug, Clone, Serialize)]
pub struct GenRequest {
    /// The example id (the responses backend looks responses up by it).
    pub id: String,
    /// Which of the example's samples this request continues (tool rounds), else 0.
    pub sample: usize,
    /// The prompt (text for completion models, messages for chat models, stop sequences).
    pub prompt: Prompt,
    /// Assistant text generated so far (tool-integrated rounds continue it), else empty.
    pub continuation: String,
    /// Number of samples.
    pub n: usize,
    /// Sampling temperature (0 = greedy).
    pub temperature: f32,
    /// Top-p nucleus mass (1 = off).
    pub top_p: f32,
    /// Token limit of the completion.
    pub max_tokens: usize,
    /// Seed for reproducible sampling, where the backend supports it.
    pub seed: u64,
}

/// The outcome of one request: `n` texts, or why it failed.
pub type GenOutcome = std::result::Result<Vec<String>, String>;

/// A source of completions.
pub trait Backend: Send + Sync {
    /// For reports: `responses:FILE`, `http:URL model`, `local:DIR`.
    fn describe(&self) -> String;
    /// How many requests the harness should hand over at once (the local model batches them;
    /// HTTP runs them concurrently).
    fn batch_size(&self) -> usize {
        32
    }
    /// Whether the backend can continue a partial assistant message (needed by tool rounds).
    fn supports_continuation(&self) -> bool {
        true
    }
    /// Generate; the result has exactly one outcome per request, in order.
    fn generate(&self, requests: &[GenRequest]) -> Vec<GenOutcome>;
}

/// Cut `text` at the first stop sequence (servers do this themselves; local samplers and
/// response files may not).
pub fn apply_stop(text: &str, stop: &[String]) -> String {
    let cut = stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min();
    match cut {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stop_cuts_at_the_earliest() {
        let stop = vec!["\nQ:".to_string(), "```output".to_string()];
        assert_eq!(super::apply_stop("a\nQ: b ```output", &stop), "a");
        assert_eq!(super::apply_stop("x ```output y", &stop), "x ");
        assert_eq!(super::apply_stop("plain", &stop), "plain");
    }
}
