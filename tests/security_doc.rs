//! `docs/SECURITY.md` names the test that proves each defence; this file
//! checks that every name in its "proof" column still points at something
//! real, so a rename or a split of a module cannot leave the threat model
//! citing tests that no longer run.
//!
//! A proof cell is read clause by clause (`;` outside parentheses), and each
//! clause by its kind word:
//! - `unit`: `` `a::b::tests::f` `` is a test function `f` of the library
//!   module `a::b::tests` (modules resolved from `src/lib.rs` the way rustc
//!   does, `#[path]` included), `` `a::b::tests` `` or `` `a::*` `` a module;
//! - `e2e`: `` `m::f` `` a test function `f` in `tests/e2e/m.rs`, `` `m` `` or
//!   `` `m::*` `` a module listed in `tests/e2e/main.rs`;
//! - `fuzz target`: `` `t` `` is `fuzz/fuzz_targets/t.rs`;
//! - any clause: `` `path/file.rs` `` is a file of the repository.
//!
//! A bare name after a qualified one (`` `m::f`, `g` ``) belongs to the same
//! module.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// The repository root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What a clause's references name.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Library tests and modules (`cargo test --lib`).
    Unit,
    /// Tests of the `e2e` test target.
    E2e,
    /// `cargo fuzz` targets.
    Fuzz,
    /// Only file paths are expected.
    Other,
}

/// Splits `s` at `;` outside parentheses.
fn clauses(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ';' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The backticked spans of `s`.
fn ticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

/// The kind a clause's first words give, or `None` when it names none.
fn kind_of(clause: &str) -> Option<Kind> {
    let head = clause.trim_start().split('`').next().unwrap_or("");
    if head.contains("fuzz target") {
        Some(Kind::Fuzz)
    } else if head.contains("e2e") {
        Some(Kind::E2e)
    } else if head.contains("unit") {
        Some(Kind::Unit)
    } else {
        None
    }
}

/// The file that holds the library module `path` (`["authz", "memo",
/// "tests"]`); for a module declared inline, the file it is declared in.
fn module_file(path: &[&str]) -> Result<PathBuf, String> {
    let mut file = root().join("src/lib.rs");
    let mut inline = false;
    for (i, seg) in path.iter().enumerate() {
        if inline {
            // Modules nested in an inline module live in the same file.
            continue;
        }
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let decl = find_mod(&text, seg).ok_or_else(|| {
            format!(
                "module `{}` is not declared in {}",
                path[..=i].join("::"),
                file.display()
            )
        })?;
        match decl {
            ModDecl::Inline => inline = true,
            ModDecl::File(attr) => {
                let dir = file.parent().unwrap().to_path_buf();
                let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
                // Children of `x.rs` live in `x/`; of `mod.rs`/`lib.rs` beside it.
                let child_dir = if stem == "mod" || stem == "lib" {
                    dir.clone()
                } else {
                    dir.join(&stem)
                };
                let candidates = match attr {
                    Some(p) => vec![dir.join(p)],
                    None => vec![
                        child_dir.join(format!("{seg}.rs")),
                        child_dir.join(seg).join("mod.rs"),
                    ],
                };
                file = candidates
                    .into_iter()
                    .find(|c| c.is_file())
                    .ok_or_else(|| format!("no file for module `{}`", path[..=i].join("::")))?;
            }
        }
    }
    Ok(file)
}

/// How a module is declared.
enum ModDecl {
    /// `mod x { ... }`.
    Inline,
    /// `mod x;`, with its `#[path = "..."]` if any.
    File(Option<String>),
}

/// Finds the declaration of module `name` in `text`.
fn find_mod(text: &str, name: &str) -> Option<ModDecl> {
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        let Some(rest) = t.strip_prefix("mod ") else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(after) = rest.strip_prefix(name) else {
            continue;
        };
        let after = after.trim_start();
        if after.starts_with('{') {
            return Some(ModDecl::Inline);
        }
        if after.starts_with(';') {
            let attr = lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.trim_start().starts_with("#["))
                .find_map(|l| {
                    let l = l.trim();
                    let p = l.strip_prefix("#[path = \"")?;
                    Some(p.split('"').next()?.to_owned())
                });
            return Some(ModDecl::File(attr));
        }
    }
    None
}

