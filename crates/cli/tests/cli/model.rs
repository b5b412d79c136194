//! CLI tests for `mathforge model`.
