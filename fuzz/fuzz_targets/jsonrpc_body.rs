//! Fuzz target `jsonrpc_body`: the invariants of `checks::jsonrpc_body` (fuzz/checks.rs).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::jsonrpc_body(data));