/// Whether `file` holds a test function `name` (`#[test]`, `#[tokio::test]`,
/// or a `#[test]` inside `proptest!`).
fn has_test_fn(file: &Path, name: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let sig = t.strip_prefix("async ").unwrap_or(t);
        let Some(rest) = sig.strip_prefix("fn ") else {
            continue;
        };
        if !rest
            .strip_prefix(name)
            .is_some_and(|r| r.starts_with('(') || r.starts_with('<'))
        {
            continue;
        }
        // The attributes and comments above it, up to the previous item.
        let mut above = lines[..i].iter().rev().take_while(|l| {
            let l = l.trim();
            !(l.is_empty() || l.ends_with('}') || l.ends_with(';') || l.ends_with('{'))
        });
        if above.any(|l| !l.trim_start().starts_with("//") && l.contains("test")) {
            return Ok(());
        }
        return Err(format!(
            "`fn {name}` in {} is not marked as a test",
            file.display()
        ));
    }
    Err(format!("no `fn {name}` in {}", file.display()))
}

/// Whether the e2e target lists module `name`.
fn e2e_module(name: &str) -> Result<PathBuf, String> {
    let main = std::fs::read_to_string(root().join("tests/e2e/main.rs")).unwrap();
    if !main.lines().any(|l| l.trim() == format!("mod {name};")) {
        return Err(format!("`mod {name};` is not in tests/e2e/main.rs"));
    }
    let file = root().join("tests/e2e").join(format!("{name}.rs"));
    if file.is_file() {
        Ok(file)
    } else {
        Err(format!("{} does not exist", file.display()))
    }
}

/// Checks one reference of `kind`; `prefix` is the module path of the last
/// qualified reference of the clause (for bare names).
fn check_ref(kind: Kind, r: &str, prefix: &mut Vec<String>) -> Result<(), String> {
    if r.contains('/') {
        return if root().join(r).exists() {
            Ok(())
        } else {
            Err(format!("file `{r}` does not exist"))
        };
    }
    let segs: Vec<&str> = r.split("::").collect();
    if segs.iter().any(|s| {
        s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*')
    }) {
        return Err(format!("`{r}` is not a path this check understands"));
    }
    match kind {
        Kind::Fuzz => {
            let f = root().join("fuzz/fuzz_targets").join(format!("{r}.rs"));
            if f.is_file() {
                Ok(())
            } else {
                Err(format!("no fuzz target `{r}`"))
            }
        }
        Kind::Unit => {
            let full: Vec<String> = if segs.len() == 1 && segs[0] != "*" && !prefix.is_empty() {
                prefix.iter().cloned().chain([segs[0].to_owned()]).collect()
            } else {
                segs.iter().map(|s| (*s).to_owned()).collect()
            };
            let full: Vec<&str> = full.iter().map(String::as_str).collect();
            let (module, func) = match full.as_slice() {
                [m @ .., "*"] => (m, None),
                [m @ .., f]
                    if m.contains(&"tests") || m.last().is_some_and(|l| l.ends_with("tests")) =>
                {
                    (m, Some(*f))
                }
                m => (m, None),
            };
            let file = module_file(module)?;
            *prefix = module.iter().map(|s| (*s).to_owned()).collect();
            match func {
                Some(f) => has_test_fn(&file, f),
                None => {
                    let text = std::fs::read_to_string(&file).unwrap();
                    if text.contains("#[test]")
                        || text.contains("mod tests")
                        || text.contains("test]")
                    {
                        Ok(())
                    } else {
                        Err(format!("module `{r}` ({}) holds no tests", file.display()))
                    }
                }
            }
        }
        Kind::E2e => match segs.as_slice() {
            [m] if prefix.is_empty() => e2e_module(m).map(|_| ()),
            [f] => {
                // `m::f`, `g`: `g` is a test of `m`, or itself an e2e module.
                let file = e2e_module(&prefix[0])?;
                has_test_fn(&file, f).or_else(|e| e2e_module(f).map(|_| ()).map_err(|_| e))
            }
            [m, "*"] => e2e_module(m).map(|_| ()),
            [m, f] => {
                let file = e2e_module(m)?;
                *prefix = vec![(*m).to_owned()];
                has_test_fn(&file, f)
            }
            _ => Err(format!("`{r}` is not an e2e test name")),
        },
        Kind::Other => Err(format!(
            "`{r}` is named with no `unit`, `e2e` or `fuzz target` before it"
        )),
    }
}

