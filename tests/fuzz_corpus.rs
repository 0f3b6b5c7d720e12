//! The fuzz regression corpus (`fuzz/corpus/<target>/`) replayed on the stable
//! toolchain: every file goes through the same invariants as its fuzz target
//! (`fuzz/checks.rs`, shared by `#[path]` with `fuzz/fuzz_targets/*.rs`), so
//! `cargo test` catches a regression on any input a fuzzer once found.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// Runs every corpus file of `target` through `check`; fails naming the files
/// that break an invariant. An empty or missing corpus is a failure too.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no seeds", dir.display());
    let failed: Vec<String> = files
        .iter()
        .filter(|f| {
            let data = std::fs::read(f).unwrap();
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "invariants broken by:\n{}",
        failed.join("\n")
    );
}

#[test]
fn jsonrpc_body_corpus_keeps_its_invariants() {
    replay("jsonrpc_body", checks::jsonrpc_body);
}

#[test]
fn json_depth_corpus_keeps_its_invariants() {
    replay("json_depth", checks::json_depth);
}

#[test]
fn token_corpus_keeps_its_invariants() {
    replay("token", checks::token);
}

#[test]
fn cedar_statements_corpus_keeps_its_invariants() {
    replay("cedar_statements", checks::cedar_statements);
}

/// The references the checks compare against are right, so a wrong answer
/// of the code under test does fail a check.
#[test]
fn the_references_of_the_checks_are_right() {
    use serde_json::json;
    assert_eq!(checks::depth(&json!(1)), 0);
    assert_eq!(checks::depth(&json!([])), 1);
    assert_eq!(checks::depth(&json!({"a": [[1], {"b": {}}]})), 4);
    let twins = catch_unwind(|| {
        checks::assert_no_folded_twins(&json!({"a": [{"Method": 1, "method": 2}]}))
    });
    assert!(twins.is_err(), "case twins not caught");
    let kelvin =
        catch_unwind(|| checks::assert_no_folded_twins(&json!({"kind": 1, "\u{212a}ind": 2})));
    assert!(kelvin.is_err(), "Kelvin sign twins not caught");
    checks::assert_no_folded_twins(&json!({"method": 1, "params": {"method": 2}}));
}
