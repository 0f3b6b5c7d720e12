//! Fuzz target `cedar_statements`: the invariants of `checks::cedar_statements` (fuzz/checks.rs).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::cedar_statements(data));
