//! Policies that read tool arguments must read arguments the registry types.
//!
//! `context.arguments` is typed from each tool's registry `input_schema`; a
//! property the schema leaves untyped (`{}`, `anyOf`, `number`, a typo in
//! `type`) is absent from the Cedar view. Cedar's validator accepts
//! `context.arguments has presto.run_query.sql` on such a type (it is just
//! always false), so a `forbid` on it would silently never fire. Loading
//! refuses such a policy instead, naming the policy, the path and the tool.

use crate::catalog::{ArgType, Catalog};

/// The argument paths a policy's text reads: `context.arguments.a.b.c` and
/// `context.arguments(.a)* has b.c` forms, as lists of attribute names.
pub fn argument_paths(text: &str) -> Vec<Vec<String>> {
    const ROOT: &str = "context.arguments";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(ROOT) {
        rest = &rest[i + ROOT.len()..];
        let mut path = Vec::new();
        let mut s = rest;
        while let Some(after) = s.strip_prefix('.') {
            let (name, tail) = ident(after);
            if name.is_empty() {
                break;
            }
            path.push(name.to_owned());
            s = tail;
        }
        let t = s.trim_start();
        if let Some(after) = t
            .strip_prefix("has")
            .filter(|a| a.starts_with(char::is_whitespace))
        {
            let mut h = after.trim_start();
            loop {
                let (name, tail) = match h.strip_prefix('"') {
                    Some(q) => match q.find('"') {
                        Some(end) => (&q[..end], &q[end + 1..]),
                        None => ("", q),
                    },
                    None => ident(h),
                };
                if name.is_empty() {
                    break;
                }
                path.push(name.to_owned());
                match tail.strip_prefix('.') {
                    Some(next) => h = next,
                    None => break,
                }
            }
        }
        if !path.is_empty() {
            out.push(path);
        }
    }
    out
}

fn ident(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Why a path cannot be read, or `None` when the registry types it.
pub fn untyped(catalog: &Catalog, path: &[String]) -> Option<String> {
    let [server, rest @ ..] = path else {
        return None;
    };
    let Some(s) = catalog.server(server) else {
        return Some(format!("no registered server `{server}`"));
    };
    let [tool, rest @ ..] = rest else {
        return None;
    };
    let Some(t) = s.tool(tool) else {
        return Some(format!("`{server}` has no tool `{tool}`"));
    };
    let mut fields = &t.arguments;
    for (depth, name) in rest.iter().enumerate() {
        let Some((_, ty)) = fields.iter().find(|(k, _)| k == name) else {
            return Some(format!(
                "the input schema of `{server}/{tool}` gives `{}` no Cedar type (only string, integer, boolean, arrays of those and objects are typed)",
                rest[..=depth].join(".")
            ));
        };
        match ty {
            ArgType::Record(inner) => fields = inner,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(t: &str) -> Vec<String> {
        argument_paths(t).into_iter().map(|p| p.join(".")).collect()
    }

    #[test]
    fn dotted_and_has_forms_are_read() {
        assert_eq!(
            paths(
                "when { context.arguments has presto.run_query.sql && context.arguments.presto.run_query.sql like \"*finance.*\" }"
            ),
            ["presto.run_query.sql", "presto.run_query.sql"]
        );
        assert_eq!(
            paths(
                "context.arguments.knowledge has search_docs && context.arguments.knowledge.search_docs has \"limit\""
            ),
            ["knowledge.search_docs", "knowledge.search_docs.limit"]
        );
        assert!(paths("context.surface == Surface::\"x\"").is_empty());
    }

    #[test]
    fn untyped_arguments_are_named() {
        let cfg = crate::config::load(None).unwrap_or_else(|e| panic!("{e}"));
        let cat = crate::catalog::load_catalog(&cfg.registry.files, &cfg.surfaces)
            .unwrap_or_else(|e| panic!("{e}"));
        let p = |s: &str| s.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(untyped(&cat, &p("knowledge.search_docs.limit")), None);
        assert!(
            untyped(&cat, &p("knowledge.search_docs.nope"))
                .is_some_and(|m| m.contains("no Cedar type"))
        );
        assert!(untyped(&cat, &p("knowledge.nope.x")).is_some());
        assert!(untyped(&cat, &p("nope.x.y")).is_some());
    }

    #[test]
    fn a_policy_on_an_untyped_argument_refuses_the_snapshot() {
        let mut cfg = crate::config::load(None).unwrap_or_else(|e| panic!("{e}"));
        let src = std::fs::read_to_string(&cfg.registry.files[0]).unwrap_or_else(|e| panic!("{e}"));
        let broken = src.replacen("sql: { type: string }", "sql: {}", 1);
        assert_ne!(src, broken, "the quickstart registry types `sql`");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("registry.yaml");
        std::fs::write(&file, broken).unwrap_or_else(|e| panic!("{e}"));
        cfg.registry.files = vec![file];
        let err = crate::authz::Snapshot::load(&cfg)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("finance-tables-finance-only"), "{err}");
        assert!(err.contains("tools.cedar"), "{err}");
    }
}
