//! Integration tests of mathforge-verify: the labelled cases of `testdata/*.toml` (every case
//! must get its labelled verdict, except those marked `xfail`, which must still be wrong so the
//! mark is removed when fixed), properties, fuzz replays and the benchmark self-check.
mod cases;
mod fuzz_replay;
mod props;
mod selfcheck;
