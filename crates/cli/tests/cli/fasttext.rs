//! CLI tests for `mathforge fasttext`.
