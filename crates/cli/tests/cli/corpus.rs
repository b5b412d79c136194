//! CLI tests for `mathforge corpus`.
