//! CLI tests for `mathforge eval`.
