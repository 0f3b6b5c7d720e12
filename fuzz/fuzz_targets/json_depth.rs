//! Fuzz target `json_depth`: the invariants of `checks::json_depth` (fuzz/checks.rs).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::json_depth(data));
