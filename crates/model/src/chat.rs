//! The DeepSeekMath-Instruct chat format.
//!
//! DeepSeekMath-Instruct and -RL (Shao et al. 2024, §3–4) are prompted as
//! `User: {question}\n\nAssistant:` and trained on `User: {q}\n\nAssistant: {a}<eos>`; turns of a
//! longer conversation follow one another directly after the EOS token. The BOS token is not part
//! of the rendered text here: our tokenizer adds it when encoding with special tokens, exactly as
//! DeepSeek's does. For Hugging Face users the same format is exported as the Jinja
//! `chat_template` in `tokenizer_config.json` ([`HF_CHAT_TEMPLATE`]); there the BOS is written by
//! the template itself, because `apply_chat_template` tokenizes without special tokens.
//!
//! The space after `Assistant:` belongs to the answer (a byte-level BPE has ` word` tokens), so a
//! prompt ends in `Assistant:` and the completion starts with a space.

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions placed before the first user turn.
    System,
    /// The human turn (`User: ...`).
    User,
    /// The model turn (`Assistant: ...<eos>`).
    Assistant,
}

/// One message of a conversation (`{"role": "user", "content": "..."}`, the OpenAI/HF shape).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Text.
    pub content: String,
}

impl Message {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message { role: Role::User, content: content.into() }
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message { role: Role::Assistant, content: content.into() }
    }
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message { role: Role::System, content: content.into() }
    }
}

/// The prompt for one question: `User: {q}\n\nAssistant:`.
pub fn prompt(question: &str) -> String {
    format!("User: {question}\n\nAssistant:")
}

/// A full SFT example split into the prompt (not trained on) and the completion (trained on,
/// ending with the EOS token text): `("User: {q}\n\nAssistant:", " {a}{eos}")`.
pub fn sft_pair(question: &str, answer: &str, eos_token: &str) -> (String, String) {
    (prompt(question), format!(" {answer}{eos_token}"))
}

/// Render a conversation. Assistant turns end with `eos_token`; with `add_generation_prompt`
/// the text ends in `Assistant:` so the model continues with its answer.
pub fn render(messages: &[Message], eos_token: &str, add_generation_prompt: bool) -> String {
    let mut out = String::new();
    for m in messages {
        match m.role {
            Role::System => {
                out.push_str(&m.content);
                out.push_str("\n\n");
            }
            Role::User => {
                out.push_str("User: ");
                out.push_str(&m.content);
                out.push_str("\n\n");
            }
            Role::Assistant => {
                out.push_str("Assistant: ");
                out.push_str(&m.content);
                out.push_str(eos_token);
            }
        }
    }
    if add_generation_prompt {
        out.push_str("Assistant:");
    }
    out
}

/// The same format as a `transformers` chat template (Jinja), written into
/// `tokenizer_config.json` so `tokenizer.apply_chat_template(messages, add_generation_prompt=True)`
/// yields `<bos>User: {q}\n\nAssistant:`.
pub const HF_CHAT_TEMPLATE: &str = concat!(
    "{% if add_generation_prompt is not defined %}{% set add_generation_prompt = false %}{% endif %}",
    "{{ bos_token }}",
    "{% for message in messages %}",
    "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}",
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n\\n' }}",
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}",
    "{% endif %}",
    "{% endfor %}",
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_and_sft_pair_match_deepseekmath_format() {
        assert_eq!(prompt("What is 2+3?"), "User: What is 2+3?\n\nAssistant:");
        let (p, c) = sft_pair("What is 2+3?", "5", "</s>");
        assert_eq!(format!("{p}{c}"), "User: What is 2+3?\n\nAssistant: 5</s>");
    }

    #[test]
    fn render_multi_turn() {
        let msgs = vec![
            Message::system("Be brief."),
            Message::user("1+1?"),
            Message::assistant("2"),
            Message::user("2+2?"),
        ];
        assert_eq!(
            render(&msgs, "<eos>", true),
            "Be brief.\n\nUser: 1+1?\n\nAssistant: 2<eos>User: 2+2?\n\nAssistant:"
        );
        assert_eq!(render(&msgs[1..3], "<eos>", false), "User: 1+1?\n\nAssistant: 2<eos>");
    }

    #[test]
    fn messages_parse_from_openai_shape() {
        let m: Message = serde_json::from_str(r#"{"role":"user","content":"hi"}"#).unwrap();
        assert_eq!(m, Message::user("hi"));
        assert!(serde_json::from_str::<Message>(r#"{"role":"robot","content":"hi"}"#).is_err());
    }
}