/// Whether a backticked span outside the proof column is a repository path.
fn is_repo_path(r: &str) -> bool {
    [
        "src/",
        "tests/",
        "scripts/",
        "fuzz/",
        "envoy/",
        "docs/",
        "examples/",
    ]
    .iter()
    .any(|p| r.starts_with(p))
}

/// Checks every reference of the proof column of `doc`'s tables: how many
/// were read, and one line per reference that names nothing.
fn check_doc(doc: &str) -> (usize, Vec<String>) {
    let mut checked = 0;
    let mut misses = Vec::new();
    for line in doc.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        let (Some(class), Some(proof)) = (cells.first(), cells.last()) else {
            continue;
        };
        if cells.len() < 4 || proof.trim() == "proof" || proof.trim().starts_with("---") {
            continue;
        }
        // Files named in the other columns (`src/mcp/strict.rs`) exist too.
        for cell in &cells[..cells.len() - 1] {
            for r in ticked(cell).into_iter().filter(|r| is_repo_path(r)) {
                checked += 1;
                if !root().join(r).exists() {
                    misses.push(format!("{}: file `{r}` does not exist", class.trim()));
                }
            }
        }
        for clause in clauses(proof) {
            let kind = kind_of(clause).unwrap_or(Kind::Other);
            let mut prefix = Vec::new();
            for r in ticked(clause) {
                checked += 1;
                if let Err(e) = check_ref(kind, r, &mut prefix) {
                    misses.push(format!("{}: {e}", class.trim()));
                }
            }
        }
    }
    (checked, misses)
}

#[test]
fn every_test_the_threat_model_names_exists() {
    let doc = std::fs::read_to_string(root().join("docs/SECURITY.md")).unwrap();
    let (checked, misses) = check_doc(&doc);
    assert!(
        misses.is_empty(),
        "docs/SECURITY.md names what does not exist:\n{}",
        misses.join("\n")
    );
    // The table has some 30 rows, most naming several tests: a parser that
    // found (almost) nothing would pass vacuously.
    assert!(checked >= 60, "only {checked} references read");
}

/// The checker refuses what it should, so a stale name does fail the test
/// above.
#[test]
fn the_checker_catches_stale_names() {
    let row = |proof: &str| format!("| class | attack | defence | {proof} |\n");
    let stale = [
        // The module before the split into catalog/authz/store.
        "unit `registry::decide::tests::an_erroring_forbid_denies_and_is_not_cached`",
        // A module that exists, a test that does not.
        "unit `authz::decide::tests::no_such_test`",
        // A bare name after a qualified one is looked up in the same module.
        "unit `authz::memo::tests::distinct_queries_have_distinct_keys`, `no_such_test`",
        "e2e `trust_policies::no_such_test`",
        "e2e `trust_policies::decision_cache_keeps_group_lists_apart`, `no_such_test`",
        "e2e `no_such_module::*`",
        "fuzz target `no_such_target`",
        "`tests/no_such_file.rs`",
        "`some_name` named with no kind",
    ];
    for proof in stale {
        let (checked, misses) = check_doc(&row(proof));
        assert!(checked > 0, "{proof}: nothing read");
        assert_eq!(misses.len(), 1, "{proof}: {misses:?}");
    }
    // Paths in the other columns are checked as files.
    let stale_path =
        "| class | attack | typed (`src/registry/arguments.rs`) | unit `authz::arguments::tests` |";
    let (_, misses) = check_doc(stale_path);
    assert_eq!(misses.len(), 1, "{misses:?}");
    let fine = [
        "unit `authz::decide::tests::an_erroring_forbid_denies_and_is_not_cached`",
        // Its tests live in `audit_tests.rs`, declared with `#[path]`.
        "unit `telemetry::audit::tests`",
        "unit `approvals::review_tests`, `approvals::*`",
        "e2e `trust_policies::decision_cache_keeps_group_lists_apart`, `remote_jwks`",
        "fuzz target `token`; `tests/fuzz_corpus.rs` (a sentence; with (nested; parts))",
    ];
    for proof in fine {
        let (checked, misses) = check_doc(&row(proof));
        assert!(checked > 0, "{proof}: nothing read");
        assert!(misses.is_empty(), "{proof}: {misses:?}");
    }
}

/// A function that is not a test is no proof.
#[test]
fn a_helper_is_not_a_test() {
    // `module_file` itself is a plain function of this file.
    let me = root().join("tests/security_doc.rs");
    assert!(has_test_fn(&me, "module_file").is_err());
    assert!(has_test_fn(&me, "a_helper_is_not_a_test").is_ok());
}
