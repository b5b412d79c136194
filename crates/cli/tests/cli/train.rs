//! CLI tests for `mathforge train`.
