//! CLI tests for `mathforge verify`.
